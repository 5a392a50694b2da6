"""Correct and retrain in the Segment widget: uncertainty, review list, paint, fine-tune.

Driven like a user would, with the engine in its own process (a tiny budget: one step)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.config import RefineSettings
from napari_res101unet.viewer.session import SESSION_MODELS

ENGINE_TIMEOUT_MS = 180_000

pytestmark = pytest.mark.qt


def _finish(widget, qtbot):
    qtbot.waitUntil(
        lambda: widget._runner.worker is not None or "Error" in widget._status.value,
        timeout=5000,
    )
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=ENGINE_TIMEOUT_MS)


def test_uncertainty_paint_and_fine_tune_keep_the_painted_pixels(
    segment_widget, qtbot, run_and_wait
):
    viewer, widget = segment_widget
    stack = np.random.default_rng(2).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    widget._image.value = viewer.add_image(stack, name="cells", scale=(1.0, 0.5, 0.5))
    widget._show_unc.value = True
    run_and_wait(widget)
    assert "review: slice" in widget._status.value
    unc = viewer.layers["cells uncertainty"]
    assert unc.data.shape == (3, 64, 64) and unc.colormap.name == "magma"
    panel = widget._refine
    assert not panel._review.native.isHidden() and len(panel._review.choices) == 3
    last = panel._review.choices[-1]
    panel._review.value = last  # jumps to that slice
    assert round(viewer.dims.point[0]) == panel._items[last].index

    labels = viewer.layers["cells labels"]
    panel._button.clicked.emit()  # nothing painted yet: a clear message, no job
    assert "no corrections to learn from" in widget._status.value
    assert widget._runner.worker is None

    labels.brush_size = 8
    labels.paint((1, 20, 20), 2)  # a label the binary model does not have
    panel._button.clicked.emit()
    assert "label 2 was painted on 'cells labels', but the model has 2 classes" in (
        widget._status.value
    )
    labels.undo()
    value = 1 - int(labels.data[1, 20, 20])
    labels.paint((1, 20, 20), value)  # the user's correction on slice 1
    painted = labels.data.copy()
    panel._minutes.value = 0.1
    panel.refine_settings = RefineSettings(
        epochs=1, steps_per_epoch=1, patch_size=64, batch_size=1
    )
    panel._button.clicked.emit()
    _finish(widget, qtbot)
    assert "Fine-tuned" in widget._status.value, widget._status.value
    refined = viewer.layers["cells refined"]
    assert np.array_equal(refined.data[1], painted[1])  # every painted pixel kept
    assert np.array_equal(labels.data, painted)  # the painted layer is untouched
    assert viewer.layers.selection.active is refined  # where the next fixes go
    path = refined.metadata["napari_res101unet"]["model"]
    assert widget._model.value == path and any(str(m.path) == path for m in SESSION_MODELS)
    assert len(panel.pairs) == 1  # the next turn trains on these corrections too
