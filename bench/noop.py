"""The decisions baseline: a job that does nothing, run by RQ's own CLI worker."""


def noop(*args, **kwargs) -> None:
    """Nothing: what is left is RQ's own per-job cost."""
    return None
