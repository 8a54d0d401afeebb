"""`keras-pose presets`: the table (or JSON) of the registered presets.

Fast on purpose: the registry and the keypoint specs are plain Python; no
backend is imported.
"""

import functools
import json
import sys

from keras_pose.cli.common import CLIError, quiet_native_output


@functools.lru_cache(maxsize=None)
def _keypoint_count(spec_name):
    """Keypoint count of a built-in spec (None when the name is not one)."""
    from keras_pose.errors import KeypointSpecError
    from keras_pose.keypoints import get_keypoint_spec

    try:
        return get_keypoint_spec(spec_name).num_keypoints
    except (KeypointSpecError, TypeError, ValueError):
        return None


def _keypoints_label(entry):
    spec = entry.config.get("keypoint_spec", "?")
    datasets = entry.config.get("datasets")
    if datasets and entry.dataset is None:
        return f"{len(datasets)} sets"
    count = _keypoint_count(spec) if isinstance(spec, str) else None
    return f"{spec} ({count})" if count else str(spec)


def _accuracy_label(accuracy):
    if not accuracy:
        return "-"
    metric = accuracy.get("metric")
    value = accuracy.get(metric) if metric else None
    if value is None:
        for key in ("AP", "PCKh", "AUC", "PCK"):
            if accuracy.get(key) is not None:
                metric, value = key, accuracy[key]
                break
    if value is None:
        return "-"
    dataset = accuracy.get("dataset", "")
    return f"{metric} {100 * value:.1f} {dataset}".strip()


def _input_size(entry):
    size = entry.config.get("image_size")
    return f"{size[0]}x{size[1]}" if size else "-"


def _table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def run(args):
    from keras_pose.preset_registry import list_presets

    # Reading the registry may import model code, and with it a backend's start-up noise.
    with quiet_native_output(args):
        entries = list_presets(family=args.family, task_class=args.task_class)
    if not entries:
        families = sorted({e.family for e in list_presets()})
        raise CLIError(
            f"No presets match family={args.family!r} task_class={args.task_class!r}; "
            f"known families: {', '.join(families)}."
        )
    if args.json:
        json.dump([e.to_dict() for e in entries], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    headers = ("name", "task class", "input", "keypoints", "published", "licence")
    rows = [
        (e.name, e.task_class, _input_size(e), _keypoints_label(e), _accuracy_label(e.published_accuracy), e.license)
        for e in entries
    ]
    print(_table(rows, headers))
    print(f"\n{len(entries)} presets. Load one with keras_pose.from_preset(NAME); the checkpoint is "
          "downloaded and converted on first use.")
    return 0


def add_parser(subparsers):
    p = subparsers.add_parser(
        "presets",
        help="list the built-in presets",
        description="List the built-in presets: name, task class, input size (HxW), keypoint set, "
        "published accuracy and licence of the weights.",
    )
    p.add_argument("--family", help="only presets of this model family (e.g. vitpose, vitpose_plus)")
    p.add_argument("--task-class", dest="task_class", help="only presets building this class (e.g. ViTPose)")
    p.add_argument("--json", action="store_true", help="print the full preset entries as JSON")
    p.set_defaults(handler=run)
    return p
