"""Built-in preset definitions (installed as `keras_pose.presets`).

One module per model family (`<family>_presets.py`) defines its `PresetEntry`
objects (`keras_pose.preset_entry`) as `PRESETS`; `presets/common.py` holds what
they share. `all_presets()` imports every family module and returns their
entries; `keras_pose.preset_registry` registers them. The modules here import
nothing that imports them back (no registry, no loader). A module that fails to
import raises: a broken definition must not silently drop presets.

`PresetEntry.config` is flat for every family: the keyword arguments of the task
class's `from_checkpoint_config` (the schema is documented in
`keras_pose.preset_entry`).
"""

import importlib
import pkgutil


def family_modules():
    """Names of the family modules (`<family>_presets`), ViTPose first."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_presets"))
    # ViTPose first: it is the reference family of the zoo.
    names.sort(key=lambda n: n != "vitpose_presets")
    return names


def all_presets():
    """Every `PresetEntry` the family modules define, in module order."""
    entries = []
    for name in family_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        entries.extend(getattr(module, "PRESETS", ()))
    return entries
