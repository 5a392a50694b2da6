"""The tiling engine, checked exactly with injected predictors and then with the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from predictors import blur, per_pixel, three_class

from napari_res101unet import Cancelled, run_segmentation, save_model, segment


def _image(rng, shape, dtype=np.float32):
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize(
    "shape", [(300, 420), (300, 420, 3), (4, 150, 170), (3, 130, 140, 3), (33, 47)]
)
def test_tiled_equals_whole_image_for_per_pixel_predictors(rng, shape):
    image = _image(rng, shape)
    whole = run_segmentation(image, per_pixel, return_probabilities=True)
    tiled = run_segmentation(
        image, per_pixel, return_probabilities=True, tile_size=64, overlap=0.3, batch_size=5
    )
    spatial = shape[:-1] if shape[-1] == 3 else shape
    assert whole.plan.whole_image
    assert tiled.plan.whole_image == (max(spatial[-2:]) <= 64)
    assert whole.labels.shape == tiled.labels.shape == spatial
    assert whole.labels.dtype == np.uint8
    np.testing.assert_allclose(tiled.probabilities, whole.probabilities, atol=1e-6)
    assert np.array_equal(tiled.labels, whole.labels)
    expected = 1 / (
        1 + np.exp(-(3 * (image if image.ndim == len(spatial) else image[..., 0]) - 1))
    )
    np.testing.assert_allclose(whole.probabilities, expected, atol=1e-6)


def test_multiclass_probabilities_and_argmax(rng):
    image = _image(rng, (200, 260))
    tiled = run_segmentation(image, three_class, return_probabilities=True, tile_size=96)
    whole = run_segmentation(image, three_class, return_probabilities=True)
    assert tiled.probabilities.shape == (3, 200, 260)
    np.testing.assert_allclose(tiled.probabilities.sum(0), 1, atol=1e-5)
    np.testing.assert_allclose(tiled.probabilities, whole.probabilities, atol=1e-6)
    assert np.array_equal(tiled.labels, np.argmax(whole.probabilities, axis=0))
    assert set(np.unique(tiled.labels)) <= {0, 1, 2}


def test_no_seams_with_a_non_local_predictor(rng):
    image = _image(rng, (400, 400))
    whole = run_segmentation(image, blur, return_probabilities=True).probabilities
    inner = np.s_[8:-8, 8:-8]  # the whole-image run pads the outer border differently
    error = {}
    for blending in ("gaussian", "constant"):
        tiled = run_segmentation(
            image, blur, return_probabilities=True, tile_size=96, overlap=0.25, blending=blending
        ).probabilities
        error[blending] = np.abs(tiled[inner] - whole[inner]).max()
    assert error["gaussian"] < 2e-3
    assert error["constant"] > 20 * error["gaussian"]  # flat blending shows the tile edges


def test_stacks_axes_and_order_are_preserved(rng):
    stack = _image(rng, (5, 60, 70))
    labels = segment(stack, per_pixel, axis=1)
    assert labels.shape == (5, 60, 70)
    assert np.array_equal(labels, segment(stack, per_pixel))
    per_slice = np.stack([segment(s, per_pixel) for s in stack])
    assert np.array_equal(labels, per_slice)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.float32, np.float64, bool]
)
def test_every_dtype_gives_a_real_result(dtype):
    image = np.zeros((96, 96), dtype)
    high = {np.uint8: 200, bool: True}.get(dtype, 900)
    image[20:60, 30:70] = high
    labels = segment(image, lambda x: x[:, :1], normalization="auto")
    assert labels[25:55, 35:65].all(), dtype
    assert not labels[:15].any(), dtype


def test_progress_reports_every_batch():
    seen = []
    segment(
        np.zeros((200, 200), np.float32),
        per_pixel,
        tile_size=64,
        batch_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    total = seen[-1][1]
    assert total == 16 and seen[-1][0] == total
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})
    assert len(seen) == 4


def test_cancel_stops_between_batches():
    calls = []

    def predictor(x):
        calls.append(len(x))
        return per_pixel(x)

    with pytest.raises(Cancelled):
        segment(
            np.zeros((200, 200), np.float32),
            predictor,
            tile_size=64,
            batch_size=2,
            should_stop=lambda: len(calls) >= 2,
        )
    assert len(calls) == 2


def test_out_of_memory_retries_smaller_and_matches(rng):
    image = _image(rng, (300, 300))
    sizes = []

    def picky(x):
        sizes.append(tuple(x.shape))
        if x.shape[0] * x.shape[2] * x.shape[3] > 128 * 128:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return per_pixel(x)

    result = run_segmentation(image, picky, return_probabilities=True)
    assert max(result.plan.tile) <= 160 and result.plan.batch_size == 1
    whole = run_segmentation(image, per_pixel, return_probabilities=True)
    np.testing.assert_allclose(result.probabilities, whole.probabilities, atol=1e-6)


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    def never(x):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(MemoryError, match="use device='cpu'"):
        segment(np.zeros((300, 300), np.float32), never)


def test_tta_averages_flips():
    calls = []

    def counting(x):
        calls.append(1)
        return per_pixel(x)

    image = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    plain = run_segmentation(image, per_pixel, return_probabilities=True)
    tta = run_segmentation(image, counting, tta=True, return_probabilities=True)
    assert len(calls) == 4
    np.testing.assert_allclose(tta.probabilities, plain.probabilities, atol=1e-6)
    assert "tta" in tta.notes


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": 1.5}, ValueError, "threshold must be between 0 and 1"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"tile_size": 8}, ValueError, "tile_size must be an int >= 32"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        segment(np.zeros((64, 64), np.float32), per_pixel, **kwargs)


def test_bad_model_and_image():
    with pytest.raises(TypeError, match="model must be a Res101_UNet module"):
        segment(np.zeros((64, 64)), 42)
    with pytest.raises(ValueError, match="must be 2D"):
        segment(np.zeros(64), per_pixel)
    with pytest.raises(ValueError, match="must return"):
        segment(np.zeros((64, 64), np.float32), lambda x: x[0])


def test_network_on_rgb_gray_and_stack(small_model, rng):
    rgb = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    result = run_segmentation(rgb, small_model, device="cpu")
    assert result.labels.shape == (70, 90) and result.labels.dtype == np.uint8
    assert "cpu" in result.summary() and "whole slice" in result.summary()
    gray = rng.integers(0, 60000, (70, 90), dtype=np.uint16)
    assert "replicated gray" in run_segmentation(gray, small_model, device="cpu").notes
    stack = rng.integers(-1000, 1000, (3, 40, 50), dtype=np.int16)
    assert segment(stack, small_model, device="cpu").shape == (3, 40, 50)
    with pytest.raises(ValueError, match="image has 2 channels but the model expects 3"):
        segment(np.zeros((40, 50, 2), np.uint8), small_model, channel_axis=-1)


def test_network_tiled_matches_whole_and_user_model_is_untouched(small_model, rng):
    image = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    whole = run_segmentation(image, small_model, return_probabilities=True)
    tiled = run_segmentation(image, small_model, return_probabilities=True, tile_size=96)
    assert tiled.plan.tiles_per_slice > 1
    agree = (whole.labels == tiled.labels).mean()
    assert agree > 0.9  # a random network; only context at tile borders differs
    assert next(small_model.parameters()).device.type == "cpu"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in small_model.modules())
    assert not small_model.training


def test_folded_batch_norm_matches_the_plain_network(small_model, rng):
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    fast = run_segmentation(image, small_model, return_probabilities=True)
    slow = run_segmentation(image, small_model, return_probabilities=True, optimize=False)
    np.testing.assert_allclose(fast.probabilities, slow.probabilities, atol=1e-3)
    assert (fast.labels == slow.labels).mean() > 0.999


def test_checkpoint_path_as_model(small_model, tmp_path, rng):
    path = save_model(small_model, tmp_path / "m.safetensors")
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(segment(image, str(path)), segment(image, small_model))


def test_nan_pixels_are_reported_and_read_as_the_mean_intensity():
    image = np.random.default_rng(2).random((40, 48)).astype(np.float32) * 100
    holes = image.copy()
    holes[5:9, 10:30] = np.nan
    seen = []

    def predictor(x):
        seen.append(x.clone())
        return per_pixel(x)

    result = run_segmentation(holes, predictor, normalization="percentile")
    assert "80 NaN pixels read as the mean intensity" in result.summary()
    assert result.labels.shape == (40, 48)
    x = seen[0].numpy()
    assert np.isfinite(x).all() and np.all(x[:, :, 5:9, 10:30] == 0)
    with pytest.raises(ValueError, match="1 infinite values"):
        holes[0, 0] = np.inf
        run_segmentation(holes, per_pixel)
