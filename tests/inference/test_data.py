from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.preprocess.normalize import adapt_channels, as_stack, make_normalizer


@pytest.mark.parametrize(
    ("shape", "kwargs", "slices", "spatial"),
    [
        ((30, 40), {}, (1, 30, 40, 1), (30, 40)),
        ((30, 40, 3), {}, (1, 30, 40, 3), (30, 40)),
        ((30, 40, 4), {}, (1, 30, 40, 4), (30, 40)),
        ((5, 30, 40), {}, (5, 30, 40, 1), (5, 30, 40)),
        ((5, 30, 40, 3), {}, (5, 30, 40, 3), (5, 30, 40)),
        ((3, 30, 40), {"channel_axis": 0}, (1, 30, 40, 3), (30, 40)),
        ((30, 40, 3), {"channel_axis": None}, (30, 40, 3, 1), (30, 40, 3)),
        ((5, 30, 40), {"axis": 2}, (40, 5, 30, 1), (5, 30, 40)),
    ],
)
def test_stack_views(shape, kwargs, slices, spatial):
    image = np.zeros(shape, np.uint8)
    view = as_stack(image, **kwargs)
    assert view.slices.shape == slices
    assert view.spatial_shape == spatial
    assert np.shares_memory(view.slices, image)
    labels = np.zeros(slices[:3], np.uint8)
    assert view.restore(labels).shape == spatial


def test_restore_puts_slices_back_on_their_axis():
    image = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    view = as_stack(image, axis=1)
    assert view.slices.shape == (5, 4, 6, 1)
    assert np.array_equal(view.restore(view.slices[..., 0]), image)


@pytest.mark.parametrize("shape", [(10,), (2, 3, 4, 5, 6)])
def test_wrong_dimensions_are_named(shape):
    with pytest.raises(ValueError, match=r"must be 2D \(Y, X\).*got shape"):
        as_stack(np.zeros(shape))


def test_empty_nan_and_non_numeric():
    with pytest.raises(ValueError, match="empty"):
        as_stack(np.zeros((0, 10)))
    bad = np.ones((8, 8), np.float32)
    bad[2, 3] = np.nan
    bad[4, 4] = np.inf
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        as_stack(bad)
    with pytest.raises(TypeError, match="numeric"):
        as_stack(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        as_stack(np.zeros((3, 8, 8)), axis=3)


def test_channel_adaptation():
    gray = np.zeros((1, 4, 4, 1), np.uint8)
    out, note = adapt_channels(gray, 3)
    assert out.shape == (1, 4, 4, 3) and note == "replicated gray"
    rgba = np.zeros((1, 4, 4, 4), np.uint8)
    assert adapt_channels(rgba, 3)[0].shape == (1, 4, 4, 3)
    with pytest.raises(ValueError, match="image has 2 channels but the model expects 3"):
        adapt_channels(np.zeros((1, 4, 4, 2)), 3)


def test_uint8_uses_imagenet_statistics():
    tile = np.full((1, 2, 2, 3), 255, np.uint8)
    norm = make_normalizer(tile, {"mode": "auto"}, 3)
    assert norm.mode == "imagenet"
    out = norm(tile)
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32
    expected = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.allclose(out[0, :, 0, 0], expected, atol=1e-6)


def test_ct_int16_uses_a_hounsfield_window():
    ct = np.array([[-1000, -160], [40, 3000]], np.int16)[None, ..., None]
    norm = make_normalizer(ct, {"mode": "auto"}, 1)
    assert norm.mode == "window"
    x = norm(ct)[0, 0] * norm.std[0] + norm.mean[0]
    assert np.allclose(x, [[0, 0], [0.5, 1]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64, np.int64])
def test_other_dtypes_use_percentiles_and_never_collapse(dtype, rng):
    data = (rng.random((1, 64, 64, 1)) * 1000 + 5000).astype(dtype)
    norm = make_normalizer(data, {"mode": "auto"}, 3)
    assert norm.mode == "percentile"
    x = norm(np.broadcast_to(data, (1, 64, 64, 3)))
    raw = x[0, 0] * norm.std[0] + norm.mean[0]
    assert -0.1 < raw.min() < 0.1 and 0.9 < raw.max() < 1.1
    assert raw.std() > 0.1


def test_constant_image_does_not_divide_by_zero():
    data = np.full((1, 8, 8, 1), 7, np.uint16)
    x = make_normalizer(data, {"mode": "auto"}, 1)(data)
    assert np.isfinite(x).all()


def test_normalisation_uses_whole_image_statistics(rng):
    image = rng.random((1, 100, 100, 1)).astype(np.float32)
    image[:, :50] *= 10
    norm = make_normalizer(image, {"mode": "percentile"}, 1)
    top, bottom = norm(image[:, :50]), norm(image[:, 50:])
    assert top.mean() > bottom.mean() + 1  # tiles are not re-normalised one by one


def test_explicit_window_and_gray_model_on_rgb():
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    norm = make_normalizer(rgb, {"mode": "imagenet"}, 1)
    assert norm.to_gray
    assert norm(rgb).shape == (1, 1, 2, 2)
    win = make_normalizer(
        np.zeros((1, 2, 2, 1), np.int16), {"mode": "window", "window": [0, 10]}, 1
    )
    assert (win.low[0], win.high[0]) == (0, 10)


def test_float_and_int32_ct_keep_the_hu_window():
    ct = np.full((1, 8, 8, 1), -1000.0, np.float32)
    ct[0, 2:6, 2:6] = 60.5  # soft tissue, after resampling (not integral)
    ct[0, 0, 0] = 1200.0  # bone
    for data in (ct, ct.astype(np.int32), ct.astype(np.int16)):
        norm = make_normalizer(data, {"mode": "auto"}, 3)
        assert norm.mode == "window", data.dtype
    shifted = np.random.default_rng(0).normal(-300, 50, (1, 8, 8, 1)).astype(np.float32)
    assert make_normalizer(shifted, {"mode": "auto"}, 3).mode == "percentile"
