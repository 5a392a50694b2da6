"""Input checks and validation splits (numpy only, no network)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.config import TRAIN_LIMITS
from napari_res101unet.preprocess.pairs import (
    IGNORE,
    check_pairs,
    infer_in_channels,
    prepare,
    resolve_classes,
)
from napari_res101unet.training.splits import cap_slices, split


def _prepared(pairs, ignore_index=None):
    checked = check_pairs(pairs, ignore_index=ignore_index)
    return prepare(
        checked, ignore_index=ignore_index, in_channels=3, normalization={"mode": "auto"}
    )


def _blob(shape, box):
    labels = np.zeros(shape, np.uint8)
    labels[box] = 1
    return labels


def test_channels_follow_the_label_dimensions():
    rgb = check_pairs([(np.zeros((8, 9, 3), np.uint8), np.zeros((8, 9), int))], ignore_index=None)
    assert rgb[0].slices.shape == (1, 8, 9, 3)
    stack = check_pairs([(np.zeros((3, 8, 9)), np.zeros((3, 8, 9), int))], ignore_index=None)
    assert stack[0].slices.shape == (3, 8, 9, 1)
    assert infer_in_channels(rgb + stack) == 3
    five = check_pairs([(np.zeros((8, 9, 5)), np.zeros((8, 9), int))], ignore_index=None)
    assert infer_in_channels(five) == 5


def test_ignore_index_becomes_internal_ignore_and_is_not_counted():
    labels = np.array([[0, 1, 255], [255, 2, 0]], np.uint8)
    checked = check_pairs([(np.ones((2, 3)), labels)], ignore_index=255)
    assert checked[0].counts.tolist() == [2, 1, 1]
    assert resolve_classes(checked, None, 255) == 3
    item = _prepared([(np.ones((2, 3)), labels)], ignore_index=255)[0]
    assert item.labels[0].tolist() == [[0, 1, IGNORE], [IGNORE, 2, 0]]


def test_instance_masks_need_explicit_classes():
    labels = np.arange(20).reshape(4, 5) % 20
    checked = check_pairs([(np.ones((4, 5)), labels)], ignore_index=None)
    with pytest.raises(ValueError, match="instance or 0/255 mask.*classes=20"):
        resolve_classes(checked, None, None)
    assert resolve_classes(checked, 20, None) == 20


def test_split_by_image_is_seeded_and_keeps_foreground_for_training():
    pairs = [(np.full((16, 16), i, np.uint8), _blob((16, 16), np.s_[4:8, 4:8])) for i in range(5)]
    items = _prepared(pairs)
    train, val, rule = split(items, 0.4, seed=1)
    assert len(train) == 3 and len(val) == 2 and rule.startswith("by image")
    again = split(items, 0.4, seed=1)[1]
    assert [v.index for v in again] == [v.index for v in val]
    assert {t.index for t in train}.isdisjoint(v.index for v in val)


def test_split_one_stack_holds_out_a_contiguous_block_of_slices():
    labels = np.zeros((10, 16, 16), np.uint8)
    labels[2:8, 4:10, 4:10] = 1
    items = _prepared([(np.ones((10, 16, 16), np.uint8), labels)])
    train, val, rule = split(items, 0.34, seed=0)
    assert train[0].slices == list(range(6))
    assert val[0].slices == [6, 7, 8, 9]
    assert rule == "by slice: slices 6..9 held out"


def test_split_one_2d_image_hides_a_border_band_from_training():
    labels = _blob((20, 30), np.s_[2:18, 2:28])
    items = _prepared([(np.ones((20, 30), np.uint8), labels)])
    train, val, rule = split(items, 0.2, seed=0)
    assert rule.startswith("band")
    t, v = train[0].labels[0], val[0].labels[0]
    assert np.all((t == IGNORE) != (v == IGNORE))  # every pixel in exactly one side
    assert (t > 0).any() and (v > 0).any()


def test_validation_is_capped_evenly(monkeypatch):
    monkeypatch.setitem(TRAIN_LIMITS, "max_val_slices", 4)
    labels = np.ones((12, 4, 4), np.uint8)
    item = _prepared([(np.ones((12, 4, 4)), labels)])[0]
    assert cap_slices([item])[0].slices == [0, 4, 7, 11]


def test_images_held_out_stop_at_the_validation_cap(monkeypatch):
    """Images beyond the slices validation scores go back to training (issue 26)."""
    monkeypatch.setitem(TRAIN_LIMITS, "max_val_slices", 3)
    pairs = [(np.full((8, 8), i, np.uint8), _blob((8, 8), np.s_[2:6, 2:6])) for i in range(40)]
    train, val, _ = split(_prepared(pairs), 0.2, seed=0)
    assert len(val) == 3 and len(train) == 37  # not 8 held out, 5 of them unscored
