"""A fact plugin for the fault suite: a CRM lookup that takes a while, as real ones do."""

import time

from approver.rules import Registry, fact

LOOKUP_SECONDS = 0.2


# Declared with its type (text), so that rules may compare it; a bare function would be a
# fact of type `any`, which rules may only test with `exists`.
@fact("crm.status", type="text", registry=Registry())
def crm_status(context):
    """The developer's standing in the CRM (this one knows nobody: "unknown")."""
    time.sleep(LOOKUP_SECONDS)
    return "unknown"
