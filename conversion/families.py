"""Which model family (and checkpoint layout) a set of tensor names belongs to.

The one family detector of keras-pose: `detect_family(keys) -> (family, layout)`
names the converter family ("vitpose", "vitpose_plus", "cpm", "cpn",
"hourglass", "rtmo", or a family keras-pose recognises but cannot convert
yet: "openpose", "rtmpose", "hrnet", "resnet") and the layout of the file (one of
`keras_pose.preset_entry.CHECKPOINT_FORMATS`, or None where a family has one
layout only). Converters call `check_family` to refuse another family's file
by name, and `KeyAccountant` uses `match_family` for its hints.

Only names are read (no tensor values), so a key list, a mapping, a
`Checkpoint` or a file path (whose names `checkpoint_io.list_keys` reads) will
do.
"""

import collections
import os
import re

from keras_pose.errors import CheckpointError

FamilyMatch = collections.namedtuple("FamilyMatch", ["family", "layout", "description"])

# ViT pose layouts, by the name of the first transformer block.
_VIT_LAYOUTS = (
    ("vitpose_original", r"^backbone\.blocks\.\d+\.", "a ViTPose (ViTAE-Transformer / mmpose 0.x) checkpoint"),
    ("mmpose", r"^backbone\.layers\.\d+\.(ln1|ln2|attn|ffn)\.", "an mmpose 1.x ViTPose checkpoint"),
    ("hf_safetensors", r"^backbone\.(encoder\.layer\.\d+\.|embeddings\.)", "a Hugging Face VitPose checkpoint"),
)
_EXPERTS = r"\.(mlp|ffn)\.experts\.\d+\."

# The other families: (family, layout, description, patterns any of which
# identifies it). First match wins, so the more specific come first.
_FAMILIES = (
    ("cpn", "pytorch_cpn", "a CPN (pytorch-cpn, ResNet + GlobalNet + RefineNet) checkpoint",
     (r"(^|\.)global_net\.", r"(^|\.)refine_net\.")),
    ("openpose", "pytorch_openpose", "an OpenPose body model (pytorch-openpose body_pose_model.pth)",
     (r"^model\d(_\d)?\.", r"conv\d_\d_CPM|Mconv\d_stage\d")),
    ("hourglass", "mmpose", "a Stacked Hourglass checkpoint", (r"(^|\.)hg\.\d+\.", r"hourglass")),
    ("cpm", "mmpose", "a Convolutional Pose Machines checkpoint", (r"^backbone\.cpm_stages\.\d+\.", r"conv\d_stage\d")),
    # RTMO (one-stage: CSPDarknet + HybridEncoder + RTMO head): the DCC decoder or the pose-vector convs.
    ("rtmo", "mmpose", "an mmpose RTMO (one-stage CSPDarknet + HybridEncoder + RTMO head) checkpoint",
     (r"^head\.dcc\.", r"^head\.head_module\.out_pose\.\d+\.")),
    # Other CSP backbones (RTMPose's CSPNeXt, YOLOX-Pose): recognised, not convertible.
    ("rtmpose", "mmpose", "an mmpose RTMPose / YOLOX-Pose (CSPNeXt / CSPDarknet) checkpoint",
     (r"^backbone\.stage\d\.\d+\.(main_conv|blocks|short_conv)", r"^head\.(yolo|gau|mlp|cls_x)")),
    ("hrnet", None, "an HRNet checkpoint", (r"(^|\.)transition\d\.", r"stage\d\.\d+\.branches")),
    ("resnet", None, "a ResNet (torchvision / SimpleBaseline) checkpoint", (r"(^|\.)layer[1-4]\.\d+\.conv[12]\.weight$",)),
)


def _any(keys, pattern):
    regex = re.compile(pattern)
    return any(regex.search(k) for k in keys)


def tensor_names(checkpoint):
    """The tensor names of a key list, mapping, `Checkpoint` or checkpoint path."""
    if isinstance(checkpoint, (str, bytes, os.PathLike)):
        from keras_pose.conversion.checkpoint_io import list_keys

        return list_keys(checkpoint)
    tensors = getattr(checkpoint, "tensors", checkpoint)
    return list(tensors.keys() if hasattr(tensors, "keys") else tensors)


def match_family(keys):
    """`FamilyMatch(family, layout, description)` of the names `keys`, or None."""
    keys = tensor_names(keys)
    for layout, pattern, description in _VIT_LAYOUTS:
        if _any(keys, pattern):
            if _any(keys, _EXPERTS):
                plus = "a ViTPose++ (ViTAE-Transformer multi-dataset, experts) checkpoint"
                if layout == "hf_safetensors":
                    plus = "a Hugging Face VitPose++ checkpoint"
                return FamilyMatch("vitpose_plus", layout, plus)
            return FamilyMatch("vitpose", layout, description)
    for family, layout, description, patterns in _FAMILIES:
        if any(_any(keys, p) for p in patterns):
            return FamilyMatch(family, layout, description)
    return None


def detect_family(checkpoint):
    """(family, layout) of a checkpoint from its tensor names.

    Args:
        checkpoint: tensor names, a mapping or `Checkpoint` holding them, or
            the path of a checkpoint file / HF folder.

    Returns:
        (family, layout): e.g. ("vitpose", "mmpose"), ("vitpose_plus",
        "vitpose_original"), ("cpn", "pytorch_cpn").

    Raises:
        CheckpointError: the names match no known family (the message says to
            pass the preset the file was released as).
    """
    keys = tensor_names(checkpoint)
    match = match_family(keys)
    if match is None:
        sample = ", ".join(sorted(keys)[:5]) or "(no tensors)"
        raise CheckpointError(
            f"Cannot tell which model family the checkpoint belongs to (first tensor names: {sample}). "
            "Pass the preset it was released for, e.g. `keras-pose convert --preset NAME ...` "
            "(see `keras-pose presets`)."
        )
    return match.family, match.layout


def check_family(keys, source, families, what, expect="", required=False):
    """The `FamilyMatch` of `keys`, refusing a checkpoint of another family by name.

    Args:
        keys: the checkpoint's tensor names.
        source: the checkpoint's path or name, for the message.
        families: the family ids the converter accepts.
        what: the converter's kind of file with its article ("a pytorch-cpn").
        expect: a sentence on what such a file holds (optional).
        required: refuse names that match no family too (the converter needs
            the layout).

    Raises:
        CheckpointError: "<source> is not <what> checkpoint: it looks like
            <description> (family <id>). ..."
    """
    keys = tensor_names(keys)
    match = match_family(keys)
    if match is not None and match.family in families:
        return match
    if match is None and not required:
        return None
    if match is None:
        found = "its tensor names match no supported family (first keys: " + ", ".join(keys[:5]) + ")"
    else:
        found = f"it looks like {match.description} (family {match.family!r})"
    raise CheckpointError(
        f"{source} is not {what} checkpoint: {found}. {expect}Convert it with that family's preset "
        "(`keras-pose presets` lists them)."
    )


__all__ = ["FamilyMatch", "check_family", "detect_family", "match_family", "tensor_names"]
