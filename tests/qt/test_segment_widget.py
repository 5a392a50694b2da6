"""The Segment dock widget, driven like a user would, with the engine in its own process."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from napari_res101unet._qt.segment_widget import SegmentWidget
from napari_res101unet.viewer.session import SESSION_MODELS

ENGINE_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.qt


def _labels_layers(viewer):
    return [layer for layer in viewer.layers if layer._type_string == "labels"]


def test_docks_from_the_plugin_menu(segment_widget):
    _viewer, widget = segment_widget
    assert isinstance(widget, SegmentWidget)
    assert widget._run.enabled and not widget._cancel.enabled
    assert widget._model.value == "untrained"


def test_rgb_image_gives_labels_with_its_scale(segment_widget, qtbot, rgb_image, run_and_wait):
    viewer, widget = segment_widget
    image = viewer.add_image(rgb_image, name="tile", scale=(0.5, 0.25), translate=(10, 20))
    widget._image.value = image
    run_and_wait(widget)
    (labels,) = _labels_layers(viewer)
    assert labels.name == "tile labels"
    assert labels.data.shape == (64, 80) and labels.data.dtype == np.uint8
    assert np.allclose(labels.scale, (0.5, 0.25)) and np.allclose(labels.translate, (10, 20))
    assert "whole slice" in widget._status.value and "cpu" in widget._status.value
    widget._device.value = "cpu"
    run_and_wait(widget)  # re-running updates the same layer
    assert len(_labels_layers(viewer)) == 1


def test_stack_and_current_slice(segment_widget, run_and_wait):
    viewer, widget = segment_widget
    stack = np.random.default_rng(1).integers(0, 4000, (4, 48, 56), dtype=np.uint16)
    direction = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    image = viewer.add_image(
        stack, name="stack", scale=(2.0, 0.5, 0.5), metadata={"direction": direction, "unit": "mm"}
    )
    widget._image.value = image
    widget._show_probs.value = True
    run_and_wait(widget)
    labels = viewer.layers["stack labels"]
    assert labels.data.shape == (4, 48, 56)
    assert np.allclose(labels.scale, (2.0, 0.5, 0.5))
    assert labels.metadata["direction"] == direction  # saving restores the orientation
    assert labels.metadata["unit"] == "mm"
    probs = viewer.layers["stack probability"]
    assert probs.data.shape == (4, 48, 56) and 0 <= probs.data.min() <= probs.data.max() <= 1

    viewer.dims.set_point(0, 4.0)  # world z = 4 -> slice 2
    labels.data = np.zeros_like(labels.data)
    widget._current_slice.value = True
    run_and_wait(widget)
    assert viewer.layers["stack labels"] is labels
    filled = [bool(np.any(labels.data[z] != 0)) or z == 2 for z in range(4)]
    assert filled == [False, False, True, False] or not labels.data[2].any()
    assert not labels.data[[0, 1, 3]].any()


def test_threshold_rethresholds_without_rerunning(segment_widget, qtbot, rgb_image, run_and_wait):
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(rgb_image, name="t")
    run_and_wait(widget)
    labels = viewer.layers["t labels"]
    probs = widget._last.probabilities.astype(np.float32)
    for t in (0.1, 0.9):
        widget._threshold.value = t
        assert np.array_equal(labels.data, (probs > t).astype(np.uint8))


def test_painted_labels_are_never_overwritten(segment_widget, qtbot, rgb_image, run_and_wait):
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(rgb_image, name="p")
    run_and_wait(widget)
    labels = viewer.layers["p labels"]
    labels.paint((5, 5), 7)  # what a brush stroke does
    painted = labels.data.copy()
    run_and_wait(widget)
    assert np.array_equal(labels.data, painted)
    assert "p labels [2]" in viewer.layers
    widget._threshold.value = 0.2
    assert np.array_equal(labels.data, painted)


def test_cancel_stops_and_changes_nothing(segment_widget, qtbot):
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(np.zeros((40, 128, 128), np.uint8), name="big")
    widget._batch.value = 1
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._progress.value >= 1, timeout=ENGINE_TIMEOUT_MS)
    assert widget._cancel.enabled
    widget._cancel.clicked.emit()
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=60_000)
    assert widget._status.value.startswith("Cancelled")
    assert not _labels_layers(viewer)
    assert widget._run.enabled


def test_errors_become_notifications_and_the_widget_stays_usable(
    segment_widget, errors, tmp_path, rgb_image, run_and_wait
):
    viewer, widget = segment_widget
    widget._run.clicked.emit()  # no image layer yet
    assert errors and "no image layer" in errors[-1]
    widget._image.value = viewer.add_image(rgb_image, name="e")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    SESSION_MODELS.add(corrupt, origin="file")
    widget._model.value = str(corrupt)
    run_and_wait(widget)
    assert "corrupt.safetensors" in errors[-1]
    assert widget._status.value.startswith("Error")
    assert widget._run.enabled and not _labels_layers(viewer)
    widget._model.value = "untrained"
    run_and_wait(widget)
    assert len(_labels_layers(viewer)) == 1


def test_a_crashed_engine_is_reported_and_restarted(segment_widget, qtbot, errors, run_and_wait):
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(np.zeros((30, 128, 128), np.uint8), name="c")
    widget._batch.value = 1
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._progress.value >= 1, timeout=ENGINE_TIMEOUT_MS)
    os.kill(widget._engine.info["pid"], signal.SIGSEGV)
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=60_000)
    assert "SIGSEGV" in errors[-1] and "napari is unharmed" in errors[-1]
    widget._batch.value = 0
    widget._image.value = viewer.add_image(np.zeros((40, 40), np.uint8), name="after")
    run_and_wait(widget)
    assert "after labels" in viewer.layers


def test_every_setting_travels_from_the_controls_to_the_engine(segment_widget, run_and_wait):
    """Each SegmentSettings field set in the widget reaches the engine whole and is what
    the labels layer records (tests/test_settings_travel.py covers the other paths)."""
    import dataclasses

    from napari_res101unet.config import SegmentSettings

    viewer, widget = segment_widget
    every = SegmentSettings(tile_size=64, overlap=0.3, batch_size=2, device="cpu", tta=True,
                            threshold=0.3, blending="constant", mixed_precision=False,
                            instances=True, instance_method="components", per_slice=True,
                            min_object_size=3, fill_holes=False)  # fmt: skip
    for f in dataclasses.fields(SegmentSettings):
        assert getattr(every, f.name) != f.default, f.name
    widget._tile.value, widget._overlap.value, widget._batch.value = 64, 0.3, 2
    widget._device.value, widget._tta.value, widget._threshold.value = "cpu", True, 0.3
    widget._blending.value, widget._mixed.value = "constant", False
    widget._objects.value, widget._method.value = True, "components"
    widget._per_slice.value, widget._min_size.value, widget._fill_holes.value = True, 3, False
    assert widget.settings() == every
    widget._image.value = viewer.add_image(np.zeros((48, 56), np.uint8), name="flat")
    run_and_wait(widget)
    labels = viewer.layers["flat objects"]
    assert labels.metadata["napari_res101unet"]["settings"] == every.as_dict()


def test_separate_objects_gives_a_labels_layer_of_objects(segment_widget, run_and_wait):
    """The "Separate objects" box: one id per object in "<image> objects"; the per-slice
    choice shows only for 3D images, the object controls only when the box is ticked."""
    viewer, widget = segment_widget
    widget._image.value = viewer.add_image(_discs(), name="discs")
    assert not _shown(widget._object_form) and not _shown(widget._per_slice)
    widget._objects.value = True
    assert _shown(widget._object_form) and not _shown(widget._per_slice)  # a 2D image
    run_and_wait(widget)
    objects = viewer.layers["discs objects"]
    assert objects.data.dtype == np.uint16 and objects.data.shape == (96, 96)
    assert "objects (" in widget._status.value
    assert not widget._threshold.enabled  # object ids are not re-thresholded
    widget._image.value = viewer.add_image(np.stack([_discs()] * 3), name="stack")
    assert _shown(widget._per_slice)
    widget._objects.value = False
    assert not _shown(widget._per_slice) and not _shown(widget._object_form)


def _shown(control) -> bool:
    """Whether a control is shown when its dock is (the dock may be hidden in tests)."""
    return not control.native.isHidden()


def _discs() -> np.ndarray:
    yy, xx = np.mgrid[:96, :96]
    image = np.zeros((96, 96), np.uint8)
    for cy, cx in ((24, 24), (24, 44), (70, 64)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = 200
    return image
