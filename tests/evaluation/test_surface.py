"""Dice, HD95 and ASSD in physical units: against MONAI itself and a brute-force
reference over all pairs of surface points."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from napari_res101unet.evaluation.surface import mean_surface_scores, surface_scores


def _blob(rng, shape, count=3) -> np.ndarray:
    grid = np.indices(shape)
    out = np.zeros(shape, bool)
    for _ in range(count):
        centre = rng.uniform(0, shape)
        radii = rng.uniform(1.5, max(2.0, min(shape) / 3), len(shape))
        out |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
    return out


def _brute_force(pred, truth, spacing):
    """Surfaces from the neighbours of each pixel; distances from every pair of points."""

    def surface(mask):
        padded = np.pad(mask, 1)
        inner = np.ones_like(mask)
        for axis in range(mask.ndim):
            for step in (-1, 1):
                inner &= np.roll(padded, step, axis)[(slice(1, -1),) * mask.ndim]
        return np.argwhere(mask & ~inner) * np.asarray(spacing)

    a, b = surface(pred), surface(truth)
    d = cdist(a, b)
    ab, ba = d.min(axis=1), d.min(axis=0)
    hd95 = max(np.percentile(ab, 95), np.percentile(ba, 95))
    return hd95, np.concatenate([ab, ba]).mean()


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [((24, 30), (0.7, 1.3)), ((9, 14, 12), (3.0, 0.8, 0.8)), ((16, 16), (1.0, 1.0))],
)
@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    pred, truth = _blob(rng, shape), _blob(rng, shape)
    if not (pred.any() and truth.any()):
        pytest.skip("empty draw")
    result = surface_scores(pred, truth, spacing)
    hd95, assd = _brute_force(pred, truth, spacing)
    assert result["hd95"] == pytest.approx(hd95) and result["assd"] == pytest.approx(assd)
    both = np.sum(pred & truth)
    assert result["dice"] == pytest.approx(2 * both / (pred.sum() + truth.sum()))
    assert result["empty"] is None


@pytest.mark.parametrize(
    ("shape", "spacing"), [((40, 48), (0.5, 1.7)), ((12, 20, 18), (2.5, 0.6, 0.9))]
)
@pytest.mark.parametrize("seed", range(4))
def test_identical_to_monai(shape, spacing, seed):
    monai_metrics = pytest.importorskip("monai.metrics")
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    pred, truth = _blob(rng, shape, 4), _blob(rng, shape, 4)
    pred[(0,) * len(shape)] = True  # a pixel on the image border: MONAI's surface there
    if not truth.any():
        pytest.skip("empty draw")

    def onehot(mask):
        return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd95 = monai_metrics.compute_hausdorff_distance(
            onehot(pred), onehot(truth), percentile=95, spacing=list(spacing)
        )
        assd = monai_metrics.compute_average_surface_distance(
            onehot(pred), onehot(truth), symmetric=True, spacing=list(spacing)
        )
    result = surface_scores(pred, truth, spacing)
    assert result["hd95"] == pytest.approx(float(hd95), rel=1e-5)
    assert result["assd"] == pytest.approx(float(assd), rel=1e-5)


def test_empty_masks_give_finite_scores():
    mask = np.zeros((5, 9), bool)
    mask[1:3, 1:3] = True
    empty = np.zeros_like(mask)
    diagonal = math.hypot(4 * 2.0, 8 * 0.5)
    assert surface_scores(empty, empty, (2.0, 0.5)) == {
        "dice": 1.0, "hd95": 0.0, "assd": 0.0, "empty": "both"
    }  # fmt: skip
    r = surface_scores(empty, mask, (2.0, 0.5))
    assert r["empty"] == "prediction" and r["dice"] == 0.0
    assert r["hd95"] == pytest.approx(diagonal) and r["assd"] == pytest.approx(diagonal)
    assert surface_scores(mask, empty, (2.0, 0.5))["empty"] == "truth"


def test_identical_masks_and_instance_maps():
    labels = np.zeros((10, 10), np.uint16)
    labels[2:5, 2:5] = 7
    labels[5:8, 5:8] = 300
    r = surface_scores(labels, labels > 0, (0.5, 0.5))
    assert r == {"dice": 1.0, "hd95": 0.0, "assd": 0.0, "empty": None}
    shifted = np.roll(labels > 0, 2, axis=1)
    assert surface_scores(shifted, labels, (1.0, 0.5))["hd95"] == pytest.approx(1.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"prediction shape \(3, 3\) != truth shape \(3, 4\)"):
        surface_scores(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
    for bad in ((1.0,), (1.0, 0.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
            surface_scores(np.zeros((3, 3), bool), np.zeros((3, 3), bool), bad)


def test_mean_over_cases():
    cases = [{"dice": 1.0, "hd95": 0.0, "assd": 0.0}, {"dice": 0.5, "hd95": 4.0, "assd": 2.0}]
    assert mean_surface_scores(cases) == {"dice": 0.75, "hd95": 2.0, "assd": 1.0}
