"""Training records the pixel spacing (median of the pairs') and resamples pairs to it;
the checkpoint keeps spacing and intensity landmarks."""

from __future__ import annotations

import numpy as np
import pytest

import napari_res101unet as nr
from napari_res101unet.checkpoint import load_model
from napari_res101unet.preprocess.pair_spacing import (
    fit_spacing,
    pair_spacings,
    resample_pairs,
    training_spacing,
)
from napari_res101unet.preprocess.pairs import check_pairs


def _pair(size: int, value: int = 1):
    image = np.full((size, size), 40, np.uint8)
    labels = np.zeros((size, size), np.uint8)
    labels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = value
    image[labels > 0] = 200
    return image, labels


def test_one_spacing_for_all_pairs_or_one_per_pair():
    assert pair_spacings(None, 2) == [None, None]
    assert pair_spacings((2.5, 0.5, 0.6), 2) == [(0.5, 0.6), (0.5, 0.6)]
    assert pair_spacings([(0.5, 0.5), None], 2) == [(0.5, 0.5), None]
    with pytest.raises(ValueError, match="one per pair"):
        pair_spacings([(0.5, 0.5)] * 3, 2)
    with pytest.raises(ValueError, match="spacing"):
        pair_spacings([(0.0, 0.5), None], 2)
    with pytest.raises(ValueError, match="spacing"):
        pair_spacings((float("nan"), 1.0), 1)


def test_the_model_spacing_is_the_median_or_the_fine_tuned_models():
    spacings = [(0.5, 0.6), (1.0, 1.0), (0.8, 0.7), None]
    assert training_spacing(spacings) == (0.8, 0.7)
    assert training_spacing([None, None]) is None
    assert training_spacing(spacings, model_spacing=[2.0, 2.0]) == (2.0, 2.0)


def test_pairs_of_another_spacing_are_resampled_to_it_labels_by_nearest():
    checked = check_pairs([_pair(64), _pair(32, value=2), _pair(40)])
    out, notes = resample_pairs(checked, [(0.5, 0.5), (1.0, 1.0), None], (1.0, 1.0), None)
    assert out[0].slices.shape == (1, 32, 32, 1) and out[0].labels.shape == (1, 32, 32)
    assert out[0].slices.dtype == np.uint8
    assert out[1] is checked[1] and out[2] is checked[2]  # same spacing / unknown
    np.testing.assert_array_equal(out[0].labels[0], _pair(32)[1])
    assert list(out[0].values) == [0, 1] and out[0].counts.sum() == 32 * 32
    assert notes == ["pairs[0] resampled 64x64 -> 32x32"]
    same, target = fit_spacing(checked, None, None, None)
    assert same is checked and target is None  # unknown spacing: as before


def test_training_records_spacing_and_intensity_in_the_checkpoint(tmp_path):
    pairs = [_pair(128), _pair(64), _pair(64)]
    model = nr.train(
        pairs,
        spacing=[(0.5, 0.5), (1.0, 1.0), (1.0, 1.0)],
        patch_size=64,
        batch_size=2,
        steps_per_epoch=1,
        epochs=1,
        val_fraction=0.0,
        device="cpu",
        output=tmp_path / "m",
    )
    assert model.spec.spacing == [1.0, 1.0]
    intensity = model.spec.intensity
    assert intensity["values"][0][0] == pytest.approx(40) and len(intensity["values"]) == 3
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.spec.spacing == [1.0, 1.0] and loaded.spec.intensity == intensity
    plain = nr.train(pairs[1:], **{"patch_size": 64, "batch_size": 2, "steps_per_epoch": 1},
                     epochs=1, val_fraction=0.0, device="cpu")  # fmt: skip
    assert plain.spec.spacing is None  # PNG-like data: no spacing, never resampled
