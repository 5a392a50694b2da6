"""Spacing-aware inference: resampling to the model's pixel spacing and back (injected
predictors; no network)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from predictors import per_pixel

from napari_res101unet.inference.segment import run_segmentation
from napari_res101unet.model import ModelSpec
from napari_res101unet.preprocess.spacing import (
    SPACING_TOLERANCE,
    check_pixel_size,
    nearest,
    plan_resampling,
    resize_slices,
)

SEEN: list[tuple[int, ...]] = []


class Spaced(torch.nn.Module):
    """``per_pixel`` as a module with a spec (what a trained model carries)."""

    def __init__(self, spacing=None, intensity=None) -> None:
        super().__init__()
        self.spec = ModelSpec(
            in_channels=1,
            classes=2,
            normalization={"mode": "minmax"},
            spacing=spacing,
            intensity=intensity,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append(tuple(x.shape[-2:]))
        return per_pixel(x)


def square(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A bright centred square covering the middle half, uint8, and its truth."""
    truth = np.zeros((size, size), np.uint8)
    truth[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return (truth * 200 + 20).astype(np.uint8), truth


def _run(image, model, **kw):
    SEEN.clear()
    return run_segmentation(image, model, device="cpu", tile_size=64, overlap=0.25, **kw)


def test_an_image_at_half_the_spacing_runs_on_the_model_grid_and_comes_back():
    image, truth = square(128)
    result = _run(image, Spaced(spacing=[1.0, 1.0]), spacing=(0.5, 0.5), return_probabilities=True)
    assert result.labels.shape == (128, 128) and result.probabilities.shape == (128, 128)
    assert max(max(s) for s in SEEN) <= 64  # the network saw the 64x64 model grid
    assert any(
        "resampled 128x128 at 0.5x0.5 to 64x64 at the model's 1x1" in n for n in result.notes
    )
    assert "resampled" in result.summary()
    np.testing.assert_array_equal(result.labels, truth)  # labels on the input grid
    small = resize_slices(image[None, ..., None], (64, 64))[0, ..., 0]
    direct = _run(small, Spaced(spacing=[1.0, 1.0]), return_probabilities=True)
    np.testing.assert_array_equal(result.labels, nearest(direct.labels[None], (128, 128))[0])
    linear = resize_slices(direct.probabilities[None, ..., None], (128, 128))[0, ..., 0]
    np.testing.assert_allclose(result.probabilities, linear, atol=1e-4)  # linearly back


def test_labels_come_back_on_the_input_grid_by_nearest_neighbour():
    labels = np.random.default_rng(0).integers(0, 5, (2, 30, 40)).astype(np.uint8)
    up = nearest(labels, (60, 80))
    assert up.shape == (2, 60, 80) and set(np.unique(up)) <= set(np.unique(labels))
    np.testing.assert_array_equal(nearest(up, (30, 40)), labels)  # exact round trip
    np.testing.assert_array_equal(up[:, ::2, ::2], labels)


def test_resampled_images_keep_dtype_and_geometry():
    yy, xx = np.mgrid[:64, :64]
    ramp = np.stack([xx * 3, yy * 3], -1).astype(np.uint8)[None]  # (1, 64, 64, 2)
    half = resize_slices(ramp, (32, 32))
    assert half.shape == (1, 32, 32, 2) and half.dtype == np.uint8
    # pixel j of the half grid covers input pixels 2j, 2j+1: centre 2j + 0.5
    np.testing.assert_allclose(half[0, 0, :, 0], (np.arange(32) * 2 + 0.5) * 3, atol=1.01)
    back = resize_slices(half, (64, 64))
    assert np.abs(back.astype(int) - ramp).max() <= 3


def test_within_the_tolerance_nothing_is_resampled():
    image, _ = square(64)
    close = 1.0 + SPACING_TOLERANCE / 2
    result = _run(image, Spaced(spacing=[1.0, 1.0]), spacing=(close, close))
    assert not any("resampled" in n for n in result.notes)
    assert plan_resampling((64, 64), (close, 1.0), [1.0, 1.0]) == (None, "")


def test_pixel_size_supplies_or_overrides_the_spacing():
    image, truth = square(128)
    model = Spaced(spacing=[0.8, 0.8])
    result = _run(image, model, spacing=(0.8, 0.8), pixel_size=0.4)
    assert any("to 64x64" in n for n in result.notes)
    np.testing.assert_array_equal(result.labels, truth)
    unknown = _run(image, model)  # a PNG: no spacing, no pixel size: as before
    assert any("image spacing unknown" in n for n in unknown.notes)
    assert max(max(s) for s in SEEN) == 64  # 64-pixel tiles over the 128 grid


def test_a_stack_is_resampled_in_plane_only():
    image, truth = square(64)
    stack = np.stack([image, image, image])
    result = _run(stack, Spaced(spacing=[1.0, 1.0]), spacing=(3.0, 2.0, 2.0))
    assert result.labels.shape == (3, 64, 64)
    assert any("to 128x128" in n for n in result.notes)
    np.testing.assert_array_equal(result.labels[1], truth)


def test_a_model_without_spacing_given_a_spacing_says_so_and_changes_nothing():
    image, _ = square(64)
    plain = _run(image, Spaced())
    given = _run(image, Spaced(), spacing=(0.5, 0.5))
    np.testing.assert_array_equal(plain.labels, given.labels)
    assert any("records no pixel spacing" in n for n in given.notes)
    assert not any("spacing" in n for n in plain.notes)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, (1.0, 0.0), (1, 2, 3)])
def test_a_bad_pixel_size_is_a_clear_value_error(bad):
    with pytest.raises(ValueError, match="pixel_size"):
        check_pixel_size(bad)
    image, _ = square(64)
    with pytest.raises(ValueError, match="pixel_size"):
        _run(image, Spaced(spacing=[1.0, 1.0]), pixel_size=bad)


def test_a_non_number_pixel_size_is_a_type_error():
    with pytest.raises(TypeError, match="pixel_size"):
        check_pixel_size("0.5")
    with pytest.raises(TypeError, match="pixel_size"):
        check_pixel_size(True)
    with pytest.raises(ValueError, match="spacing"):
        _run(square(64)[0], Spaced(spacing=[1.0, 1.0]), spacing=(1.0, 1.0, 1.0, 1.0))
