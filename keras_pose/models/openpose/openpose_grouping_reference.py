"""The reference OpenPose parser, ported step for step (Hzzone/pytorch-openpose `src/body.py`).

The same algorithm as the reference `Body.__call__` after the network (and
controlnet-aux's copy of it), with the same float64 arithmetic in the same
order, so it reproduces the reference's candidates and people exactly:

1. peaks per part: ``scipy.ndimage.gaussian_filter(map, sigma)``; a peak is
   >= its four neighbours (0 outside the map) and > ``peak_threshold``;
   score = the unsmoothed map there; ids consecutive over parts, row-major;
2. per limb, every (A, B) candidate pair: ``mid_num`` points
   ``np.linspace(A, B)``, PAF sampled at the rounded points, dotted with the
   unit vector A -> B; pair score = mean + ``min(0.5 * H / |B - A| - 1, 0)``;
   kept if more than 80 % of the samples exceed ``paf_threshold`` and the
   score is positive; greedy matching by descending score, each A and B once;
3. assembly limb by limb into people (join, merge disjoint people, or start
   a new person where the limb may create one), then people with fewer than
   ``min_parts`` parts or mean score below ``min_mean_score`` are dropped.

This is the slow, loop-by-loop version (kept as the parity reference and
for the benchmark); `openpose_grouping.group_fast` is the default.
"""

import math

import numpy as np


def find_peaks_reference(heatmaps, num_parts, threshold=0.1, sigma=3.0):
    """Per part a list of ``(x, y, score, id)`` tuples (see the module docstring, step 1)."""
    from scipy.ndimage import gaussian_filter

    all_peaks, counter = [], 0
    for part in range(num_parts):
        map_ori = heatmaps[:, :, part]
        one = gaussian_filter(map_ori, sigma=sigma)
        left = np.zeros(one.shape)
        left[1:, :] = one[:-1, :]
        right = np.zeros(one.shape)
        right[:-1, :] = one[1:, :]
        up = np.zeros(one.shape)
        up[:, 1:] = one[:, :-1]
        down = np.zeros(one.shape)
        down[:, :-1] = one[:, 1:]
        binary = np.logical_and.reduce((one >= left, one >= right, one >= up, one >= down, one > threshold))
        ys, xs = np.nonzero(binary)
        peaks = [(x, y, map_ori[y, x], counter + i) for i, (x, y) in enumerate(zip(xs, ys))]
        all_peaks.append(peaks)
        counter += len(peaks)
    return all_peaks


def connect_limbs_reference(all_peaks, pafs, limbs, paf_channels, image_height, threshold=0.05, mid_num=10):
    """Per limb the accepted connections ``(n, 5)``: id A, id B, score, index in A, index in B."""
    connections, skipped = [], []
    for k, ((a, b), (cx, cy)) in enumerate(zip(limbs, paf_channels)):
        cand_a, cand_b = all_peaks[a], all_peaks[b]
        n_a, n_b = len(cand_a), len(cand_b)
        if n_a == 0 or n_b == 0:
            skipped.append(k)
            connections.append([])
            continue
        score_mid = pafs[:, :, [cx, cy]]
        scored = []
        for i in range(n_a):
            for j in range(n_b):
                vec = np.subtract(cand_b[j][:2], cand_a[i][:2])
                norm = math.sqrt(vec[0] * vec[0] + vec[1] * vec[1])
                norm = max(0.001, norm)
                vec = np.divide(vec, norm)
                points = list(zip(np.linspace(cand_a[i][0], cand_b[j][0], num=mid_num),
                                  np.linspace(cand_a[i][1], cand_b[j][1], num=mid_num)))
                vec_x = np.array([score_mid[int(round(p[1])), int(round(p[0])), 0] for p in points])
                vec_y = np.array([score_mid[int(round(p[1])), int(round(p[0])), 1] for p in points])
                score_midpts = np.multiply(vec_x, vec[0]) + np.multiply(vec_y, vec[1])
                score = sum(score_midpts) / len(score_midpts) + min(0.5 * image_height / norm - 1, 0)
                criterion1 = len(np.nonzero(score_midpts > threshold)[0]) > 0.8 * len(score_midpts)
                if criterion1 and score > 0:
                    scored.append([i, j, score, score + cand_a[i][2] + cand_b[j][2]])
        scored = sorted(scored, key=lambda x: x[2], reverse=True)
        connection = np.zeros((0, 5))
        for i, j, s, _ in scored:
            if i not in connection[:, 3] and j not in connection[:, 4]:
                connection = np.vstack([connection, [cand_a[i][3], cand_b[j][3], s, i, j]])
                if len(connection) >= min(n_a, n_b):
                    break
        connections.append(connection)
    return connections, skipped


def assemble_reference(connections, skipped, candidate, limbs, num_parts, creates_people, min_parts=4,
                       min_mean_score=0.4):
    """People ``(n, K + 2)``: candidate index per part (-1 = none), total score, part count."""
    subset = -1 * np.ones((0, num_parts + 2))
    for k in range(len(limbs)):
        if k in skipped:
            continue
        part_as = connections[k][:, 0]
        part_bs = connections[k][:, 1]
        index_a, index_b = limbs[k]
        for i in range(len(connections[k])):
            found = 0
            subset_idx = [-1, -1]
            for j in range(len(subset)):
                if subset[j][index_a] == part_as[i] or subset[j][index_b] == part_bs[i]:
                    subset_idx[found] = j
                    found += 1
            if found == 1:
                j = subset_idx[0]
                if subset[j][index_b] != part_bs[i]:
                    subset[j][index_b] = part_bs[i]
                    subset[j][-1] += 1
                    subset[j][-2] += candidate[part_bs[i].astype(int), 2] + connections[k][i][2]
            elif found == 2:
                j1, j2 = subset_idx
                membership = ((subset[j1] >= 0).astype(int) + (subset[j2] >= 0).astype(int))[:-2]
                if len(np.nonzero(membership == 2)[0]) == 0:
                    subset[j1][:-2] += subset[j2][:-2] + 1
                    subset[j1][-2:] += subset[j2][-2:]
                    subset[j1][-2] += connections[k][i][2]
                    subset = np.delete(subset, j2, 0)
                else:
                    subset[j1][index_b] = part_bs[i]
                    subset[j1][-1] += 1
                    subset[j1][-2] += candidate[part_bs[i].astype(int), 2] + connections[k][i][2]
            elif not found and creates_people[k]:
                row = -1 * np.ones(num_parts + 2)
                row[index_a] = part_as[i]
                row[index_b] = part_bs[i]
                row[-1] = 2
                row[-2] = sum(candidate[connections[k][i, :2].astype(int), 2]) + connections[k][i][2]
                subset = np.vstack([subset, row])
    delete = [i for i in range(len(subset))
              if subset[i][-1] < min_parts or subset[i][-2] / subset[i][-1] < min_mean_score]
    return np.delete(subset, delete, axis=0)


def group_reference(heatmaps, pafs, limbs, paf_channels, image_height, creates_people, peak_threshold=0.1,
                    paf_threshold=0.05, sigma=3.0, mid_num=10, min_parts=4, min_mean_score=0.4):
    """``(candidate (n, 4) x, y, score, id; subset (people, K + 2))`` as the reference returns them.

    Args:
        heatmaps: ``(H, W, >= K)`` float64 confidence maps at image resolution.
        pafs: ``(H, W, C)`` float64 PAFs at image resolution.
        limbs, paf_channels: per limb the parts (A, B) and PAF channels (x, y).
        image_height: H of the original image (the distance prior).
        creates_people: per limb, whether a connection of two unassigned
            parts starts a new person (the reference: all but the last two
            COCO-18 limbs).
    """
    num_parts = 1 + max(max(pair) for pair in limbs)
    all_peaks = find_peaks_reference(heatmaps, num_parts, peak_threshold, sigma)
    connections, skipped = connect_limbs_reference(all_peaks, pafs, limbs, paf_channels, image_height,
                                                   paf_threshold, mid_num)
    candidate = np.array([item for peaks in all_peaks for item in peaks], dtype=np.float64).reshape(-1, 4)
    subset = assemble_reference(connections, skipped, candidate, limbs, num_parts, creates_people, min_parts,
                                min_mean_score)
    return candidate, subset
