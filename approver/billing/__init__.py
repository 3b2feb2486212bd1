"""Billing events: signature checks, parsing to one normalized form, per-developer state."""
