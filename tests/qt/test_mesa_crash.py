"""The Mesa/triton LLVM clash: torchvision imported after napari's OpenGL canvas exists
segfaults the process. Reproduce it, then show the Segment widget survives the same
conditions because torch only ever runs in the engine process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.qt

VIEWER = """
import sys, time
import numpy as np
import napari
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer()
pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
viewer.add_image(pixels, name="img")
app = QApplication.instance()
app.processEvents()
"""


def _python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )


def test_reproduction_torchvision_after_a_viewer_segfaults():
    if importlib.util.find_spec("torchvision") is None:  # do not import it here
        pytest.skip("torchvision is not installed")
    proc = _python(VIEWER + "\nimport torchvision\nprint('survived')\n")
    if proc.returncode == 0:
        pytest.skip("this OpenGL stack does not reproduce the Mesa/triton clash")
    assert proc.returncode == -11, proc.stderr[-2000:]  # SIGSEGV, the bug being guarded


def test_segment_widget_survives_the_same_conditions():
    code = (
        VIEWER
        + """
dock, widget = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
widget.run()
start = time.time()
def busy():
    return widget._runner.worker is not None or "img labels" not in viewer.layers
while busy() and time.time() - start < 240:
    app.processEvents()
    time.sleep(0.05)
labels = viewer.layers["img labels"].data
print("labels", labels.shape, "torch" in sys.modules, "torchvision" in sys.modules)
viewer.close()
"""
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "labels (64, 64) False False" in proc.stdout
