"""Screenshots of the docked widgets, as a user sees them (run under xvfb-run).

    xvfb-run -a python scripts/screenshot_widgets.py OUT_DIR

Opens napari with the liver sample, docks Segment and Train and saves the window
(``widgets.png``); then runs Segment once with the untrained network in the engine
process, as a user clicking Run would, and saves the window again
(``widgets_after_run.png``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari


def _wait(app, done, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = napari.qt.get_qapp()
    viewer = napari.Viewer()
    viewer.window.resize(1400, 1000)
    viewer.open_sample("napari-res101unet", "liver_ct")
    _dock, segment = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
    viewer.window.add_plugin_dock_widget("napari-res101unet", "Train")
    app.processEvents()
    viewer.screenshot(str(out / "widgets.png"), canvas_only=False)
    segment._image.value = viewer.layers["liver CT"]
    segment._run.clicked.emit()
    _wait(app, lambda: segment._runner.worker is not None)
    _wait(app, lambda: segment._runner.worker is None)
    app.processEvents()
    viewer.screenshot(str(out / "widgets_after_run.png"), canvas_only=False)
    print(segment._status.value)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
