"""Training-curve plots drawn with OpenCV (no matplotlib needed).

```python
from keras_pose.visualization_plots import plot_training_curves

history = model.fit(...)
plot_training_curves(history, "curves.png")           # a keras History
plot_training_curves("runs/x/history.csv", "curves.png")  # or the CSV / JSON
```

One panel per metric: ``X`` with ``val_X`` (``loss`` / ``val_loss``), the
COCO AP stats together (AP, AP50, AP75, APm, APl), the AR stats together,
``pckh`` with ``pckh@0.1``, every other key alone (``learning_rate``,
``val_pck``, ...). Panels have axes, ticks at round numbers, grid lines, a
title and a legend per series. Missing values (epochs without evaluation)
are skipped and the remaining points joined.
"""

import csv
import json
import math
import os
import re

import cv2
import numpy as np

from keras_pose.errors import PlotError


# BGR colours of the series (tab10-like).
_COLORS = [
    (180, 119, 31),
    (14, 127, 255),
    (44, 160, 44),
    (40, 39, 214),
    (189, 103, 148),
    (75, 86, 140),
    (194, 119, 227),
    (127, 127, 127),
]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_X_KEYS = ("epoch", "epochs", "step")
# COCO stats: "<prefix>_AP", "<prefix>_AP50", "<prefix>_ARm", ...; CrowdPose's "<prefix>_AP(E)", "(M)", "(H)".
_FAMILY = re.compile(r"^(?P<prefix>.*?)(?P<family>AP|AR)(?P<suffix>\d+|m|l|M|L|\([EMH]\))?$")


def _to_float(value):
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _read_history_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"History file {path!r} does not exist.")
    if path.lower().endswith(".json"):
        with open(path) as f:
            data = json.load(f)
        if isinstance(data, dict) and "history" in data and isinstance(data["history"], dict):
            data = data["history"]
        if not isinstance(data, dict):
            raise PlotError(f"{path!r} must hold a JSON object {{metric: [values per epoch]}}.")
        return data
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise PlotError(f"History CSV {path!r} is empty.")
    header, body = rows[0], rows[1:]
    return {name: [row[i] if i < len(row) else None for row in body] for i, name in enumerate(header)}


def load_history(history_or_csv):
    """``{key: [float or None per epoch]}`` from a History, dict, CSV or JSON.

    Args:
        history_or_csv: a ``keras.callbacks.History`` (or anything with a
            ``.history`` dict), a dict of per-epoch lists, or the path of a
            CSV (header row of metric names, ``keras.callbacks.CSVLogger`` or
            ``history.csv`` of `train_from_config`) or JSON file.

    COCO stats (``*_AP``, ``*_AR50``, ...) of -1 -- pycocotools' "no ground
    truth in this area range" -- become None (not plotted).
    """
    source = history_or_csv
    if hasattr(source, "history") and isinstance(source.history, dict):
        source = source.history
    if isinstance(source, (str, os.PathLike)):
        source = _read_history_file(os.fspath(source))
    if not isinstance(source, dict):
        raise PlotError(
            f"Expected a keras History, a dict of per-epoch lists or a CSV/JSON path, got {type(source).__name__}."
        )
    out = {}
    for key, values in source.items():
        if isinstance(values, (int, float, np.number)):
            values = [values]
        if not isinstance(values, (list, tuple, np.ndarray)):
            continue
        values = [_to_float(v) for v in values]
        if _is_coco_stat(str(key)):
            # pycocotools reports -1 where no ground truth falls in an area range.
            values = [None if v is not None and v < 0 else v for v in values]
        out[str(key)] = values
    return out


def _is_coco_stat(key):
    match = _FAMILY.match(key)
    return bool(match and match.group("prefix").endswith("_"))


def nice_ticks(low, high, count=5, integer=False):
    """Round tick values covering ``[low, high]`` (steps 1, 2, 2.5, 5 x 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude * 10
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            step = factor * magnitude
            break
    if integer:
        step = max(1, int(math.ceil(step)))
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _fmt(value, scientific=None):
    """Tick label; ``scientific`` forces (True) or forbids (False) 1e-4 style."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if scientific is None:
        scientific = magnitude >= 1e5 or magnitude < 1e-3
    if scientific:
        mantissa, exponent = f"{value:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.4g}"


def _axis_format(ticks):
    """One label style per axis: scientific when every tick is tiny or huge."""
    largest = max((abs(t) for t in ticks), default=0.0)
    return largest >= 1e5 or 0 < largest < 1e-2


def _panel_of(key):
    """The panel a key is drawn in.

    ``X`` and ``val_X`` share the panel "X"; COCO stats share one panel per
    family (``val_coco_AP``, ``val_coco_AP50``, ... -> "val_coco_AP"; AR
    likewise); ``pckh@0.1`` joins ``pckh``.
    """
    match = _FAMILY.match(key)
    if match and match.group("prefix").endswith("_"):
        return match.group("prefix") + match.group("family")
    base = key.split("@")[0]
    return base[4:] if base.startswith("val_") else base


def _group(history):
    """Panels: ``[(title, [series key, ...]), ...]`` in first-appearance order."""
    keys = [k for k in history if k not in _X_KEYS and any(v is not None for v in history[k])]
    panels = {}
    for key in keys:
        panels.setdefault(_panel_of(key), []).append(key)
    for series in panels.values():  # a training curve before its validation curve
        series.sort(key=lambda k: k.startswith("val_") and k[4:] in series)
    return list(panels.items())


def _text(canvas, text, org, scale=0.4, color=(40, 40, 40), thickness=1):
    cv2.putText(canvas, text, (int(org[0]), int(org[1])), _FONT, scale, color, thickness, cv2.LINE_AA)


def _text_size(text, scale=0.4, thickness=1):
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    return w, h


def _draw_panel(canvas, box, title, series, history, xs):
    x0, y0, w, h = box
    left, right, top, bottom = 62, 14, 30, 42
    px0, py0 = x0 + left, y0 + top
    px1, py1 = x0 + w - right, y0 + h - bottom
    values = [v for key in series for v in history[key] if v is not None]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    else:
        pad = 0.06 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    if len(xs) == 1 or xs[-1] == xs[0]:
        x_lo, x_hi = xs[0] - 0.5, xs[0] + 0.5
    else:
        margin = 0.03 * (xs[-1] - xs[0])
        x_lo, x_hi = xs[0] - margin, xs[-1] + margin

    def to_px(x, y):
        u = px0 + (x - x_lo) / (x_hi - x_lo) * (px1 - px0)
        v = py1 - (y - lo) / (hi - lo) * (py1 - py0)
        return int(round(u)), int(round(v))

    # Title.
    tw, _ = _text_size(title, 0.5, 1)
    _text(canvas, title, (x0 + (w - tw) / 2, y0 + 20), 0.5, (20, 20, 20), 1)
    # Grid and y ticks.
    y_ticks = nice_ticks(lo, hi, 6)
    scientific = _axis_format(y_ticks)
    for tick in y_ticks:
        _, v = to_px(x_lo, tick)
        if py0 <= v <= py1:
            cv2.line(canvas, (px0, v), (px1, v), (225, 225, 225), 1, cv2.LINE_AA)
            cv2.line(canvas, (px0 - 4, v), (px0, v), (60, 60, 60), 1, cv2.LINE_AA)
            label = _fmt(tick, scientific)
            lw, lh = _text_size(label)
            _text(canvas, label, (px0 - 7 - lw, v + lh / 2))
    # x ticks (epochs).
    for tick in nice_ticks(x_lo, x_hi, 6, integer=True):
        u, _ = to_px(tick, lo)
        if px0 <= u <= px1:
            cv2.line(canvas, (u, py0), (u, py1), (235, 235, 235), 1, cv2.LINE_AA)
            cv2.line(canvas, (u, py1), (u, py1 + 4), (60, 60, 60), 1, cv2.LINE_AA)
            label = _fmt(tick)
            lw, lh = _text_size(label)
            _text(canvas, label, (u - lw / 2, py1 + 8 + lh))
    xlabel = "epoch"
    lw, _ = _text_size(xlabel)
    _text(canvas, xlabel, ((px0 + px1 - lw) / 2, y0 + h - 6), 0.4, (80, 80, 80))
    # Axes.
    cv2.rectangle(canvas, (px0, py0), (px1, py1), (60, 60, 60), 1, cv2.LINE_AA)
    # Series.
    drawn = []
    for index, key in enumerate(series):
        color = _COLORS[index % len(_COLORS)]
        points = [to_px(x, y) for x, y in zip(xs, history[key]) if y is not None]
        drawn += points
        if len(points) > 1:
            cv2.polylines(canvas, [np.array(points, np.int32)], False, color, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(canvas, point, 3, color, -1, cv2.LINE_AA)
    # Legend: inside the axes, in the corner that hides the fewest points.
    entries = [(key, _COLORS[i % len(_COLORS)]) for i, key in enumerate(series)]
    width = max(_text_size(key)[0] for key, _ in entries) + 34
    height = 16 * len(entries) + 6
    corners = [
        (px1 - 6 - width, py0 + 6),  # top right
        (px0 + 6, py0 + 6),  # top left
        (px1 - 6 - width, py1 - 6 - height),  # bottom right
        (px0 + 6, py1 - 6 - height),  # bottom left
    ]

    def hidden(corner):
        cx, cy = corner
        return sum(1 for u, v in drawn if cx - 4 <= u <= cx + width + 4 and cy - 4 <= v <= cy + height + 4)

    lx0, ly0 = min(corners, key=hidden)
    lx1, ly1 = lx0 + width, ly0 + height
    cv2.rectangle(canvas, (lx0, ly0), (lx1, ly1), (255, 255, 255), -1)
    cv2.rectangle(canvas, (lx0, ly0), (lx1, ly1), (170, 170, 170), 1)
    for row, (key, color) in enumerate(entries):
        cy = ly0 + 12 + 16 * row
        cv2.line(canvas, (lx0 + 6, cy), (lx0 + 24, cy), color, 2, cv2.LINE_AA)
        cv2.circle(canvas, (lx0 + 15, cy), 3, color, -1, cv2.LINE_AA)
        _text(canvas, key, (lx0 + 29, cy + 4))


def plot_training_curves(history_or_csv, path, title=None, panel_size=(300, 420), columns=None):
    """Draw per-metric training curves into a PNG (written atomically).

    Args:
        history_or_csv: a ``keras.callbacks.History``, a dict ``{metric:
            [value per epoch]}`` (``None``/NaN where a metric was not
            computed), or the path of a CSV (``history.csv``,
            ``keras.callbacks.CSVLogger``) or JSON history file. An
            ``epoch`` column gives the x values (1-based epochs); otherwise
            epochs are 1..N.
        path: output image path (``.png``; other OpenCV extensions work).
        title: optional line above the panels.
        panel_size: ``(height, width)`` of one panel in pixels.
        columns: panels per row (default: up to 3; 2 for four panels).

    Returns:
        ``path`` (str).

    Raises:
        PlotError: nothing numeric to plot, or an extension OpenCV cannot
            write.
        FileNotFoundError: the CSV/JSON does not exist.
    """
    history = load_history(history_or_csv)
    panels = _group(history)
    if not panels:
        raise PlotError("The history has no per-epoch numbers to plot (every metric is empty).")
    length = max(len(history[key]) for _, series in panels for key in series)
    for _, series in panels:
        for key in series:
            history[key] = list(history[key]) + [None] * (length - len(history[key]))
    xs = None
    for key in _X_KEYS:
        if key in history and len(history[key]) == length and all(v is not None for v in history[key]):
            xs = list(history[key])
            if key == "epoch" and xs and xs[0] == 0:
                xs = [x + 1 for x in xs]  # keras CSVLogger counts from 0
            break
    if xs is None:
        xs = list(range(1, length + 1))

    ph, pw = int(panel_size[0]), int(panel_size[1])
    columns = int(columns or (2 if len(panels) == 4 else min(3, len(panels))))
    rows = math.ceil(len(panels) / columns)
    header = 30 if title else 0
    canvas = np.full((header + rows * ph, columns * pw, 3), 255, np.uint8)
    if title:
        tw, _ = _text_size(title, 0.6, 1)
        _text(canvas, title, ((canvas.shape[1] - tw) / 2, 21), 0.6, (0, 0, 0), 1)
    for index, (name, series) in enumerate(panels):
        r, c = divmod(index, columns)
        _draw_panel(canvas, (c * pw, header + r * ph, pw, ph), name, series, history, xs)

    from keras_pose.errors import ImageWriteError
    from keras_pose.visualization import save_image

    try:
        return save_image(path, canvas[..., ::-1])  # the canvas is drawn in BGR
    except ImageWriteError as e:
        raise PlotError(str(e)) from None


__all__ = ["PlotError", "load_history", "nice_ticks", "plot_training_curves"]
