"""Screenshots of the docked widgets, as a user sees them (run under xvfb-run).

    xvfb-run -a python scripts/screenshot_widgets.py OUT_DIR

Opens napari with the liver sample, docks Segment and Train, and saves the window.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer()
    viewer.window.resize(1400, 1000)
    viewer.open_sample("napari-res101unet", "liver_ct")
    for name in ("Segment", "Train"):
        _dock, _widget = viewer.window.add_plugin_dock_widget("napari-res101unet", name)
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(out / "widgets.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
