"""Window / gamma / contrast augmentation and the strength the recipe gives the sampler."""

from __future__ import annotations

import numpy as np

from napari_res101unet.preprocess.normalize import make_normalizer
from napari_res101unet.preprocess.pairs import Prepared
from napari_res101unet.training import intensity_augment as I
from napari_res101unet.training.patches import PatchSampler

MEAN, STD = np.float32(0.449), np.float32(0.226)


def _patch() -> np.ndarray:
    """A (1, 32, 32) normalised patch: a 0..1 ramp standardised like ImageNet."""
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))[None]
    return (ramp - MEAN) / STD


def test_strength_zero_changes_nothing_and_draws_the_same_numbers():
    patch = _patch()
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    out = I.jitter_intensity(patch, a, 0.0, MEAN, STD)
    np.testing.assert_allclose(out, patch, atol=1e-6)
    I.jitter_intensity(patch, b, 1.0, MEAN, STD)
    assert a.random() == b.random()  # same state whatever the strength


def test_full_strength_gives_windows_compression_and_gamma_not_only_brightness():
    patch = _patch()
    rng = np.random.default_rng(0)
    spreads, curved = [], 0
    for _ in range(300):
        out = I.jitter_intensity(patch, rng, 1.0, MEAN, STD)
        display = out * STD + MEAN
        spreads.append(np.ptp(display))
        row = display[0, 0]
        line = np.polyval(np.polyfit(np.arange(32), row, 1), np.arange(32))
        curved += np.abs(row - line).max() > 0.02  # a gamma bends the ramp
    spreads = np.array(spreads)
    assert (spreads < 0.6).mean() > 0.1  # contrast compressed (towards a third)
    assert (spreads > 1.2).mean() > 0.05  # narrower windows stretch it
    assert curved > 30
    again = I.jitter_intensity(patch, np.random.default_rng(7), 1.0, MEAN, STD)
    np.testing.assert_array_equal(
        again, I.jitter_intensity(patch, np.random.default_rng(7), 1.0, MEAN, STD)
    )


def _sampler(augment=True) -> PatchSampler:
    image = np.full((1, 64, 64, 3), 100, np.uint8)
    labels = np.zeros((1, 64, 64), np.int16)
    labels[0, 16:48, 16:48] = 1
    image[0, 16:48, 16:48] = 180
    norm = make_normalizer(image, {"mode": "imagenet"}, 3)
    return PatchSampler([Prepared(image, labels, norm, 0, [0])], 64, 4, augment=augment)


def test_the_sampler_gives_clean_patches_at_strength_zero_and_varied_ones_at_one():
    sampler = _sampler()
    clean, _ = sampler.batch(np.random.default_rng(1), 0.0)
    plain, _ = _sampler(augment=False).batch(np.random.default_rng(1))
    assert set(np.unique(clean.numpy().round(5))) == set(np.unique(plain.numpy().round(5)))
    full, labels = sampler.batch(np.random.default_rng(1), 1.0)
    assert len(np.unique(full.numpy().round(5))) > len(np.unique(clean.numpy().round(5)))
    same, _ = sampler.batch(np.random.default_rng(1), 1.0)
    np.testing.assert_array_equal(full.numpy(), same.numpy())
    assert set(np.unique(labels.numpy())) <= {-1, 0, 1}  # -1: outside the image (IGNORE)
