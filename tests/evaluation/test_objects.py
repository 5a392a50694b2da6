"""GlaS object F1, Dice and Hausdorff: hand-computed cases, pooling, an independent
brute-force reference, empty sides and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import directed_hausdorff

from napari_res101unet.evaluation.objects import (
    object_scores,
    object_tally,
    pooled_scores,
)


def _glas(pred, truth):
    r = object_scores(pred, truth)
    return r["object_f1"], r["object_dice"], r["object_hausdorff"]


def test_hand_computed_image():
    g = np.zeros((20, 20), np.uint8)
    g[2:8, 2:8] = 1  # 36 px
    g[10:18, 10:18] = 2  # 64 px
    s = np.zeros_like(g)
    s[2:8, 2:7] = 1  # 30 px inside G1: covers 30/36 -> TP, Dice 60/66, H 1
    s[12:18, 10:18] = 3  # 48 px inside G2: 48/64 -> TP, Dice 96/112, H 2
    s[0, 19] = 5  # one pixel overlapping nothing: FP, Dice 0
    r = object_scores(s, g)
    assert (r["tp"], r["fp"], r["fn"], r["n_pred"], r["n_true"]) == (2, 1, 0, 3, 2)
    assert r["object_f1"] == pytest.approx(4 / 5)
    dice_s = (30 * 60 / 66 + 48 * 96 / 112 + 0) / 79
    dice_g = (36 * 60 / 66 + 64 * 96 / 112) / 100
    assert r["object_dice"] == pytest.approx((dice_s + dice_g) / 2)
    # the lone pixel takes the Hausdorff distance of the nearest gland: G1, whose far
    # corner (7, 2) is sqrt(7^2 + 17^2) away (G2's (17, 10) is farther)
    lone = math.hypot(7, 17)
    hd_s = (30 * 1 + 48 * 2 + 1 * lone) / 79
    hd_g = (36 * 1 + 64 * 2) / 100
    assert r["object_hausdorff"] == pytest.approx((hd_s + hd_g) / 2)
    assert r["objects_from"] == {"prediction": "instance ids", "truth": "instance ids"}


def test_exactly_half_is_not_a_true_positive():
    g = np.zeros((8, 8), np.uint8)
    g[2:6, 2:6] = 1
    s = np.zeros_like(g)
    s[2:6, 2:4] = 1  # 8 of 16 pixels: "more than 50 %" fails
    assert object_scores(s, g)["tp"] == 0
    s[2, 4] = 1  # 9 of 16
    assert object_scores(s, g)["tp"] == 1


def test_pooled_scores_weigh_objects_over_the_whole_set():
    first = np.zeros((20, 20), np.uint8)
    first[0:10, 0:10] = 1  # 100 px
    first[12:14, 12:14] = 2  # 4 px
    truth2 = np.zeros((8, 8), np.uint8)
    truth2[2:6, 2:6] = 1  # 16 px
    pred2 = np.zeros_like(truth2)
    pred2[2:6, 2:4] = 1  # 8 px: half of it, not a TP; Dice 2/3; H 2
    tallies = [object_tally(first, first), object_tally(pred2, truth2)]
    per_image = [t.scores() for t in tallies]
    assert [p["object_f1"] for p in per_image] == [1.0, 0.0]
    assert per_image[1]["object_dice"] == pytest.approx(2 / 3)
    assert per_image[1]["object_hausdorff"] == pytest.approx(2.0)

    pooled = pooled_scores(tallies)
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (2, 1, 1)
    assert pooled["object_f1"] == pytest.approx(4 / 6)  # mean of per-image F1: 0.5
    dice_s = (100 + 4 + 8 * 2 / 3) / 112
    dice_g = (100 + 4 + 16 * 2 / 3) / 120
    assert pooled["object_dice"] == pytest.approx((dice_s + dice_g) / 2)  # mean: 0.833
    hd_s, hd_g = 8 * 2 / 112, 16 * 2 / 120
    assert pooled["object_hausdorff"] == pytest.approx((hd_s + hd_g) / 2)  # mean: 1.0
    assert pooled["object_dice"] != pytest.approx(np.mean([p["object_dice"] for p in per_image]))


def test_empty_sides_give_defined_finite_scores():
    truth = np.zeros((10, 10), np.uint8)
    truth[2:4, 2:4] = 1
    empty = np.zeros_like(truth)
    diagonal = math.hypot(9, 9)
    assert _glas(empty, empty) == (1.0, 1.0, 0.0)
    assert _glas(empty, truth) == (0.0, 0.0, pytest.approx(diagonal))
    assert _glas(truth, empty) == (0.0, 0.0, pytest.approx(diagonal))
    r = object_scores(empty, truth)
    assert (r["tp"], r["fp"], r["fn"]) == (0, 0, 1)
    for scores in (r, object_scores(empty, empty)):
        assert all(math.isfinite(v) for v in (scores["object_dice"], scores["object_hausdorff"]))
    # pooled: a set whose truth never has objects
    pooled = pooled_scores([object_tally(truth, empty), object_tally(empty, empty)])
    assert pooled["object_f1"] == 0.0 and pooled["object_hausdorff"] == pytest.approx(diagonal)


def test_one_pixel_objects():
    truth = np.zeros((5, 5), np.uint8)
    truth[1, 1] = 1
    truth[3, 3] = 2
    pred = np.zeros_like(truth)
    pred[1, 1] = 7
    pred[3, 4] = 9
    r = object_scores(pred, truth)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    assert r["object_dice"] == pytest.approx(0.5)
    assert r["object_hausdorff"] == pytest.approx(0.5)  # the two unmatched pixels are 1 apart


def test_binary_masks_become_8_connected_components():
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = 255  # diagonal neighbours: one object
    mask[4, 4] = 255
    r = object_scores(mask, mask > 0)
    assert r["n_pred"] == r["n_true"] == 2
    assert r["objects_from"]["truth"] == "connected components (8-connectivity)"
    volume = np.zeros((3, 4, 4), bool)
    volume[0, 0, 0] = volume[1, 1, 1] = True  # corner neighbours in 3D
    r = object_scores(volume, volume)
    assert r["n_true"] == 1 and "26-connectivity" in r["objects_from"]["truth"]
    assert object_scores(mask, mask, objects_from="instances")["n_true"] == 1


def test_ties_go_to_the_smallest_id():
    truth = np.zeros((4, 8), np.uint8)
    truth[:, :4] = 3
    truth[:, 4:] = 5
    pred = np.zeros_like(truth)
    pred[1:3, 2:6] = 1  # 4 pixels in each: the partner is object 3
    r = object_scores(pred, truth)
    # Dice with object 3 (16 px): 2*4/(8+16); object 3 and 5 each take the predicted one
    assert r["object_dice"] == pytest.approx((8 / 24 + (16 * 8 / 24 + 16 * 8 / 24) / 32) / 2)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"prediction shape \(4, 4\) != truth shape \(4, 5\)"):
        object_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError, match="prediction must hold integer labels.*float32"):
        object_scores(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="truth holds negative labels"):
        object_scores(np.zeros((4, 4), np.int8), -np.ones((4, 4), np.int8))
    with pytest.raises(ValueError, match=r"must be 2D .* got shape \(4,\)"):
        object_scores(np.zeros(4, np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="objects_from must be one of"):
        object_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), objects_from="x")


# -- an independent reference: the published definitions, object by object ------------


def _hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = np.argwhere(a), np.argwhere(b)
    return max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])


def _most_overlapped(obj: np.ndarray, other: np.ndarray) -> int:
    values = other[obj]
    values = values[values > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def _reference(s: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    ids_s, ids_g = np.unique(s[s > 0]), np.unique(g[g > 0])
    tp = sum(
        1
        for i in ids_s
        if (j := _most_overlapped(s == i, g))
        and np.sum((s == i) & (g == j)) / np.sum(g == j) > 0.5
    )
    f1 = 2 * tp / (len(ids_s) + len(ids_g)) if len(ids_s) + len(ids_g) else 1.0

    def side(a, ids_a, b, ids_b):
        dice = hd = 0.0
        total = np.sum(a > 0)
        for i in ids_a:
            obj = a == i
            j = _most_overlapped(obj, b)
            partner = b == j if j else np.zeros_like(obj)
            dice += obj.sum() / total * 2 * np.sum(obj & partner) / (obj.sum() + partner.sum())
            dist = _hausdorff(obj, partner) if j else min(_hausdorff(obj, b == k) for k in ids_b)
            hd += obj.sum() / total * dist
        return dice, hd

    dice_s, hd_s = side(s, ids_s, g, ids_g)
    dice_g, hd_g = side(g, ids_g, s, ids_s)
    return f1, (dice_s + dice_g) / 2, (hd_s + hd_g) / 2


def _random_instances(rng, shape=(48, 56), count=9) -> np.ndarray:
    out = np.zeros(shape, np.uint16)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(count):
        cy, cx = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        ry, rx = rng.uniform(1, 9, 2)
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.integers(1, 400)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_matches_the_brute_force_definition(seed):
    rng = np.random.default_rng(seed)
    truth = _random_instances(rng)
    pred = _random_instances(rng) if seed % 2 else np.roll(truth, (1, 2), (0, 1))
    pred[rng.random(pred.shape) < 0.01] = 999  # scattered specks: far unmatched objects
    expected = _reference(pred, truth)
    assert _glas(pred, truth) == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_70000_objects_score_in_seconds():
    import time

    n, pitch = 2048, 7.74
    truth = np.zeros((n, n), np.uint32)
    centres = (np.arange(0, n / pitch) * pitch + 3).astype(int)
    centres = centres[centres < n - 4]
    for k, (y, x) in enumerate(((y, x) for y in centres for x in centres), start=1):
        truth[y - 2 : y + 3, x - 2 : x + 3] = k
    assert truth.max() > 69_000
    pred = np.roll(truth, 1, axis=1)
    pred[(np.random.default_rng(0).random(int(truth.max()) + 1) < 0.1)[pred]] = 0
    started = time.perf_counter()
    r = object_scores(pred, truth)
    assert time.perf_counter() - started < 60
    assert r["n_true"] == truth.max() and 0.9 < r["object_f1"] < 1
    assert r["object_hausdorff"] > 1
