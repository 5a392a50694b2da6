"""Screenshots for the documentation's guides that need no model (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot_guides.py [OUT_DIR]

``sample_liver.png``: napari with *File > Open Sample > Res101-UNet > Liver CT* open, on
slice 10 with the mask layer selected, as a user sees it after opening the sample (the
picture of "Your first image in napari" and of the CT and MR guide). No torch is imported.
Default OUT_DIR: docs/images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "napari-res101unet"
SIZE = (1100, 750)
SLICE = 10


def open_liver_sample(size: tuple[int, int] = SIZE) -> napari.Viewer:
    """A fresh viewer of ``size`` with the liver sample open on :data:`SLICE` (also used by
    ``screenshot_train.py``); the caller closes it."""
    viewer = napari.Viewer(title="napari")
    try:
        viewer.window.resize(*size)
        layers = viewer.open_sample(PLUGIN, "liver_ct")
        if [layer.name for layer in layers] != ["liver CT", "liver CT mask"]:
            raise RuntimeError(f"the liver sample opened {[layer.name for layer in layers]}")
        viewer.dims.set_current_step(0, SLICE)
    except BaseException:
        viewer.close()
        raise
    return viewer


def sample_liver(out: Path) -> Path:
    """Open the liver sample in a fresh viewer and save the window as ``out``."""
    viewer = open_liver_sample()
    try:
        viewer.layers.selection.active = viewer.layers["liver CT mask"]
        napari.qt.get_qapp().processEvents()
        viewer.screenshot(str(out), canvas_only=False, flash=False)
    finally:
        viewer.close()
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "docs" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"wrote {sample_liver(folder / 'sample_liver.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
