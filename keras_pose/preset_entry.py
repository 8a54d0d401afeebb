"""`PresetEntry`: one released reference checkpoint and how to turn it into a model.

This module holds the record only; the registry (`keras_pose.preset_registry`)
collects the entries the `keras_pose.presets` modules define, so those modules
import nothing from keras-pose that imports them back.

## The preset config schema (every family)

`PresetEntry.config` is flat: the keyword arguments of the task class's

    TaskClass.from_checkpoint_config(*, image_size, keypoint_spec, dtype=None, name=None,
                                     preprocessing=None, decoding=None, **architecture)

for every family, so `TaskClass.from_checkpoint_config(**entry.config)` builds an
untrained model of the preset (what the converters and the training model builder
do). The entry's `preprocessing` / `decoding` fields are passed separately (they are
not part of `config`). Keys:

- `image_size`: [H, W] of the network input, pixels.
- `keypoint_spec`: the keypoint set (a built-in name such as "coco").
  ViTPose++ (`ViTPosePP`): the spec of the *active* dataset; when it names one
  of `datasets` that dataset is active unless `dataset=` says otherwise.
- architecture, per family (the same names as the model constructors):
  - ViTPose: `hidden_dim`, `num_layers`, `num_heads`, `mlp_dim`, `patch_size`,
    `patch_padding`, `layer_norm_epsilon`, `qkv_bias`, `decoder`
    ("classic" / "simple"), optionally `deconv_filters`, `num_keypoints`,
    `pos_embed_cls_slot`;
  - ViTPosePP: the ViTPose keys plus `num_experts`, `part_features`,
    `datasets` (dataset names in dataset-index order), optionally
    `keypoint_specs`, `dataset_decodings`;
  - CPM: `num_keypoints`, `num_stages`, `feat_channels`, `middle_channels`, ...
    (`CPMBackbone` arguments);
  - Hourglass: `num_keypoints`, `num_stacks`, `downsample_times`,
    `stage_channels`, `stage_blocks`, `feat_channels`, `stem_channels`;
  - CPN: `depth`, `heatmap_size`, optionally `stackwise_num_blocks`,
    `stackwise_num_filters`, `global_channels`, `refine_planes`,
    `refine_num_blocks`, `upsample_bias`.

What the checkpoint file determines (depth, widths, keypoint counts, experts,
decoder, the ViT input size from its position table) is inferred again by the
converter and checked against the config: a disagreement is an error, except
the input size, which follows the file with a warning naming both sizes.
"""

import dataclasses
import re
from typing import Any, Optional

from keras_pose.errors import PresetError

_PRESET_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# Checkpoint layouts a converter understands (`detect_family` returns them as
# the layout of a file).
CHECKPOINT_FORMATS = (
    "vitpose_original",  # ViTAE-Transformer/ViTPose .pth ({'state_dict'}), also ViTPose++ multi-dataset
    "mmpose",  # mmpose 1.x release .pth ({'meta', 'state_dict'})
    "hf_safetensors",  # HF transformers model.safetensors + config.json
    "pytorch_cpn",  # pytorch-cpn .pth ({'epoch', 'state_dict', 'optimizer'}, DataParallel prefix)
    "pytorch_openpose",  # pytorch-openpose body_pose_model.pth
    "caffe",  # a binary Caffe .caffemodel (CMU OpenPose), read by conversion.caffe_io
)


def sha256_check(sha256):
    """How a published digest checks a download: "full", "prefix" or "none"."""
    if not sha256:
        return "none"
    return "full" if len(sha256) == 64 else "prefix"


@dataclasses.dataclass(frozen=True)
class PresetEntry:
    """One built-in preset.

    Attributes:
        name: the preset name, `<family>_<variant>_<dataset>_<H>x<W>`.
        family: model family, e.g. "vitpose", "vitpose_plus".
        task_class: name of the `keras_pose` task class the preset builds,
            e.g. "ViTPose", "ViTPosePP".
        description: one line for `keras-pose presets`.
        config: the flat keyword arguments of the task class's
            `from_checkpoint_config` (see the module docstring).
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
        nested = sorted(k for k, v in (self.config or {}).items() if isinstance(v, dict) and k == "backbone")
        if nested:
            raise PresetError(
                f"Preset {self.name!r}: config is flat (the keyword arguments of "
                f"{self.task_class}.from_checkpoint_config); move the entries of config['backbone'] up into "
                "config itself."
            )

    @property
    def sha256_check(self) -> str:
        """How the download is checked: "full" digest, "prefix" only, or "none"."""
        return sha256_check(self.sha256)

    def check_dataset(self, dataset):
        """Refuse a `dataset=` this preset cannot select (None always passes).

        Raises:
            PresetError: a single-dataset preset, a dataset the preset does not
                have, or an HF conversion that kept one head only.
        """
        if dataset is None or dataset == self.dataset:
            return
        if self.dataset is not None and self.checkpoint_format == "hf_safetensors":
            raise PresetError(
                f"Preset {self.name!r} holds only the {self.dataset!r} head (HF conversion); use the "
                f"original multi-dataset preset (e.g. {self.name.split('_coco')[0]}) for dataset={dataset!r}."
            )
        datasets = self.config.get("datasets")
        if not datasets:
            raise PresetError(
                f"Preset {self.name!r} is a single-dataset model; `dataset={dataset!r}` applies only to "
                "multi-dataset presets (ViTPose++: vitpose_plus_small, ...)."
            )
        if dataset not in datasets:
            raise PresetError(f"Preset {self.name!r} has no dataset {dataset!r}; choose one of {datasets}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


__all__ = ["CHECKPOINT_FORMATS", "PresetEntry", "sha256_check"]
