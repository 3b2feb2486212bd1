"""A fact plugin for the fault suite: a CRM lookup that takes a while, as real ones do."""

import time

LOOKUP_SECONDS = 0.2


def crm_status(context):
    """The developer's standing in the CRM (this one knows nobody: "unknown")."""
    time.sleep(LOOKUP_SECONDS)
    return "unknown"
