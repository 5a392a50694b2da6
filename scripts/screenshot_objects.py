"""The screenshot of the "Objects: count and measure" guide (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot_objects.py [OUT_DIR]

``objects_nuclei.png``: napari with *File > Open Sample > Res101-UNet > Nuclei*, the
Segment widget docked with **Separate objects** ticked, and the layer ``nuclei objects``:
the sample's nuclei *mask* (its foreground, one value for all nuclei, as a semantic model
gives it) separated into objects by the same post-processing ``segment(...,
instances=True)`` runs (distance-transform watershed, holes filled). No network runs (an
untrained one would draw noise), so no torch is imported. Default OUT_DIR: docs/images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-res101unet"
SIZE = (1280, 800)


def objects_nuclei(out: Path) -> Path:
    from napari_res101unet.config import SegmentSettings
    from napari_res101unet.postprocess.objects import objects_from_labels

    viewer = napari.Viewer(title="napari")
    try:
        viewer.window.resize(*SIZE)
        image, mask = viewer.open_sample(PLUGIN, "nuclei")
        foreground = (np.asarray(mask.data) > 0).astype(np.uint8)
        objects, note = objects_from_labels(foreground, SegmentSettings(instances=True))
        mask.visible = False
        layer = viewer.add_labels(objects, name=f"{image.name} objects", opacity=0.6)
        _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment")
        widget._image.value = image
        widget._objects.value = True
        widget._status.value = f"{image.name}: {note}"
        viewer.layers.selection.active = layer
        napari.qt.get_qapp().processEvents()
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        print(f"{out}: {note}; {int(np.asarray(mask.data).max())} nuclei in the sample's mask")
    finally:
        viewer.close()
    return out


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    objects_nuclei(folder / "objects_nuclei.png")
