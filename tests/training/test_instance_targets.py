"""Instance-aware training targets on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.training.instance_targets import (
    boundary_classes,
    distance_targets,
    looks_like_instances,
    objects_of,
)


def _touching() -> np.ndarray:
    labels = np.zeros((7, 12), np.uint16)
    labels[1:6, 1:6] = 4
    labels[1:6, 6:11] = 9  # touches object 4 along a column
    labels[0, 11] = 2  # a third object, one pixel
    return labels


def test_instances_or_masks():
    assert looks_like_instances(_touching())
    assert not looks_like_instances(_touching() > 0)
    classes = np.zeros((10, 10), np.uint8)
    classes[1:3, 1:3] = classes[6:8, 6:8] = 1  # class 1 in two places
    classes[1:3, 6:8] = classes[6:8, 1:3] = 2
    classes[4, 4] = 3
    assert not looks_like_instances(classes)
    two = np.zeros((5, 5), np.uint8)
    two[0, 0], two[4, 4] = 1, 2  # liver and tumour: too few ids
    assert not looks_like_instances(two)


def test_binary_masks_become_8_connected_objects():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = True
    mask[3:5, 3:5] = True
    objects = objects_of(mask)
    assert objects.max() == 2 and objects[0, 0] == objects[1, 1]
    stack = np.stack([mask, mask])
    assert objects_of(stack).max() == 4  # per slice
    assert objects_of(mask.astype(np.uint8) * 5, instances=True).max() == 5


def test_boundary_classes_by_hand():
    out = boundary_classes(_touching())
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0],
            [0, 2, 1, 1, 1, 2, 2, 1, 1, 1, 2, 0],
            [0, 2, 1, 1, 1, 2, 2, 1, 1, 1, 2, 0],
            [0, 2, 1, 1, 1, 2, 2, 1, 1, 1, 2, 0],
            [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ],
        np.uint8,
    )
    assert out.dtype == np.uint8 and np.array_equal(out, expected)
    wide = boundary_classes(_touching(), width=2)
    assert np.count_nonzero(wide == 1) == 2  # (3, 3) and (3, 8): 2 px from any other value


def test_the_image_edge_is_not_a_contour():
    labels = np.zeros((4, 6), np.uint8)
    labels[:, :3] = 1  # an object cut by the image's left, top and bottom edges
    out = boundary_classes(labels)
    assert out[:, 0].tolist() == [1, 1, 1, 1] and out[:, 2].tolist() == [2, 2, 2, 2]
    _, distance = distance_targets(labels)
    assert distance[1, 0] == distance[2, 0] == pytest.approx(1.0)


def test_interiors_of_diagonal_neighbours_do_not_touch():
    labels = np.zeros((8, 8), np.uint8)
    labels[0:4, 0:4] = 1
    labels[4:8, 4:8] = 2  # corner to corner
    labels[0:4, 4:8] = 3
    out = boundary_classes(labels)
    assert out[3, 3] == 2 and out[4, 4] == 2


def test_distance_targets_by_hand():
    labels = np.zeros((5, 9), np.uint8)
    labels[0:5, 0:9] = 0
    labels[1:4, 1:4] = 1
    labels[1:4, 4:8] = 2  # touching object 2 (3 x 4)
    foreground, distance = distance_targets(labels, instances=True)
    assert foreground.tolist() == (labels > 0).astype(np.uint8).tolist()
    assert distance.dtype == np.float32 and distance[0].max() == 0
    # object 1 (3 x 3): centre 2 px from outside, the rest 1 px -> 1.0 and 0.5
    assert distance[1:4, 1:4].tolist() == [[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]]
    # object 2 meets object 1 at column 4: 1 px from it, not from its own centre
    assert distance[2, 4] == 0.5 and distance[2, 5] == distance[2, 6] == 1.0
    assert distance[labels > 0].min() > 0
    _, merged = distance_targets(labels)  # two ids alone look like classes: one object
    assert merged[2, 4] == 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        boundary_classes(_touching(), width=0)
    with pytest.raises(TypeError, match="labels must be integers or bool"):
        boundary_classes(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match=r"must be \(Y, X\) or \(Z, Y, X\)"):
        distance_targets(np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="labels must be >= 0"):
        looks_like_instances(-np.ones((3, 3), np.int8))
