"""instances_from: touching objects split, seeded watersheds, clean-up and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.postprocess.instances import (
    InstanceOptions,
    fill_holes_per_object,
    instances_from,
    instances_per_class,
)


def _discs(shape=(60, 84), centres=((30, 25), (30, 53)), radius=15):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return [(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2 for cy, cx in centres]


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _best_iou(labels, disc):
    ids = np.unique(labels[disc])
    return max(_iou(labels == i, disc) for i in ids if i)


def test_watershed_splits_two_touching_discs():
    left, right = _discs()
    fg = left | right  # the discs overlap by a 2-pixel lens: one component
    assert instances_from(fg, InstanceOptions(method="components")).max() == 1
    labels = instances_from(fg)  # default: distance-transform watershed
    assert labels.dtype == np.uint16 and labels.max() == 2
    assert _best_iou(labels, left) > 0.95 and _best_iou(labels, right) > 0.95
    assert np.array_equal(labels > 0, fg)


def test_probabilities_are_thresholded():
    left, right = _discs()
    prob = np.where(left | right, 0.9, 0.1).astype(np.float32)
    assert instances_from(prob).max() == 2
    assert instances_from(prob, InstanceOptions(threshold=0.95)).max() == 0


def test_boundary_classes_seed_a_watershed():
    objects = np.zeros((20, 30), np.uint8)
    objects[2:18, 2:15] = 1
    objects[2:18, 15:28] = 2  # two touching rectangles: one foreground component
    fg = objects > 0
    interior = np.zeros_like(fg)
    interior[4:16, 4:13] = True
    interior[4:16, 17:26] = True
    options = InstanceOptions(method="boundary")
    for given in (interior, interior.astype(np.float32) * 0.8 + 0.1):
        labels = instances_from(fg, options, interior=given)
        assert labels.max() == 2
        assert _best_iou(labels, objects == 1) > 0.9 and _best_iou(labels, objects == 2) > 0.9
    with pytest.raises(ValueError, match="method 'boundary' needs the interior map"):
        instances_from(fg, options)
    with pytest.raises(ValueError, match=r"interior shape \(5, 5\) != foreground shape"):
        instances_from(fg, options, interior=interior[:5, :5])


def test_a_predicted_distance_map_seeds_a_watershed():
    left, right = _discs()
    fg = left | right
    yy, xx = np.mgrid[: fg.shape[0], : fg.shape[1]]
    distance = np.zeros(fg.shape)
    for disc, cx in ((left, 25), (right, 53)):
        d = 1 - np.sqrt((yy - 30) ** 2 + (xx - cx) ** 2) / 15
        distance = np.where(disc, np.maximum(distance, d), distance)
    labels = instances_from(fg, InstanceOptions(method="distance"), distance=distance)
    assert labels.max() == 2 and _best_iou(labels, left) > 0.95


def test_core_seeds_keep_a_bumpy_object_whole_where_maxima_split_it():
    """A predicted distance with two bumps inside one object (noise of a short training):
    its cores (distance >= 0.5) are one region, so one object; the 0.1-deep maxima seed
    two. Two touching objects keep two separate cores."""
    left, right = _discs()
    yy, xx = np.mgrid[: left.shape[0], : left.shape[1]]
    edge = 1 - np.hypot(yy - 30, xx - 25) / 15
    bumps = 0.25 * np.exp(-((yy - 30) ** 2 + (xx - 19) ** 2) / 8) + 0.25 * np.exp(
        -((yy - 30) ** 2 + (xx - 31) ** 2) / 8
    )
    distance = np.where(left, np.clip(np.minimum(edge, 0.6) + bumps, 0, 1), 0.0)
    maxima = InstanceOptions(method="distance", distance_seeds="maxima")
    assert instances_from(left, maxima, distance=distance).max() == 2
    core = instances_from(left, InstanceOptions(method="distance"), distance=distance)
    assert core.max() == 1 and _best_iou(core, left) > 0.99
    both = np.where(right, 1 - np.hypot(yy - 30, xx - 53) / 15, distance)
    labels = instances_from(left | right, InstanceOptions(method="distance"), distance=both)
    assert labels.max() == 2 and _best_iou(labels, right) > 0.95


def test_small_objects_holes_and_unseeded_specks():
    fg = np.zeros((30, 30), bool)
    fg[2:12, 2:12] = True
    fg[5:8, 5:8] = False  # a hole inside one object
    fg[20, 20] = True  # a speck: no distance maximum h deep, still an object
    labels = instances_from(fg)
    assert labels.max() == 2 and labels[6, 6] == labels[3, 3]  # hole filled
    assert instances_from(fg, InstanceOptions(min_size=2)).max() == 1
    assert instances_from(fg, InstanceOptions(fill_holes=False))[6, 6] == 0


def test_a_hole_shared_by_two_objects_stays_open():
    labels = np.zeros((12, 12), np.uint16)
    labels[2:10, 2:6] = 1
    labels[2:10, 6:10] = 2  # two touching objects ...
    labels[4:8, 4:8] = 0  # ... around one lumen that neither encloses alone
    assert np.array_equal(fill_holes_per_object(labels), labels)
    ring = np.zeros((9, 9), np.uint16)
    ring[1:8, 1:8] = 3
    ring[3:6, 3:6] = 0
    assert (fill_holes_per_object(ring)[3:6, 3:6] == 3).all()


def test_an_object_inside_another_keeps_its_id():
    fg = np.zeros((15, 15), bool)
    fg[1:14, 1:14] = True
    fg[4:11, 4:11] = False
    fg[6:9, 6:9] = True  # an island in the lake
    out = instances_from(fg, InstanceOptions(method="components"))
    assert out.max() == 2 and out[5, 5] == out[1, 1] and out[7, 7] != out[1, 1]


def test_stacks_in_3d_or_per_slice():
    disc = _discs(centres=((30, 40),))[0]
    stack = np.stack([disc, disc])
    assert instances_from(stack, InstanceOptions(method="components")).max() == 1
    per_slice = instances_from(stack, InstanceOptions(method="components", per_slice=True))
    assert per_slice.max() == 2 and set(np.unique(per_slice[1])) == {0, 2}
    assert instances_from(stack, InstanceOptions(per_slice=True)).max() == 2


def test_ids_are_sequential_and_uint32_above_65535():
    fg = np.zeros((600, 600), bool)
    fg[::2, ::2] = True  # 90,000 one-pixel objects
    labels = instances_from(fg, InstanceOptions(method="components", fill_holes=False))
    assert labels.dtype == np.uint32 and labels.max() == 90_000
    assert np.array_equal(np.unique(labels), np.arange(90_001))
    assert instances_from(np.zeros((4, 4), bool)).dtype == np.uint16


def test_class_maps_are_refused_or_done_per_class():
    classes = np.zeros((20, 20), np.uint8)
    classes[2:8, 2:8] = 1
    classes[12:18, 2:8] = 1
    classes[2:8, 12:18] = 2
    with pytest.raises(ValueError, match="a class map.*instances_per_class"):
        instances_from(classes)
    labels, class_of = instances_per_class(classes)
    assert labels.max() == 3 and class_of.tolist() == [0, 1, 1, 2]
    assert class_of[labels[4, 14]] == 2


def test_bad_input_and_options_are_named():
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        instances_from(np.full((4, 4), 2.5))
    with pytest.raises(ValueError, match="must be .Y, X. or .Z, Y, X., got shape"):
        instances_from(np.zeros(4, bool))
    with pytest.raises(TypeError, match="foreground must be bool"):
        instances_from(np.zeros((4, 4), complex))
    with pytest.raises(ValueError, match="method must be one of"):
        InstanceOptions(method="magic")
    with pytest.raises(ValueError, match="min_size must be >= 0"):
        InstanceOptions(min_size=-1)
    with pytest.raises(TypeError, match="min_size must be an int"):
        InstanceOptions(min_size=2.5)
    with pytest.raises(ValueError, match="h must be > 0"):
        InstanceOptions(h=0)
    with pytest.raises(ValueError, match="distance_seeds must be one of"):
        InstanceOptions(distance_seeds="peaks")
    with pytest.raises(ValueError, match=r"distance_level must be in \(0, 1\)"):
        InstanceOptions(distance_level=1.0)
