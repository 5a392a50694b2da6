"""Fixtures for widget tests: napari viewers under Xvfb, the engine in its own process.

These tests run in a napari process that has never imported torch (tests/test_qt_suite.py
starts them in a fresh interpreter), exactly as a user's napari: under Mesa OpenGL,
importing torchvision after a viewer exists segfaults, so the widgets must never do it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

ENGINE_TIMEOUT_MS = 180_000  # the first job starts the engine process (imports torch)


@pytest.fixture(autouse=True)
def _napari_process_never_imports_torch():
    yield
    leaked = [
        m for m in ("torch", "torchvision", "segmentation_models_pytorch") if m in sys.modules
    ]
    if leaked:
        pytest.fail(f"napari's process imported {leaked}; only the engine process may")


@pytest.fixture(autouse=True)
def _fresh_session_models():
    from napari_res101unet.viewer.session import SESSION_MODELS

    SESSION_MODELS.clear()
    yield
    SESSION_MODELS.clear()


@pytest.fixture
def errors(monkeypatch):
    """Error notifications the widgets show, captured."""
    from napari_res101unet._qt import base

    seen: list[str] = []
    monkeypatch.setattr(base, "show_error", seen.append)
    return seen


@pytest.fixture
def segment_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
    return viewer, widget


@pytest.fixture
def run_and_wait(qtbot):
    """Click Run on a widget and wait until its job has finished."""

    def run(widget, timeout=ENGINE_TIMEOUT_MS):
        widget._run.clicked.emit()
        qtbot.waitUntil(
            lambda: widget._runner.worker is not None or "Error" in widget._status.value,
            timeout=5000,
        )
        qtbot.waitUntil(lambda: widget._runner.worker is None, timeout=timeout)

    return run


@pytest.fixture
def rgb_image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
