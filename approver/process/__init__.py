"""Process wiring: the worker process, the demo (every part on one machine) and the
private Redis server the demo and the tests start."""
