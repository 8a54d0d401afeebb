"""Low-level helpers: files, downloads, image reading, preset loading, the console.

Submodules load on first attribute access (``keras_pose.utils.image_io``).
"""

import importlib
import importlib.util


def __getattr__(name):
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
