"""The end of ``napari-res101unet demo``: its files, and its result opened in napari.

:func:`write_result` writes what the demo made of the held-out slices into its output
folder; :func:`open_viewer` shows them in napari, in a process of its own (napari's
process never imports torch, and closing its window ends the demo), when a display is
there (:func:`display_available`). ``python -m napari_res101unet.cli.demo_view FOLDER
MODEL`` is that process: image, truth (outlined) and prediction as layers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

FILES = {
    "image": "liver_ct_test_image.tif",
    "truth": "liver_ct_test_mask.tif",
    "labels": "liver_ct_test_labels.tif",
    "overview": "liver_ct_test_overview.png",
}
"""What the demo writes into its output folder (the labels are the model's prediction)."""


def write_result(folder: Path, images: np.ndarray, truth: np.ndarray, labels: np.ndarray):
    """Write the held-out ``(N, Y, X)`` images, their masks, the predicted labels and a
    picture (image | truth | prediction) into ``folder``."""
    from ..io import write_image, write_labels

    folder = Path(folder)
    write_image(folder / FILES["image"], images)
    write_labels(folder / FILES["truth"], truth)
    write_labels(folder / FILES["labels"], labels)
    write_image(folder / FILES["overview"], overview(images, truth, labels), rgb=True)


def overview(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Rows of image | truth (green) | prediction (red), as uint8 RGB."""
    rows = []
    for img, gt, pred in zip(images, truth, predicted):
        gray = np.repeat(img[..., None], 3, axis=-1).astype(np.float32)
        tinted = []
        for mask, colour in ((gt, (0, 255, 0)), (pred, (255, 0, 0))):
            layer = gray.copy()
            layer[mask > 0] = 0.5 * layer[mask > 0] + 0.5 * np.array(colour, np.float32)
            tinted.append(layer)
        rows.append(np.concatenate([gray, *tinted], axis=1))
    return np.concatenate(rows, axis=0).clip(0, 255).astype(np.uint8)


def display_available(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> bool:
    """Whether a window can open: on Linux (and other X11/Wayland systems) when
    ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set; always on macOS and Windows."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin")):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def viewer_command(folder: Path, model_name: str) -> list[str]:
    """The command line of the napari process that shows the result in ``folder``."""
    return [sys.executable, "-m", __name__, str(folder), model_name]


def open_viewer(folder: Path, model_name: str) -> bool:
    """Show the demo's result in napari and wait until its window is closed.

    Returns False (after saying why, in one line) when napari could not open.
    """
    print("opening the result in napari (close its window to end; --no-viewer skips this)")
    done = subprocess.run(viewer_command(folder, model_name), check=False)
    if done.returncode != 0:
        print(
            f"napari did not open (exit {done.returncode}; a Qt binding is needed: "
            "pip install 'napari-res101unet[all]'); the files are in the folder above"
        )
    return done.returncode == 0


def add_result_layers(viewer, folder: Path, model_name: str) -> list:
    """Add the demo's result in ``folder`` to a napari ``viewer``: the held-out image, the
    truth (outlined) and the prediction; returns the three layers."""
    from ..io import read_image

    def data(key: str, labels: bool) -> np.ndarray:
        return read_image(Path(folder) / FILES[key], labels=labels).data

    image = viewer.add_image(data("image", False), name="held-out CT", colormap="gray")
    truth = viewer.add_labels(data("truth", True), name="truth (liver mask)")
    truth.contour = 2
    predicted = viewer.add_labels(
        data("labels", True), name=f"prediction ({model_name})", opacity=0.5
    )
    return [image, truth, predicted]


def show(folder: Path, model_name: str) -> None:  # pragma: no cover (opens a window)
    """napari with the demo's result (:func:`add_result_layers`) until it is closed."""
    import napari

    viewer = napari.Viewer(title=f"napari-res101unet demo: '{model_name}' on held-out slices")
    add_result_layers(viewer, folder, model_name)
    napari.run()


if __name__ == "__main__":  # pragma: no cover (the process open_viewer starts)
    show(Path(sys.argv[1]), sys.argv[2])
