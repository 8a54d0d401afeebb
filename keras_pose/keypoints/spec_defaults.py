"""What a keypoint spec derives when it is not given: flip pairs from names, colours."""

import colorsys
import re

# A name is split into alternating (word, separator) parts. Words are split at
# non-alphanumeric characters and at lower->upper camel-case boundaries, so
# "L_F_Paw" -> L, F, Paw; "Right Shoulder" -> Right, Shoulder;
# "leftEye" -> left, Eye.
_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[A-Za-z]")
_SIDE_WORDS = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _match_case(word, template):
    if template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _mirror_name(name):
    """The name with every left/right side token swapped, or None if it has none.

    Side tokens are whole words "left"/"right" or single letters "l"/"r" (any
    case), e.g. "left_eye" <-> "right_eye", "L_F_Paw" <-> "R_F_Paw",
    "Left Shoulder" <-> "Right Shoulder", "leftHand" <-> "rightHand".
    """
    pieces = []
    pos = 0
    swapped = False
    for match in _WORD_RE.finditer(name):
        word = match.group(0)
        pieces.append(name[pos : match.start()])
        other = _SIDE_WORDS.get(word.lower())
        if other is not None:
            pieces.append(_match_case(other, word))
            swapped = True
        else:
            pieces.append(word)
        pos = match.end()
    pieces.append(name[pos:])
    return "".join(pieces) if swapped else None


def infer_flip_pairs(keypoint_names):
    """Infer left/right flip pairs from keypoint names.

    Two keypoints are a pair when their names differ only in a side token:
    "left"/"right" or "l"/"r" as a whole word (separated by `_`, `-`, space,
    `.` or a camel-case boundary), in any letter case. Examples:
    "left_eye"/"right_eye", "L_F_Paw"/"R_F_Paw", "Left Shoulder"/"Right
    Shoulder". A name without a partner is left unpaired.

    Args:
        keypoint_names: the K keypoint names.

    Returns:
        list of `(name, mirror_name)` tuples in order of the first member's
        position in `keypoint_names`.
    """
    names = list(keypoint_names)
    present = set(names)
    pairs = []
    used = set()
    for name in names:
        if name in used:
            continue
        mirror = _mirror_name(name)
        if mirror is None or mirror == name or mirror not in present or mirror in used:
            continue
        pairs.append((name, mirror))
        used.update((name, mirror))
    return pairs


def default_palette(n, offset=0.0):
    """`n` distinct RGB colours, evenly spaced in hue (deterministic).

    Args:
        n: number of colours.
        offset: hue offset in turns (0..1).

    Returns:
        list of n `(r, g, b)` int tuples in 0..255.
    """
    colours = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((offset + i / max(n, 1)) % 1.0, 0.85, 1.0)
        colours.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return colours
