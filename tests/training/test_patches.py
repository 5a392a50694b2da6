"""Patch sampling and augmentation (numpy + a little torch, no network)."""

from __future__ import annotations

import numpy as np

from napari_res101unet.preprocess.pairs import IGNORE, check_pairs, prepare
from napari_res101unet.training.patches import PatchSampler, crop_labels


def _items(image, labels, ignore_index=None):
    checked = check_pairs([(image, labels)], ignore_index=ignore_index)
    return prepare(
        checked, ignore_index=ignore_index, in_channels=3, normalization={"mode": "auto"}
    )


def test_foreground_patches_are_centred_on_a_labelled_object():
    labels = np.zeros((200, 200), np.uint8)
    labels[150:154, 20:24] = 1
    items = _items(np.zeros((200, 200), np.uint8), labels)
    sampler = PatchSampler(items, 64, 8, foreground_fraction=1.0, augment=False)
    x, y = sampler.batch(np.random.default_rng(0))
    assert x.shape == (8, 3, 64, 64) and str(x.dtype) == "torch.float32"
    assert y.shape == (8, 64, 64)
    assert all(int((y[b] == 1).sum()) == 16 for b in range(8))


def test_small_images_are_padded_with_ignored_labels():
    image = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    labels = np.ones((40, 30), np.uint8)
    sampler = PatchSampler(_items(image, labels), 64, 4, foreground_fraction=0.0, augment=False)
    _, y = sampler.batch(np.random.default_rng(1))
    assert all(int((y[b] == 1).sum()) == 40 * 30 for b in range(4))
    assert all(int((y[b] == IGNORE).sum()) == 64 * 64 - 40 * 30 for b in range(4))


def test_augmented_batches_are_reproducible_and_keep_image_and_labels_aligned():
    rng = np.random.default_rng(0)
    labels = np.kron(rng.random((10, 10)) > 0.7, np.ones((8, 8))).astype(np.uint8)
    image = (labels * 200 + 20).astype(np.uint8)  # the image is its own label map
    sampler = PatchSampler(_items(image, labels), 64, 6, foreground_fraction=0.5, augment=True)
    x1, y1 = sampler.batch(np.random.default_rng(5))
    x2, y2 = sampler.batch(np.random.default_rng(5))
    assert np.array_equal(x1.numpy(), x2.numpy()) and np.array_equal(y1.numpy(), y2.numpy())
    for b in range(6):
        x = x1[b, 0].numpy()
        bright = x > (x.min() + x.max()) / 2
        agree = (bright == (y1[b].numpy() == 1))[y1[b].numpy() != IGNORE]
        assert agree.mean() > 0.9  # nearest labels vs bilinear image: edges may differ


def test_ignored_pixels_never_become_labels():
    labels = np.full((64, 64), 255, np.uint8)
    labels[10:20, 10:20] = 1
    labels[40:50, 40:50] = 0
    sampler = PatchSampler(_items(np.ones((64, 64)), labels, 255), 64, 4, augment=True)
    _, y = sampler.batch(np.random.default_rng(2))
    labelled = int((y != IGNORE).sum())
    assert 0 < labelled <= 4 * 200 * 1.6  # scale jitter may enlarge the 200 labelled pixels


def test_crop_labels_outside_is_ignored():
    out = crop_labels(np.ones((4, 4), np.int16), -2, 1, 4)
    assert out.tolist() == [[-1] * 4, [-1] * 4, [1, 1, 1, -1], [1, 1, 1, -1]]


def _turns_of(patch: np.ndarray, shape: np.ndarray) -> set[str]:
    """Which of the 8 turns of the square map ``shape`` onto ``patch``."""
    found = set()
    for k in range(4):
        if np.array_equal(patch, np.rot90(shape, k)):
            found.add(f"rot{k}")
        if np.array_equal(patch, np.rot90(shape, k)[:, ::-1]):
            found.add(f"mirror{k}")
    return found


def test_without_mirror_patches_only_turn_so_left_and_right_stay_apart():
    """An L (chiral: no rotation makes it its mirror image) over the whole patch: with
    mirror=False every augmented patch is a rotation of it; with mirror=True some are
    mirror images (issue 26: a mirrored CT slice puts the liver where the spleen is)."""
    labels = np.zeros((32, 32), np.uint8)
    labels[2:30, 2:8] = 1
    labels[24:30, 2:20] = 1
    seen = {}
    for mirror in (False, True):
        sampler = PatchSampler(
            _items(np.zeros((32, 32), np.uint8), labels),
            32,
            64,
            foreground_fraction=0.0,
            augment=True,
            mirror=mirror,
        )
        _, y = sampler.batch(np.random.default_rng(3), strength=1.0)
        turns = set()
        for b in range(len(y)):
            patch = y[b].numpy()
            if patch.max() == 1 and (patch == IGNORE).sum() == 0:  # scale jitter left it whole
                turns |= _turns_of(patch.astype(np.uint8), labels)
        seen[mirror] = turns
    assert seen[False] and all(t.startswith("rot") for t in seen[False])
    assert any(t.startswith("mirror") for t in seen[True])
