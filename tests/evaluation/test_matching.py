"""IoU matching: hand-computed counts, the StarDist statistics and a dense Hungarian
reference (StarDist's own algorithm) on random instance images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from napari_res101unet.evaluation.matching import THRESHOLDS, MatchTally, pooled_matching
from napari_res101unet.evaluation.objects import object_scores, object_tally


def _at(result: dict, thresh: float) -> dict:
    return next(m for m in result["matching"] if m["thresh"] == thresh)


def test_default_thresholds():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_hand_computed_counts_and_panoptic_quality():
    truth = np.zeros((10, 20), np.uint8)
    truth[0:4, 0:4] = 1  # 16 px
    truth[0:4, 10:14] = 2  # 16 px
    truth[6:8, 6:8] = 3  # missed
    pred = np.zeros_like(truth)
    pred[0:4, 0:4] = 4  # IoU 1
    pred[0:4, 11:15] = 5  # IoU 12/20 = 0.6
    pred[8:10, 16:18] = 6  # false positive
    r = object_scores(pred, truth, thresholds=(0.5, 0.6, 0.7))
    low, mid, high = r["matching"]
    assert (low["tp"], low["fp"], low["fn"]) == (2, 1, 1)
    assert mid["tp"] == 2  # IoU >= thresh, as StarDist
    assert (high["tp"], high["fp"], high["fn"]) == (1, 2, 2)
    assert low["precision"] == pytest.approx(2 / 3) and low["recall"] == pytest.approx(2 / 3)
    assert low["f1"] == pytest.approx(2 / 3) and low["accuracy"] == pytest.approx(2 / 4)
    assert low["mean_matched_iou"] == pytest.approx(0.8)
    assert low["mean_true_iou"] == pytest.approx(1.6 / 3)
    assert low["panoptic_quality"] == pytest.approx(1.6 / (2 + 0.5 + 0.5))
    assert high["mean_matched_iou"] == pytest.approx(1.0)


def test_empty_images_follow_stardist():
    empty = np.zeros((6, 6), np.uint8)
    m = _at(object_scores(empty, empty), 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["f1"], m["panoptic_quality"]) == (0, 0, 0, 0.0, 0.0)


def test_conflicts_are_solved_optimally():
    # at IoU >= 0.3 the middle prediction could pair with either truth; the optimum
    # pairs it with the right one so that the left one keeps its own partner
    truth = np.zeros((4, 12), np.uint8)
    truth[:, 0:4] = 1
    truth[:, 4:8] = 2
    pred = np.zeros_like(truth)
    pred[:, 0:2] = 1  # IoU with truth 1: 0.5
    pred[:, 2:7] = 2  # IoU with truth 1: 8/28, with truth 2: 12/24 = 0.5
    m = object_scores(pred, truth, thresholds=(0.25,))["matching"][0]
    assert m["tp"] == 2 and m["mean_matched_iou"] == pytest.approx(0.5)


def test_pooled_counts_not_means():
    a = MatchTally(0.5, tp=1, n_true=1, n_pred=1, iou_sum=0.9)
    b = MatchTally(0.5, tp=0, n_true=3, n_pred=0, iou_sum=0.0)
    (pooled,) = pooled_matching([[a], [b]])
    assert pooled["f1"] == pytest.approx(2 / (2 + 0 + 3))  # per-image mean would be 0.5
    assert pooled["mean_true_iou"] == pytest.approx(0.9 / 4)
    with pytest.raises(ValueError, match="cannot pool IoU thresholds"):
        a + MatchTally(0.7)


def test_bad_thresholds_are_named():
    image = np.ones((3, 3), np.uint8)
    for bad in ((0.0,), (1.5,), ()):
        with pytest.raises(ValueError, match=r"IoU thresholds must be in \(0, 1\]"):
            object_tally(image, image, thresholds=bad)


def _dense_reference(truth: np.ndarray, pred: np.ndarray, thresh: float) -> tuple[int, float]:
    """StarDist's algorithm: the dense IoU matrix and one Hungarian assignment."""
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t, p = t.reshape(truth.shape), p.reshape(pred.shape)
    overlap = np.zeros((t.max() + 1, p.max() + 1))
    np.add.at(overlap, (t.ravel(), p.ravel()), 1)
    iou = overlap / (overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) - overlap)
    scores = iou[1:, 1:]
    n = min(scores.shape)
    if n == 0:
        return 0, 0.0
    rows, cols = linear_sum_assignment(-(scores >= thresh).astype(float) - scores / (2 * n))
    ok = scores[rows, cols] >= thresh
    return int(ok.sum()), float(scores[rows, cols][ok].sum())


@pytest.mark.parametrize("seed", range(6))
def test_matches_a_dense_hungarian_reference(seed):
    rng = np.random.default_rng(seed)
    shape = (40, 40)
    yy, xx = np.mgrid[: shape[0], : shape[1]]

    def blobs(count):
        out = np.zeros(shape, np.uint16)
        for k in range(1, count + 1):
            cy, cx, r = rng.uniform(0, 40), rng.uniform(0, 40), rng.uniform(2, 8)
            out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
        return out

    truth, pred = blobs(12), blobs(12)
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    result = object_scores(pred, truth, thresholds=thresholds)
    for m, thresh in zip(result["matching"], thresholds):
        tp, iou_sum = _dense_reference(truth, pred, thresh)
        assert m["tp"] == tp
        assert m["mean_matched_iou"] * m["tp"] == pytest.approx(iou_sum)
