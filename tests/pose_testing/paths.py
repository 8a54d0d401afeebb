"""Where the sample data and golden parity cases are.

The repository carries them (`tests/data/`, `tests/golden/`; provenance in
their READMEs), so the suite runs on a fresh clone. `KERAS_POSE_SHARED_DIR`
points the tests at another copy: a folder holding `data/` and `golden/`.
"""

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
SHARED_DIR = pathlib.Path(os.environ["KERAS_POSE_SHARED_DIR"]) if os.environ.get("KERAS_POSE_SHARED_DIR") else TESTS_DIR
DATA_DIR = SHARED_DIR / "data"
GOLDEN_DIR = SHARED_DIR / "golden"
