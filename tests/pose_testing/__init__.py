"""Shared test support for keras-pose (importable because `tests/` is on `sys.path`
through `tests/conftest.py`): where the sample data are, a local HTTP server,
tiny checkpoints in the reference layouts, and the family test harness."""
