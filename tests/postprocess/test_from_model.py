"""instances_for_head: the method follows the model's instance head (hand-made maps)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_res101unet.postprocess.from_model import expected_distance, instances_for_head
from napari_res101unet.postprocess.instances import InstanceOptions


def _touching(shape=(60, 90), radius=16):
    """Two overlapping discs (ids 1, 2) whose union has no neck to speak of: the second
    disc's centre lies inside the first's radius + 4 px."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    a = (yy - 30) ** 2 + (xx - 30) ** 2 <= radius**2
    b = ((yy - 30) ** 2 + (xx - 54) ** 2 <= radius**2) & ~a
    return a, b


def _boundary_probabilities(a, b, width=2, sharp=0.9):
    """(3, Y, X) background / interior / contour: each disc's rim of ``width`` px (their
    shared border included) is contour, a ring that parts the two interiors."""
    objects = a.astype(int) + 2 * b
    size = 2 * width + 1
    rim = (objects > 0) & (
        ndimage.minimum_filter(objects, size) != ndimage.maximum_filter(objects, size)
    )
    classes = np.where(rim, 2, np.where(objects > 0, 1, 0))
    rest = (1 - sharp) / 2
    p = np.full((3, *a.shape), rest)
    for k in range(3):
        p[k][classes == k] = sharp
    return p, classes


def test_a_boundary_head_splits_touching_discs_along_the_contour_ring():
    a, b = _touching()
    p, classes = _boundary_probabilities(a, b)
    assert ndimage.label(classes == 1, np.ones((3, 3)))[1] == 2  # the ring parts them
    labels = instances_for_head(p, "boundary")
    assert labels.dtype == np.uint16 and labels.max() == 2
    majority = []
    for disc in (a, b):  # each disc is one object, the contour given back to it
        counts = np.bincount(labels[disc])
        assert counts.max() / disc.sum() > 0.97 and counts[0] == 0
        majority.append(counts.argmax())
    assert majority[0] != majority[1]
    # the foreground alone (what a semantic model gives) is one blob to components
    fg = 1.0 - p[0]
    assert instances_for_head(fg, None, InstanceOptions(method="components")).max() == 1
    # without a head the default is the distance-transform watershed
    assert instances_for_head(fg).max() >= 1


def test_a_distance_head_seeds_one_object_per_peak():
    a, b = _touching()
    dist = np.zeros(a.shape)
    for disc in (a, b):
        d = ndimage.distance_transform_edt(disc)
        dist[disc] = d[disc] / d.max()
    n = 5  # background + 5 bins of the normalised distance, one-hot with some blur
    bins = np.where(a | b, np.ceil(dist * n).clip(1, n), 0).astype(int)
    p = np.full((1 + n, *a.shape), 0.02)
    for k in range(1 + n):
        p[k][bins == k] = 1 - 0.02 * n
    expected = expected_distance(p)
    assert expected[~(a | b)].max() < 0.6 and np.isclose(expected[30, 30], 0.9, atol=0.05)
    labels = instances_for_head(p, "distance")
    assert labels.max() == 2
    for disc in (a, b):
        assert np.bincount(labels[disc]).max() / disc.sum() > 0.95


@pytest.mark.parametrize(
    ("probabilities", "head", "options", "error", "match"),
    [
        (np.zeros((3, 8, 8)), "stardist", None, ValueError, "instance_head must be None"),
        (np.zeros((2, 8, 8)), "boundary", None, ValueError, "a boundary head gives 3"),
        (np.zeros((2, 8, 8)), "distance", None, ValueError, "a distance head gives 1 \\+ n"),
        (np.zeros((8, 8)), None, InstanceOptions(method="boundary"), ValueError, "needs a model"),
        (np.zeros((3, 2, 8, 8)), None, None, ValueError, "spatial shape"),
        (np.full((8, 8), 1.5), None, None, ValueError, r"\[0, 1\]"),
        (np.zeros((8, 8), np.uint8), None, None, TypeError, "floats"),
    ],
)
def test_bad_input_is_refused(probabilities, head, options, error, match):
    with pytest.raises(error, match=match):
        instances_for_head(probabilities, head, options)
