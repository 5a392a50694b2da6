"""The Train dock widget: pairs from layers, checks before starting, training in the engine
process, a live curve, cancel, and the model handed to the Segment widget."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_res101unet._qt.train_widget import RANDOM, TrainWidget
from napari_res101unet.viewer.session import SESSION_MODELS

pytestmark = pytest.mark.qt
TRAIN_TIMEOUT_MS = 300_000


def disks(size=96, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint8)
    for cy, cx in rng.integers(15, size - 15, (4, 2)):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] = 1
    image = (rng.normal(60, 10, (size, size)) + 120 * labels).clip(0, 255).astype(np.uint8)
    return image, labels


@pytest.fixture
def train_widget(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-res101unet", "Train")
    widget._epochs.value = 1
    widget._steps.value = 2
    widget._patch.value = 64
    widget._batch.value = 2
    widget._output.value = tmp_path / "trained.safetensors"
    return viewer, widget


def _train_and_wait(qtbot, widget, timeout=TRAIN_TIMEOUT_MS):
    widget._train.clicked.emit()
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=timeout)


def test_docks_with_defaults(train_widget):
    _viewer, widget = train_widget
    assert isinstance(widget, TrainWidget)
    assert widget._start.value == RANDOM
    assert widget._train.enabled and not widget._cancel.enabled


def test_trains_two_steps_from_layers_and_hands_the_model_to_segment(
    train_widget, qtbot, tmp_path, run_and_wait
):
    viewer, widget = train_widget
    image, labels = disks()
    widget._image.value = viewer.add_image(image, name="cells", scale=(0.5, 0.5))
    widget._labels.value = viewer.add_labels(labels, name="cells mask")
    widget._add.clicked.emit()
    assert widget._pairs == [("cells", "cells mask")]
    _train_and_wait(qtbot, widget)
    assert widget._status.value.startswith("Done (completed)"), widget._status.value
    saved = tmp_path / "trained.safetensors"
    assert saved.is_file()
    assert [m.path for m in SESSION_MODELS] == [saved]
    assert len(widget._plot.losses) == 1  # one epoch on the curve
    assert widget._progress.value == widget._progress.max == 2

    _dock, segment = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
    assert segment._model.value == str(saved)
    segment._image.value = viewer.layers["cells"]
    run_and_wait(segment)
    assert viewer.layers["cells labels"].data.shape == (96, 96)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("shapes", "'img + lab'"),
        ("empty", "are empty"),
        ("classes", "beyond classes=2"),
    ],
)
def test_bad_pairs_are_refused_before_anything_starts(train_widget, errors, case, message):
    viewer, widget = train_widget
    image, labels = disks()
    if case == "shapes":
        labels = labels[:80]
    elif case == "empty":
        labels = np.zeros_like(labels)
    else:
        labels = labels * 3
        widget._classes.value = 2
    widget._image.value = viewer.add_image(image, name="img")
    widget._labels.value = viewer.add_labels(labels, name="lab")
    widget._train.clicked.emit()
    assert widget._runner.worker is None
    assert errors and message in errors[-1], errors


def test_cancel_keeps_a_loadable_best_model(train_widget, qtbot, tmp_path):
    viewer, widget = train_widget
    image, labels = disks(128, seed=1)
    widget._image.value = viewer.add_image(image, name="c")
    widget._labels.value = viewer.add_labels(labels, name="c mask")
    widget._epochs.value = 50
    widget._train.clicked.emit()
    qtbot.waitUntil(lambda: len(widget._plot.losses) >= 1, timeout=TRAIN_TIMEOUT_MS)
    widget._cancel.clicked.emit()
    qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=120_000)
    assert widget._status.value.startswith("Done (cancelled)"), widget._status.value
    assert len(widget._plot.losses) < 50
    saved = tmp_path / "trained.safetensors"
    check = subprocess.run(  # load it where torch may live: not in napari's process
        [
            sys.executable,
            "-c",
            "import sys, napari_res101unet as nr; "
            "m = nr.load_model(sys.argv[1]); print(m.spec.training['stopped'])",
            str(saved),
        ],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.stdout.strip() == "cancelled"


def test_sparse_labels_train(train_widget, qtbot):
    viewer, widget = train_widget
    image, labels = disks(seed=2)
    sparse = np.zeros_like(labels)
    sparse[:10] = 1  # a stroke of background
    sparse[labels == 1] = 2  # the objects
    widget._image.value = viewer.add_image(image, name="s")
    widget._labels.value = viewer.add_labels(sparse, name="s strokes")
    widget._sparse.value = True
    widget._val.value = 0.0
    _train_and_wait(qtbot, widget)
    assert widget._status.value.startswith("Done (completed)"), widget._status.value


def test_the_objects_checkbox_asks_for_instance_training(train_widget):
    _viewer, widget = train_widget
    assert widget.settings().instances is False
    widget._instances.value = True
    assert widget.settings().instances is True
