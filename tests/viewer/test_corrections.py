"""Edit tracking from real napari Labels paint events (a ViewerModel: no display, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
from napari.components import ViewerModel  # noqa: E402

from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet.viewer.corrections import (  # noqa: E402
    corrections,
    reset_corrections,
    track_corrections,
)


@pytest.fixture
def viewer():
    return ViewerModel()


def _segmented(viewer, shape):
    image = viewer.add_image(np.zeros(shape, np.uint8), name="img")
    return api.put_labels(viewer, image, np.zeros(shape, np.uint8), None)


def test_brush_strokes_on_a_stack_mark_their_slices(viewer):
    labels = _segmented(viewer, (4, 32, 40))
    tracked = corrections(labels)
    assert tracked is not None and not tracked and tracked.summary() == "no edits"
    labels.brush_size = 5
    labels.paint((1, 10, 10), 1)  # a brush dab, as the mouse gives it: one paint event
    labels.paint((3, 20, 30), 2)
    assert tracked.edits == 2 and tracked.edited_slices() == [1, 3]
    assert np.array_equal(tracked.mask, labels.data > 0)  # exactly the changed pixels
    assert tracked.summary() == f"2 edits, {tracked.pixels:,} pixels on slices 1, 3"


def test_fill_and_data_setitem_are_tracked_on_a_2d_layer(viewer):
    labels = _segmented(viewer, (24, 24))
    tracked = corrections(labels)
    labels.data_setitem((np.array([2, 3]), np.array([5, 6])), 3)
    assert tracked.edits == 1 and tracked.pixels == 2 and tracked.mask[2, 5]
    labels.fill((12, 12), 1)  # the fill bucket: every background pixel changes
    assert tracked.edits == 2 and tracked.mask.sum() == 24 * 24
    assert tracked.edited_slices() == []  # a 2D layer has no slices


def test_painting_the_value_a_pixel_already_has_is_no_edit(viewer):
    labels = _segmented(viewer, (16, 16))
    labels.paint((8, 8), 0)  # napari emits nothing: no pixel changed
    assert not corrections(labels) and corrections(labels).edits == 0


def test_a_layer_given_data_of_another_shape_starts_afresh(viewer):
    labels = _segmented(viewer, (16, 16))
    labels.paint((4, 4), 1)
    assert corrections(labels)
    labels.data = np.zeros((20, 20), np.uint8)
    assert corrections(labels) is None  # the old record does not fit the new data
    labels.paint((10, 10), 1)
    assert corrections(labels).shape == (20, 20) and corrections(labels).pixels > 0


def test_reset_forgets_and_keeps_tracking(viewer):
    labels = viewer.add_labels(np.zeros((16, 16), np.uint8))
    tracked = track_corrections(labels)
    assert track_corrections(labels) is tracked  # one record per layer
    labels.paint((4, 4), 1)
    assert tracked
    reset_corrections(labels)
    assert not corrections(labels)
    labels.paint((9, 9), 2)
    assert corrections(labels).pixels > 0 and corrections(labels).edits == 1
