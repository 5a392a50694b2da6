"""Objects from a network's labels as the segment settings ask (postprocess.objects): the
method chosen, the learned size, and bad input (empty, one-pixel objects, 70,000 objects,
classes)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_res101unet.config import SegmentSettings
from napari_res101unet.postprocess.objects import (
    instance_options,
    min_size_of,
    objects_from_labels,
)

ON = SegmentSettings(instances=True)


def test_an_empty_prediction_gives_no_object_and_no_error():
    for shape in ((32, 40), (3, 32, 40)):
        objects, note = objects_from_labels(np.zeros(shape, np.uint8), ON)
        assert objects.shape == shape and objects.dtype == np.uint16 and not objects.any()
        assert note.startswith("0 objects")


def test_one_pixel_objects_are_kept_unless_a_size_drops_them():
    labels = np.zeros((20, 20), np.uint8)
    labels[2, 2] = labels[10, 15] = 1
    labels[12:16, 3:7] = 1
    objects, _ = objects_from_labels(labels, ON)
    assert objects.max() == 3 and objects[2, 2] and objects[10, 15]
    bigger, note = objects_from_labels(labels, SegmentSettings(instances=True, min_object_size=2))
    assert bigger.max() == 1 and bigger[13, 4] == 1 and ">= 2 px" in note


def test_seventy_thousand_objects_are_uint32():
    labels = np.zeros((600, 600), np.uint8)
    labels[::2, ::2] = 1  # 90,000 isolated pixels
    objects, note = objects_from_labels(labels, ON)
    assert objects.dtype == np.uint32 and objects.max() == 90_000
    assert note.startswith("90000 objects")
    assert len(np.unique(objects)) == 90_001


def test_a_multi_class_prediction_gives_objects_per_class():
    labels = np.zeros((30, 30), np.uint8)
    labels[2:12, 2:12] = 1
    labels[2:12, 12:22] = 2  # touching, but of another class
    settings = SegmentSettings(instances=True, instance_method="components")
    objects, note = objects_from_labels(labels, settings)
    assert objects.max() == 2 and objects[5, 5] != objects[5, 15] and "per class" in note


def test_the_method_follows_the_model_and_the_learned_size_applies():
    head = SimpleNamespace(instance_head="boundary", min_object_size=40)
    assert instance_options(ON, head).method == "boundary"
    assert instance_options(ON, None).method == "watershed"
    assert instance_options(SegmentSettings(instance_method="components"), head).method == (
        "components"
    )
    assert min_size_of(ON, head) == 40 and min_size_of(ON, None) == 0
    assert min_size_of(SegmentSettings(min_object_size=5), head) == 5
    assert instance_options(SegmentSettings(fill_holes=False, per_slice=True)).per_slice


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (np.zeros((4, 4), np.float32), TypeError, "integer class map"),
        (np.zeros((2, 2, 4, 4), np.uint8), ValueError, r"\(Y, X\) or \(Z, Y, X\)"),
    ],
)
def test_bad_labels_are_refused(labels, error, match):
    with pytest.raises(error, match=match):
        objects_from_labels(labels, ON)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("instance_method", "stardist", "instance_method must be one of"),
        ("min_object_size", -1, "min_object_size must be an int >= 0"),
        ("instances", "yes", "instances must be True or False"),
    ],
)
def test_bad_settings_name_the_value(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SegmentSettings(**{field: value})


def _distance_bins(bins: int = 5) -> np.ndarray:
    """Two discs (radius 12) that overlap in a neck, as a distance head's argmax: bin k of
    ``bins`` where the distance to the union's edge, normalised per disc, is k / bins."""
    yy, xx = np.mgrid[:40, :70]
    labels = np.zeros((40, 70), np.uint8)
    for cx in (22, 44):
        d = 12 - np.hypot(yy - 20, xx - cx)
        level = np.ceil(np.clip(d / 12, 0, 1) * bins).astype(np.uint8)
        labels = np.maximum(labels, np.where(d > 0, np.maximum(level, 1), 0).astype(np.uint8))
    return labels


def test_a_distance_head_splits_touching_discs_from_its_bins():
    labels = _distance_bins()
    spec = SimpleNamespace(instance_head="distance", min_object_size=None, classes=6)
    assert instance_options(ON, spec).method == "distance"
    objects, note = objects_from_labels(labels, ON, spec)
    assert int(objects.max()) == 2 and "distance" in note
    assert objects[20, 22] != objects[20, 44]
    # the same foreground without the head is one blob to components
    one, _ = objects_from_labels(
        labels > 0, SegmentSettings(instances=True, instance_method="components")
    )
    assert int(one.max()) == 1


def test_a_head_method_asked_of_another_model_is_refused():
    spec = SimpleNamespace(instance_head="boundary", min_object_size=None, classes=3)
    with pytest.raises(ValueError, match="needs a model trained with a distance head"):
        instance_options(SegmentSettings(instance_method="distance"), spec)
