"""Fixtures for widget tests (napari viewer under Xvfb, engine in its own process)."""

from __future__ import annotations

import numpy as np
import pytest

ENGINE_TIMEOUT_MS = 180_000  # the first job starts the engine process (imports torch)


@pytest.fixture
def errors(monkeypatch):
    """Error notifications the widgets show, captured."""
    from napari_res101unet._qt import _common

    seen: list[str] = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    return seen


@pytest.fixture
def segment_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
    return viewer, widget


def run_and_wait(qtbot, widget, timeout=ENGINE_TIMEOUT_MS):
    """Click Run and wait until the job has finished (results are in the viewer)."""
    widget._run.clicked.emit()
    qtbot.waitUntil(
        lambda: widget._worker is not None or "Error" in widget._status.value, timeout=5000
    )
    qtbot.waitUntil(lambda: widget._worker is None, timeout=timeout)


@pytest.fixture
def rgb_image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
