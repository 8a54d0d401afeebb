"""Validation of ``data.train`` given as a list of datasets (ViTPose++ multi-dataset training).

See `keras_pose.training.multi_dataset_training` for the meaning of the keys.
"""

import os

from keras_pose.training.config_values import REQUIRED, as_float, check_keys, fail, merge_defaults

ENTRY_KEYS = {"dataset": REQUIRED, "annotation_file": REQUIRED, "image_root": None, "ratio": 1.0,
              "keypoints": None, "init_from": None, "val": None}
SPLIT_KEYS = {"annotation_file": REQUIRED, "image_root": None}


def validate_multi_dataset_train(entries, base_dir, validate_split):
    """Check ``data.train`` given as a list; returns the entries with paths resolved."""
    if not entries:
        fail("data.train", "is an empty list; give one {dataset, annotation_file, ratio} per dataset.")
    out, names = [], []
    for i, raw in enumerate(entries):
        where = f"data.train[{i}]"
        check_keys(raw, ENTRY_KEYS, where)
        entry = merge_defaults(ENTRY_KEYS, raw)
        if entry["dataset"] is REQUIRED or not isinstance(entry["dataset"], str):
            fail(f"{where}.dataset", "is required: the model's dataset name (its expert and head), e.g. coco.")
        if entry["dataset"] in names:
            fail(f"{where}.dataset", f"{entry['dataset']!r} is listed twice.")
        names.append(entry["dataset"])
        split = validate_split({"annotation_file": entry["annotation_file"], "image_root": entry["image_root"]},
                               base_dir, where, SPLIT_KEYS)
        entry.update(split)
        if entry["val"] is not None:  # this dataset's validation split: a path or {annotation_file, image_root}
            entry["val"] = validate_split(entry["val"], base_dir, f"{where}.val", SPLIT_KEYS)
        entry["ratio"] = as_float(entry["ratio"], f"{where}.ratio", 0.0, strict_min=True)
        if entry["keypoints"] is not None and isinstance(entry["keypoints"], str) and os.path.sep in entry["keypoints"]:
            entry["keypoints"] = os.path.join(base_dir, entry["keypoints"])
        out.append(entry)
    return out
