"""The Train widget's screenshot for the guide "Train from layers" (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/screenshot_train.py [OUT_DIR]

``train_widget.png``: napari with *File > Open Sample > Res101-UNet > Liver CT* open, the
Train widget docked with the sample's image and mask selected, after a short real run from
random weights (6 epochs of 4 steps of 4 patches of 128: about a minute on 2 CPU threads),
so the picture shows the live curve and the closing status as a user sees them. The run
happens in the engine process, as in napari (no torch is imported here); its model is
written to a temporary folder and deleted. Default OUT_DIR: docs/images.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QLineEdit
from screenshot_guides import PLUGIN, ROOT, open_liver_sample

SIZE = (1500, 950)
RUN_SECONDS = 900


def _wait(app, done, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"the training run did not end within {seconds:.0f} s")
        app.processEvents()
        time.sleep(0.05)


def train_widget(out: Path) -> Path:
    """Open the liver sample, run a short training in the Train widget, save the window."""
    app = napari.qt.get_qapp()
    viewer = open_liver_sample(SIZE)
    try:
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Train")
        widget._image.value = viewer.layers["liver CT"]
        widget._labels.value = viewer.layers["liver CT mask"]
        widget._epochs.value, widget._steps.value = 6, 4
        widget._patch.value, widget._batch.value = 128, 4
        with tempfile.TemporaryDirectory() as tmp:
            widget._output.value = Path(tmp) / "liver-ct.safetensors"
            app.processEvents()
            widget._train.clicked.emit()
            _wait(app, lambda: widget._runner.worker is not None, 60)
            _wait(app, lambda: widget._runner.worker is None, RUN_SECONDS)
            for line in widget.native.findChildren(QLineEdit):
                line.deselect()  # no spin box shown with its text selected
            app.processEvents()
            status = str(widget._status.value)
            if not status.startswith("Done"):
                raise RuntimeError(f"the training run ended with {status!r}")
            viewer.screenshot(str(out), canvas_only=False, flash=False)
    finally:
        viewer.close()
    return out


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else ROOT / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(train_widget(out_dir / "train_widget.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
