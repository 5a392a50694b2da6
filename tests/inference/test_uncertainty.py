"""The uncertainty map (entropy of the blended probabilities) and the review ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_res101unet as nr
from napari_res101unet.inference.uncertainty import entropy_map, rank_uncertain, review_text


def half_ambiguous(x: torch.Tensor) -> torch.Tensor:
    """Binary logits: confident (+-6) in the left half of every tile, ~0 in the right half
    of the *image* (the input's second channel carries the column, so tiling is exact)."""
    right = x[:, 1:2] > 0.5
    sure = torch.where(x[:, :1] > 0, 6.0, -6.0)
    logit = torch.where(right, 0.05 * torch.ones_like(sure), sure)
    return torch.cat([torch.zeros_like(logit), logit], dim=1)


def column_image(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    first = rng.normal(0, 1, (h, w)).astype(np.float32)
    column = np.broadcast_to((np.arange(w) >= w // 2).astype(np.float32), (h, w))
    return np.stack([first, column, np.zeros_like(first)], axis=-1)


def test_map_is_high_where_the_predictor_is_ambiguous_and_low_elsewhere():
    image = column_image()
    labels, unc = nr.segment(
        image, half_ambiguous, return_uncertainty=True, tile_size=64, normalization="none"
    )
    assert unc.shape == labels.shape == (96, 128) and unc.dtype == np.float32
    assert unc.min() >= 0.0 and unc.max() <= 1.0
    left, right = unc[:, :64], unc[:, 64:]
    assert right.min() > 0.99  # p ~ 0.51: the classes are equally likely
    assert left.max() < 0.05  # p ~ 0.0025 or 0.9975


def test_uncertainty_comes_from_the_same_pass_as_the_probabilities():
    image = column_image()
    _labels, probs, unc = nr.segment(
        image,
        half_ambiguous,
        return_probabilities=True,
        return_uncertainty=True,
        tile_size=64,
        normalization="none",
    )
    assert np.allclose(unc, entropy_map(probs, 2), atol=1e-6)
    result = nr.run_segmentation(image, half_ambiguous, tile_size=64, normalization="none")
    assert result.uncertainty is None and result.probabilities is None


def test_tta_averaged_probabilities_raise_the_entropy_where_flips_disagree():
    def lopsided(x):  # confident, but the sign depends on the orientation of the tile
        ramp = torch.linspace(-6, 6, x.shape[-1]).expand_as(x[:, :1])
        return torch.cat([torch.zeros_like(ramp), ramp], dim=1)

    image = np.zeros((64, 64, 3), np.float32)
    _, plain = nr.segment(image, lopsided, return_uncertainty=True, normalization="none")
    _, tta = nr.segment(image, lopsided, return_uncertainty=True, normalization="none", tta=True)
    assert plain[:, :8].mean() < 0.1 and tta[:, :8].mean() > 0.9


def test_multiclass_entropy_is_normalised():
    probs = np.zeros((3, 2, 2), np.float32)
    probs[:, 0, 0] = 1 / 3  # uniform: 1
    probs[0, 0, 1] = 1.0  # sure: 0
    probs[:, 1, :] = [[0.5], [0.5], [0.0]]  # two of three: log 2 / log 3
    h = entropy_map(probs, 2)
    assert h[0, 0] == pytest.approx(1.0, abs=1e-5) and h[0, 1] == pytest.approx(0, abs=1e-5)
    assert h[1, 0] == pytest.approx(np.log(2) / np.log(3), abs=1e-5)
    with pytest.raises(ValueError, match="do not match"):
        entropy_map(np.zeros((2, 3, 4, 4)), 2)


def test_rank_slices_most_uncertain_first():
    unc = np.zeros((5, 8, 8), np.float32)
    for z, v in enumerate([0.1, 0.6, 0.05, 0.9, 0.3]):
        unc[z] = v
    ranked = rank_uncertain(unc, by="slice", top=3)
    assert [r.index for r in ranked] == [3, 1, 4]
    assert [round(r.score, 2) for r in ranked] == [0.9, 0.6, 0.3]
    assert review_text(ranked) == "review: slice 3 (0.90), slice 1 (0.60), slice 4 (0.30)"
    assert len(rank_uncertain(unc, top=None)) == 5


def test_rank_regions_of_the_labels_by_mean_uncertainty():
    labels = np.zeros((32, 32), np.uint8)
    labels[2:8, 2:8] = 1  # region 1: sure
    labels[20:30, 20:30] = 1  # region 2: unsure
    unc = np.full((32, 32), 0.1, np.float32)
    unc[20:30, 20:30] = 0.8
    ranked = rank_uncertain(unc, labels, by="region")
    assert [r.score for r in ranked] == pytest.approx([0.8, 0.1])
    assert ranked[0].bbox == (20, 20, 30, 30) and ranked[0].centroid == (24.5, 24.5)
    blobs = rank_uncertain(unc, by="region")  # no labels: the areas of uncertainty >= 0.5
    assert len(blobs) == 1 and blobs[0].bbox == (20, 20, 30, 30)
    labels[0, 31] = 1  # a one-pixel speck, very uncertain: below min_size, not listed
    unc[0, 31] = 1.0
    assert len(rank_uncertain(unc, labels, by="region")) == 2
    assert rank_uncertain(unc, labels, by="region", min_size=1)[0].bbox == (0, 31, 1, 32)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"by": "image"}, "by must be one of"),
        ({"top": 0}, "top must be a positive int"),
        ({"by": "slice"}, "this map is 2D"),
        ({"by": "region", "labels": np.zeros((3, 3))}, "do not match"),
        ({"by": "region", "min_size": 0}, "min_size must be a positive int"),
    ],
)
def test_rank_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rank_uncertain(np.zeros((8, 8), np.float32), **kwargs)
