"""The registry of built-in presets.

A built-in preset names one released reference checkpoint and everything
needed to turn it into a Keras model: the model class and configuration, the
checkpoint's source (URL, file name, sha256, licence), its published accuracy
and the pre-processing and decoding the published number used. The entries
themselves live in `keras_pose.presets` (the top-level `presets/` folder), one
module per family, and are registered here on import.

Preset names follow `<family>_<variant>_<dataset>_<H>x<W>`, lowercase
(`vitpose_base_coco_256x192`); a multi-dataset preset drops the dataset
(`vitpose_plus_base`). Look-ups ignore letter case.

How a download is checked depends on what was published: the full sha256
(`sha256_check == "full"`), only the 8-hex prefix mmpose puts in the file
name ("prefix"), or nothing ("none"). For "prefix" and "none" the file must
also parse as a complete checkpoint, and the full digest of the first
download is recorded in the cache (`<file>.sha256`) and every later read of
the cached file is checked against it.
"""

import dataclasses
import difflib
import re
from typing import Any, Optional

from keras_pose.errors import PresetError

_PRESET_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# Notes for entries whose checkpoint has no full published digest.
PREFIX_ONLY_NOTE = (
    "Digest: only the 8-hex sha256 prefix in the file name is published, so the download is checked against "
    "that prefix (and must parse); its full sha256 is recorded on the first download and later reads of the "
    "cached file are checked against it."
)
NO_DIGEST_NOTE = (
    "Digest: none is published, so the download is only checked to parse as a complete checkpoint; its full "
    "sha256 is recorded on the first download and later reads of the cached file are checked against it."
)

# Checkpoint layouts a converter understands. The converter for a family
# dispatches on this value.
CHECKPOINT_FORMATS = (
    "vitpose_original",  # ViTAE-Transformer/ViTPose .pth ({'state_dict'}), also ViTPose++ multi-dataset
    "mmpose",  # mmpose 1.x release .pth ({'meta', 'state_dict'})
    "hf_safetensors",  # HF transformers model.safetensors + config.json
    "pytorch_cpn",  # pytorch-cpn .pth ({'epoch', 'state_dict', 'optimizer'}, DataParallel prefix)
    "pytorch_openpose",  # pytorch-openpose body_pose_model.pth
)


@dataclasses.dataclass(frozen=True)
class PresetEntry:
    """One built-in preset.

    Attributes:
        name: the preset name, `<family>_<variant>_<dataset>_<H>x<W>`.
        family: model family, e.g. "vitpose", "vitpose_plus".
        task_class: name of the `keras_pose` task class the preset builds,
            e.g. "ViTPose", "ViTPosePP".
        description: one line for `keras-pose presets`.
        config: keyword arguments of the task class's `from_checkpoint_config`
            (family specific: backbone sizes, decoder, keypoint spec name,
            image size (H, W), datasets, ...). What the checkpoint file
            determines (depth, width, keypoint count) is re-inferred by the
            converter and checked against this.
        preprocessing: {"mean": [r, g, b], "std": [r, g, b]} in 0..255 units
            and "channel_order": "rgb" (the model input order after
            conversion).
        decoding: the codec and test-time settings the published accuracy
            used, e.g. {"codec": {"type": "UDPHeatmap", ...},
            "flip_test": True, "shift_heatmap": False, "padding": 1.25}.
        source_url: where the reference checkpoint is downloaded from.
        file_name: the reference checkpoint's file name.
        sha256: full sha256 hex digest, or the published prefix (>= 8 hex
            characters, e.g. mmpose's file-name hash) when the full digest is
            not published. None where nothing is published. `sha256_check`
            says which ("full", "prefix", "none").
        checkpoint_format: one of `CHECKPOINT_FORMATS`.
        license: licence of the weights (SPDX id where there is one).
        published_accuracy: e.g. {"dataset": "COCO val2017",
            "detector": "person AP 56 (AP_H 56 boxes)", "AP": 0.739,
            "AR": 0.792, "source": "..."}.
        dataset: for a per-dataset expert preset of a multi-dataset model,
            the dataset name whose head and expert it selects.
        extra_files: other files the converter needs from beside the
            checkpoint, {file name: url} (e.g. an HF config.json).
        notes: free text (quirks of the release).
    """

    name: str
    family: str
    task_class: str
    description: str
    config: dict
    preprocessing: dict
    decoding: dict
    source_url: str
    file_name: str
    checkpoint_format: str
    license: str
    sha256: Optional[str] = None
    published_accuracy: dict = dataclasses.field(default_factory=dict)
    dataset: Optional[str] = None
    extra_files: dict = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        if not _PRESET_NAME.match(self.name):
            raise PresetError(
                f"Preset name {self.name!r} is not lowercase snake_case "
                "(`<family>_<variant>_<dataset>_<H>x<W>`)."
            )
        if self.checkpoint_format not in CHECKPOINT_FORMATS:
            raise PresetError(
                f"Preset {self.name!r}: unknown checkpoint_format "
                f"{self.checkpoint_format!r}; expected one of {CHECKPOINT_FORMATS}."
            )
        if self.sha256 is not None:
            if not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
                raise PresetError(
                    f"Preset {self.name!r}: sha256 must be 8 to 64 lowercase "
                    f"hex characters, got {self.sha256!r}."
                )

    @property
    def sha256_check(self) -> str:
        """How the download is checked: "full" digest, "prefix" only, or "none"."""
        if self.sha256 is None:
            return "none"
        return "full" if len(self.sha256) == 64 else "prefix"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_REGISTRY: dict[str, PresetEntry] = {}


def register_presets(entries):
    """Add `PresetEntry` objects to the registry (names must be unique)."""
    for entry in entries:
        if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
            raise PresetError(f"Preset {entry.name!r} is registered twice.")
        _REGISTRY[entry.name] = entry


def _ensure_loaded():
    # Importing the definitions registers them.
    import keras_pose.presets  # noqa: F401


def list_presets(family=None, task_class=None):
    """Registered preset entries, sorted by name, optionally filtered."""
    _ensure_loaded()
    entries = sorted(_REGISTRY.values(), key=lambda e: e.name)
    if family is not None:
        entries = [e for e in entries if e.family == family]
    if task_class is not None:
        entries = [e for e in entries if e.task_class == task_class]
    return entries


def get_preset_entry(name):
    """The registered entry for `name`; a PresetError with suggestions if none."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    entry = _REGISTRY.get(_normalize_name(name))
    if entry is not None:
        return entry
    close = difflib.get_close_matches(_normalize_name(name), list(_REGISTRY), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise PresetError(
        f"Unknown preset {name!r}.{hint} Run `keras-pose presets` to list the "
        "built-in presets, or pass a local preset directory or an https:// / "
        "file:// URL of a reference checkpoint."
    )


def _normalize_name(name):
    """Registered names are lowercase: look names up in any letter case."""
    return str(name).strip().lower()


def is_registered(name):
    """True if `name` (any letter case) is a registered preset."""
    _ensure_loaded()
    return name in _REGISTRY or _normalize_name(name) in _REGISTRY


def find_preset_by_url(url):
    """The entry whose `source_url` or file name matches `url`, or None."""
    _ensure_loaded()
    for entry in _REGISTRY.values():
        if entry.source_url == url:
            return entry
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    matches = [e for e in _REGISTRY.values() if e.file_name == tail]
    return matches[0] if len(matches) == 1 else None
