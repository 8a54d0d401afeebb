"""Built-in preset definitions (installed as `keras_pose.presets`).

One module per model family (`<family>_presets.py`) defines its
`PresetEntry` objects as `PRESETS`; importing this package imports every
such module and registers its entries in `keras_pose.preset_registry`
(modules may also register themselves; registering an identical entry twice
is a no-op). A module that fails to import raises: a broken definition must
not silently drop presets.
"""

import importlib
import pkgutil

from keras_pose.preset_registry import register_presets


def _family_modules():
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_presets"))
    # ViTPose first: it is the reference family of the zoo.
    names.sort(key=lambda n: n != "vitpose_presets")
    return names


for _name in _family_modules():
    _module = importlib.import_module(f"{__name__}.{_name}")
    register_presets(getattr(_module, "PRESETS", ()))

from keras_pose.presets.vitpose_presets import PRESETS as VITPOSE_PRESETS  # noqa: E402
