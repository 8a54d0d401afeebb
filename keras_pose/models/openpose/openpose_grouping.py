"""OpenPose grouping: part peaks + PAF line integrals -> people, behind one interface.

`group_people(heatmaps, pafs, limbs, paf_channels, image_height, method=...)`
returns ``(candidate, subset)`` in the reference's layout:

- ``candidate`` ``(n, 4)`` float64: x, y (image pixels), peak score, id;
- ``subset`` ``(people, K + 2)`` float64: per part the candidate index (-1 =
  missing), then the total score and the part count;

with ``method="fast"`` (default, `group_fast`) or ``"reference"``
(`openpose_grouping_reference.group_reference`, the loop-by-loop port of
the reference parser). The fast parser computes the same things as array
operations: peaks only where a smoothed value can pass the threshold
(8 x 8-pixel cells whose Gaussian bound from the cells' maxima passes it,
grouped into boxes; per box the Gaussian one axis at a time and the
4-neighbour test, bitwise the full-map values there), every limb's
candidate pairs' ``mid_num`` samples, PAF dot products, criteria and
distance prior in one call, the greedy matching over the sorted pairs with
used-flags, and the assembly with a vectorised search of the people holding
a part. The samples are summed in the reference's order, so scores match
it to rounding. float32 maps (cv2's upsampling output) are read as they
are, without a float64 copy of the maps (the values are the same).
Timings: benchmarks/bench_openpose_grouping.py.

`people_arrays(candidate, subset, num_parts)` turns that into ``(N, K, 2)``
keypoints, ``(N, K)`` scores and ``(N,)`` person scores (mean score per part
of the person: total score / part count).
"""

import functools

import numpy as np

from keras_pose.models.openpose import openpose_grouping_reference as reference

METHODS = ("fast", "reference")


def default_creates_people(limbs):
    """Per limb whether it may start a person: not the redundant shoulder-ear limbs (reference: ``k < 17``).

    COCO-18's last two limbs (2-16, 5-17) and BODY_25's (2-17, 5-18) only join
    parts to existing people, as in the reference parser.
    """
    redundant = {(2, 16), (5, 17)} if len(limbs) == 19 else {(2, 17), (5, 18)} if len(limbs) == 26 else set()
    return [tuple(pair) not in redundant for pair in limbs]


def _gaussian_radius(sigma, truncate=4.0):
    return int(truncate * float(sigma) + 0.5)  # scipy.ndimage.gaussian_filter's kernel radius


@functools.lru_cache(maxsize=16)
def _gaussian_kernel(sigma, radius):
    """scipy.ndimage's order-0 Gaussian weights (``_gaussian_kernel1d``), the same float64 values (read-only)."""
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    kernel = kernel / kernel.sum()
    kernel.flags.writeable = False
    return kernel


@functools.lru_cache(maxsize=16)
def _block_mass(sigma, radius, block):
    """Per block offset ``k`` the most weight the 1-D kernel puts on block ``k`` seen from any pixel of block 0.

    Returns ``(mass (2 * reach + 1,) float32, rounded up, read-only; reach)``.
    """
    kernel = _gaussian_kernel(sigma, radius)
    reach = -(-(radius + block - 1) // block)
    mass = np.zeros(2 * reach + 1)
    for k in range(-reach, reach + 1):
        for p in range(block):
            d = np.arange(k * block, k * block + block) - p
            mass[k + reach] = max(mass[k + reach], kernel[d[np.abs(d) <= radius] + radius].sum())
    mass = np.nextafter(mass.astype(np.float32), np.float32(np.inf))
    mass.flags.writeable = False
    return mass, reach


def _bound_1d(m, mass, reach, size, radius, block, axis):
    """``sum_k mass[k] * m[b + k]`` along ``axis``, the blocks beyond the map replaced by their reflections' max."""
    m = np.moveaxis(m, axis, 0)
    n = len(m)
    if size <= radius:
        first = last = m.max(axis=0)
    else:
        first, last = m[:(radius - 1) // block + 1].max(axis=0), m[(size - radius) // block:].max(axis=0)
    padded = np.empty((n + 2 * reach,) + m.shape[1:], m.dtype)
    padded[:reach], padded[reach:reach + n], padded[reach + n:] = first, m, last
    if size % block:  # the partial last cell's missing pixels are reflections too
        np.maximum(padded[reach + n - 1], last, out=padded[reach + n - 1])
    out = padded[:n] * mass[0]
    term = np.empty_like(out)
    for k in range(1, 2 * reach + 1):
        np.add(out, np.multiply(padded[k:k + n], mass[k], out=term), out=out)
    return np.moveaxis(out, 0, axis)


def _cell_max(x, block):
    """``(ceil(H / block), ceil(W / block), C)`` maxima of ``x (H, W, C)`` over ``block`` x ``block`` cells."""
    h, w, c = x.shape
    full = h // block * block
    rows = []
    if full:  # contiguous maps: one reduction over runs of whole rows
        head = x[:full].reshape(h // block, block, w * c) if x.flags.c_contiguous else x[:full].reshape(
            h // block, block, w, c)
        rows.append(head.max(axis=1).reshape(h // block, w, c))
    if full < h:
        rows.append(x[full:].max(axis=0, keepdims=True))
    rows = np.concatenate(rows) if len(rows) > 1 else rows[0]
    full = w // block * block
    cols = []
    if full:
        m = rows[:, 0:full:block].copy()
        for i in range(1, block):
            np.maximum(m, rows[:, i:full:block], out=m)
        cols.append(m)
    if full < w:
        cols.append(rows[:, full:].max(axis=1, keepdims=True))
    return np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]


def _active_boxes(heatmaps, num_parts, threshold, sigma, radius, block=8):
    """``(part, y0, y1, x0, x1)`` boxes (pixels) outside which no smoothed value can exceed ``threshold``.

    The truncated Gaussian's weights are positive and separable: on a grid of
    ``block`` x ``block`` cells, a pixel's smoothed value is at most the sum
    over nearby cells of (largest weight mass the kernel can put on the
    cell) x (the cell's largest raw value, >= 0). Cells whose bound passes
    ``threshold`` are grouped into connected boxes per part.
    """
    from scipy import ndimage

    h, w = heatmaps.shape[:2]
    # float32 sums of non-negative terms: relative error < 1e-6 (cells from float64 maps rounded up)
    cells = np.maximum(_cell_max(heatmaps, block)[:, :, :num_parts], 0)
    cells = np.nextafter(cells.astype(np.float32), np.float32(np.inf)) if cells.dtype != np.float32 else cells
    mass, reach = _block_mass(float(sigma), radius, block)
    bound = _bound_1d(_bound_1d(cells, mass, reach, h, radius, block, 0), mass, reach, w, radius, block, 1)
    active = bound * np.float32(1.0 + 1e-4) > threshold
    if not active.any():
        return []
    # parts stacked along y, one empty row of cells apart; 8-connected components
    by, bx = active.shape[:2]
    stacked = np.zeros((num_parts, by + 1, bx), bool)
    stacked[:, :by] = np.moveaxis(active, 2, 0)
    labels, _ = ndimage.label(stacked.reshape(-1, bx), structure=np.ones((3, 3), bool))
    boxes = []
    for sy, sx in ndimage.find_objects(labels):
        part, y0 = divmod(sy.start, by + 1)
        boxes.append((part, y0 * block, min((y0 + sy.stop - sy.start) * block, h), sx.start * block,
                      min(sx.stop * block, w)))
    return boxes


def find_peaks_fast(heatmaps, num_parts, threshold=0.1, sigma=3.0):
    """``candidate (n, 4)`` (x, y, score, id) and per part the slice of its rows.

    The same peaks as the reference: the Gaussian (scipy, ``mode="reflect"``)
    and the 4-neighbour test are evaluated only in boxes that can hold a
    value above ``threshold`` (`_active_boxes`), each box plus its one-pixel
    ring filtered from a crop with a ``radius``-pixel margin, one axis at a
    time (bitwise the full-image filter's values there); out-of-map
    neighbours are 0 as in the reference. ``heatmaps`` may be float32 (the
    values are taken as float64, exactly).
    """
    from scipy.ndimage import correlate1d

    raw = heatmaps[:, :, :num_parts]
    h, w = raw.shape[:2]
    r = _gaussian_radius(sigma)
    weights = _gaussian_kernel(float(sigma), r)[::-1]  # as gaussian_filter1d
    found = []  # (part, y, x)
    for part, y0, y1, x0, x1 in _active_boxes(heatmaps, num_parts, threshold, sigma, r):
        # rows/cols of the box and its ring, inside the map
        ry0, ry1, rx0, rx1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        cy0, cy1, cx0, cx1 = max(0, ry0 - r), min(h, ry1 + r), max(0, rx0 - r), min(w, rx1 + r)
        # scipy filters in float64 whatever the input's type
        smooth = correlate1d(raw[cy0:cy1, cx0:cx1, part], weights, 0, np.float64, "reflect")[ry0 - cy0:ry1 - cy0]
        smooth = correlate1d(smooth, weights, 1, np.float64, "reflect")[:, rx0 - cx0:rx1 - cx0]
        if smooth.shape == (y1 - y0 + 2, x1 - x0 + 2):  # the box and its ring, inside the map
            pad = smooth
        else:  # 0 beyond the map's edge
            pad = np.zeros((y1 - y0 + 2, x1 - x0 + 2))
            pad[ry0 - (y0 - 1):ry1 - (y0 - 1), rx0 - (x0 - 1):rx1 - (x0 - 1)] = smooth
        c = pad[1:-1, 1:-1]
        peaks = c > threshold
        for neighbour in (pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]):
            peaks &= c >= neighbour
        ys, xs = np.nonzero(peaks)
        if len(ys):
            found.append(np.stack([np.full(len(ys), part), ys + y0, xs + x0], axis=1))
    if found:
        # sorted by part, then row-major (the reference's ids); boxes of one part may overlap: unique
        found = np.unique(np.concatenate(found), axis=0)
        part, y, x = found[:, 0], found[:, 1], found[:, 2]
    else:
        part = y = x = np.zeros(0, np.int64)
    candidate = np.stack([x, y, raw[y, x, part].astype(np.float64), np.arange(len(x))], axis=1).astype(np.float64)
    bounds = np.searchsorted(part, np.arange(num_parts + 1))
    return candidate.reshape(-1, 4), [slice(bounds[i], bounds[i + 1]) for i in range(num_parts)]


def pair_scores(start, stop, pafs, channels, image_height, threshold=0.05, mid_num=10):
    """The reference's score and criteria of ``P`` candidate pairs at once (any mix of limbs).

    Args:
        start, stop: ``(P, 2)`` x, y of part A / part B (pixels).
        pafs: ``(H, W, C)`` float32 or float64 fields.
        channels: ``(P, 2)`` each pair's x and y PAF channel.

    Returns ``(score (P,), ok (P,))``: mean PAF projection over ``mid_num``
    samples + distance prior, and whether both criteria hold.
    """
    vec = stop - start
    norm = np.maximum(np.sqrt(vec[:, 0] * vec[:, 0] + vec[:, 1] * vec[:, 1]), 0.001)
    unit = vec / norm[:, None]
    # np.linspace(a, b, mid_num) per scalar pair: a + i * ((b - a) / (mid_num - 1)), the last point b exactly
    # (an array np.linspace switches every element to another formula once any step is 0).
    t = np.arange(mid_num, dtype=np.float64)[:, None]
    points = t * (vec / (mid_num - 1))[:, None, :] + start[:, None, :]  # (P, mid_num, 2)
    points[:, -1, :] = stop
    xi = np.rint(points[..., 0]).astype(np.intp)
    yi = np.rint(points[..., 1]).astype(np.intp)
    # float32 values become float64 exactly in the products
    if pafs.flags.c_contiguous:  # one flat gather (numpy's 3-array indexing is several times slower)
        flat, base = pafs.reshape(-1), (yi * pafs.shape[1] + xi) * pafs.shape[2]
        paf_x, paf_y = flat[base + channels[:, 0:1]], flat[base + channels[:, 1:2]]
    else:
        paf_x, paf_y = pafs[yi, xi, channels[:, 0:1]], pafs[yi, xi, channels[:, 1:2]]
    score_mid = paf_x * unit[:, 0:1] + paf_y * unit[:, 1:2]
    total = np.zeros(len(vec))
    for s in range(mid_num):  # left-to-right, as Python's sum()
        total = total + score_mid[:, s]
    score = total / mid_num + np.minimum(0.5 * image_height / norm - 1, 0)
    ok = ((score_mid > threshold).sum(axis=-1) > 0.8 * mid_num) & (score > 0)
    return score, ok


def connect_limbs_fast(candidate, slices, limbs, paf_channels, pafs, image_height, threshold=0.05, mid_num=10):
    """Per limb the accepted connections ``(n, 5)`` (id A, id B, score, index in A, index in B), or None.

    Every limb's candidate pairs are scored in one `pair_scores` call; each
    limb then takes its pairs greedily by decreasing score (ties in the
    reference's order), each candidate once, at most ``min(n_A, n_B)``.
    """
    index_a, index_b, limb_of, sizes = [], [], [], []
    for k, (a, b) in enumerate(limbs):
        n_a, n_b = slices[a].stop - slices[a].start, slices[b].stop - slices[b].start
        sizes.append((n_a, n_b))
        if n_a and n_b:
            ia, ib = np.divmod(np.arange(n_a * n_b), n_b)  # row-major, as the reference's double loop
            index_a.append(ia + slices[a].start)
            index_b.append(ib + slices[b].start)
            limb_of.append(np.full(n_a * n_b, k))
    if not index_a:
        return [None] * len(limbs)
    index_a, index_b, limb_of = np.concatenate(index_a), np.concatenate(index_b), np.concatenate(limb_of)
    channels = np.asarray(paf_channels, np.intp)[limb_of]
    score, ok = pair_scores(candidate[index_a, :2], candidate[index_b, :2], pafs, channels, image_height,
                            threshold, mid_num)
    bounds = np.searchsorted(limb_of, np.arange(len(limbs) + 1))
    connections = []
    for k, (a, b) in enumerate(limbs):
        n_a, n_b = sizes[k]
        if not n_a or not n_b:
            connections.append(None)
            continue
        lo, hi = bounds[k], bounds[k + 1]
        accepted = np.flatnonzero(ok[lo:hi])
        if not len(accepted):
            connections.append(np.zeros((0, 5)))
            continue
        scores = score[lo:hi][accepted]
        order = np.argsort(-scores, kind="stable")  # sorted(..., reverse=True) keeps ties in order
        used_a, used_b = np.zeros(n_a, bool), np.zeros(n_b, bool)
        rows, limit = [], min(n_a, n_b)
        for o in order:
            i, j = divmod(int(accepted[o]), n_b)
            if used_a[i] or used_b[j]:
                continue
            used_a[i] = used_b[j] = True
            rows.append((candidate[slices[a].start + i, 3], candidate[slices[b].start + j, 3], scores[o], i, j))
            if len(rows) >= limit:
                break
        connections.append(np.asarray(rows, np.float64))
    return connections


def assemble_fast(connections, candidate, limbs, num_parts, creates_people, min_parts=4, min_mean_score=0.4):
    """People ``(n, K + 2)`` from the per-limb connections (the reference's assembly rules)."""
    capacity = 16
    subset = np.empty((capacity, num_parts + 2))
    n = 0
    for k, conn in enumerate(connections):
        if conn is None or not len(conn):
            continue
        a, b = limbs[k]
        for row in conn:
            id_a, id_b, score = row[0], row[1], row[2]
            hits = np.flatnonzero((subset[:n, a] == id_a) | (subset[:n, b] == id_b))
            if len(hits) > 2:
                raise RuntimeError(f"Limb {k}: a connection matches {len(hits)} people; the reference parser "
                                   "fails here too (IndexError).")
            if len(hits) == 1 or (len(hits) == 2 and ((subset[hits[0], :-2] >= 0) & (subset[hits[1], :-2] >= 0)).any()):
                j = hits[0]
                if len(hits) == 2 or subset[j, b] != id_b:
                    subset[j, b] = id_b
                    subset[j, -1] += 1
                    subset[j, -2] += candidate[int(id_b), 2] + score
            elif len(hits) == 2:
                j1, j2 = hits
                subset[j1, :-2] += subset[j2, :-2] + 1
                subset[j1, -2:] += subset[j2, -2:]
                subset[j1, -2] += score
                subset[j2:n - 1] = subset[j2 + 1:n].copy()
                n -= 1
            elif creates_people[k]:
                if n == capacity:
                    capacity *= 2
                    subset = np.concatenate([subset, np.empty_like(subset)])
                subset[n] = -1
                subset[n, a], subset[n, b] = id_a, id_b
                subset[n, -1] = 2
                subset[n, -2] = (0 + candidate[int(id_a), 2] + candidate[int(id_b), 2]) + score
                n += 1
    subset = subset[:n]
    keep = ~((subset[:, -1] < min_parts) | (subset[:, -2] / subset[:, -1] < min_mean_score))
    return subset[keep]


def group_fast(heatmaps, pafs, limbs, paf_channels, image_height, creates_people, peak_threshold=0.1,
               paf_threshold=0.05, sigma=3.0, mid_num=10, min_parts=4, min_mean_score=0.4):
    """The vectorised parser; arguments and result as `openpose_grouping_reference.group_reference`."""
    num_parts = 1 + max(max(pair) for pair in limbs)
    candidate, slices = find_peaks_fast(heatmaps, num_parts, peak_threshold, sigma)
    connections = connect_limbs_fast(candidate, slices, limbs, paf_channels, np.asarray(pafs), image_height,
                                     paf_threshold, mid_num)
    subset = assemble_fast(connections, candidate, limbs, num_parts, creates_people, min_parts, min_mean_score)
    return candidate, subset


def group_people(heatmaps, pafs, limbs, paf_channels, image_height, method="fast", creates_people=None,
                 **settings):
    """``(candidate, subset)`` of image-resolution maps (see the module docstring).

    Args:
        heatmaps: ``(H, W, >= K)`` confidence maps (parts first; a
            background channel after them is ignored).
        pafs: ``(H, W, C)`` part affinity fields.
        limbs: ``[(part_a, part_b), ...]``.
        paf_channels: ``[(x_channel, y_channel), ...]``, one per limb.
        image_height: the original image's height in pixels (distance prior).
        method: "fast" or "reference".
        creates_people: per limb, may it start a person (default
            `default_creates_people`).
        **settings: `peak_threshold`, `paf_threshold`, `sigma`, `mid_num`,
            `min_parts`, `min_mean_score`.
    """
    if method not in METHODS:
        raise ValueError(f"grouping method must be one of {METHODS}, got {method!r}.")
    # float32 maps stay float32 for the fast parser (it reads values as float64, exactly): no full-map copy
    keep = (np.float32, np.float64) if method == "fast" else (np.float64,)
    heatmaps, pafs = np.asarray(heatmaps), np.asarray(pafs)
    heatmaps = heatmaps if heatmaps.dtype in keep else heatmaps.astype(np.float64)
    pafs = pafs if pafs.dtype in keep else pafs.astype(np.float64)
    if heatmaps.ndim != 3 or pafs.ndim != 3 or heatmaps.shape[:2] != pafs.shape[:2]:
        raise ValueError(f"heatmaps and pafs must be (H, W, C) maps of one size, got {heatmaps.shape} and "
                         f"{pafs.shape}.")
    if creates_people is None:
        creates_people = default_creates_people(limbs)
    fn = group_fast if method == "fast" else reference.group_reference
    return fn(heatmaps, pafs, [tuple(p) for p in limbs], [tuple(c) for c in paf_channels], image_height,
              creates_people, **settings)


def people_arrays(candidate, subset, num_parts):
    """``(keypoints (N, K, 2), scores (N, K), person_scores (N,))`` float32; missing parts: 0, score 0."""
    n = len(subset)
    keypoints = np.zeros((n, num_parts, 2), np.float32)
    scores = np.zeros((n, num_parts), np.float32)
    index = subset[:, :num_parts].astype(np.int64) if n else np.zeros((0, num_parts), np.int64)
    present = index >= 0
    keypoints[present] = candidate[index[present], :2]
    scores[present] = candidate[index[present], 2]
    person = (subset[:, -2] / np.maximum(subset[:, -1], 1)).astype(np.float32) if n else np.zeros(0, np.float32)
    return keypoints, scores, person
