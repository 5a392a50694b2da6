"""Screenshots of the correct-and-retrain loop in the Segment widget (run under xvfb-run).

    xvfb-run -a python scripts/screenshot_loop.py OUT_DIR [--data ../shared/data]
        [--base-minutes 6] [--refine-minutes 0.5] [--model GLAS_MODEL]

A base model is trained briefly on a few GlaS train images (in a child process: napari's
process never imports torch), then, in napari, as a user would: Segment a held-out GlaS
image with "Show uncertainty" (``loop_1_uncertainty.png``), paint corrections on the
labels (here: the ground truth pasted over the most uncertain region, through the layer's
paint API; ``loop_2_corrections.png``), click "Fine-tune on corrections" and get the
refined labels (``loop_3_refined.png``). ``--model`` starts from a GlaS model you have (for
example ``bench_training.py --save-models``' ``glas-25min-ours.safetensors``) instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TRAIN = """
import sys
sys.path.insert(0, {bench!r})
import napari_res101unet as nr
from pathlib import Path
from bench_training import load_folder
pairs = [(i[:384, :384], m[:384, :384]) for i, m in load_folder(Path({train!r}), 8)]
nr.train(pairs[:6], val_pairs=pairs[6:], epochs=1000, max_minutes={minutes}, patch_size=256,
         batch_size=4, device="cpu", output={output!r}, overwrite=True)
"""


def _wait(app, done, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)


def base_model(out: Path, data: Path, minutes: float) -> Path:
    path = out / "loop_base.safetensors"
    if not path.exists():
        code = TRAIN.format(
            bench=str(REPO / "benchmarks"),
            train=str(data / "glas" / "train"),
            minutes=minutes,
            output=str(out / "loop_base"),
        )
        subprocess.run([sys.executable, "-c", code], check=True)
    return path


def paste_truth(labels, truth: np.ndarray, box: tuple[slice, slice]) -> None:
    """Correct ``box`` to ``truth`` through ``data_setitem`` (emits a paint event)."""
    box = tuple(slice(*b.indices(n)[:2]) for b, n in zip(box, truth.shape))
    ys, xs = np.mgrid[box]
    labels.data_setitem((ys.ravel(), xs.ravel()), truth[box].ravel().astype(labels.data.dtype))


def main(args) -> None:
    import napari

    from napari_res101unet.io import read_image
    from napari_res101unet.viewer.session import SESSION_MODELS

    model = args.model or base_model(args.out, args.data, args.base_minutes)
    test = args.data / "glas" / "testA"
    name = sorted((test / "images").iterdir())[0].name
    image = read_image(test / "images" / name, labels=False).data[:384, :384, :3]
    truth = read_image(test / "masks" / name, labels=False).data[:384, :384] > 127
    truth = truth[..., 0] if truth.ndim == 3 else truth
    app = napari.qt.get_qapp()
    viewer = napari.Viewer()
    viewer.window.resize(1400, 1000)
    layer = viewer.add_image(image, name="gland", rgb=True)
    viewer.reset_view()
    _dock, w = viewer.window.add_plugin_dock_widget("napari-res101unet", "Segment")
    w._image.value = layer
    SESSION_MODELS.add(model, label="GlaS model", origin="file")
    w._model.value = str(model)
    w._show_unc.value = True
    _run(app, w, w._run)
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(str(args.out / "loop_1_uncertainty.png"), canvas_only=False)
    labels = viewer.layers["gland labels"]
    for item in w._refine._items[:3]:  # the user fixes the three regions listed first
        y0, x0, y1, x1 = item.bbox
        box = (slice(max(0, y0 - 24), y1 + 24), slice(max(0, x0 - 24), x1 + 24))
        paste_truth(labels, truth.astype(np.uint8), box)
    viewer.layers["gland uncertainty"].visible = False
    viewer.layers.selection.active = labels
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(str(args.out / "loop_2_corrections.png"), canvas_only=False)
    w._refine._minutes.value = args.refine_minutes
    _run(app, w, w._refine._button)
    labels.visible = False
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(str(args.out / "loop_3_refined.png"), canvas_only=False)
    print(w._status.value)
    viewer.close()


def _run(app, w, button) -> None:
    button.clicked.emit()
    _wait(app, lambda: w._runner.worker is not None, 30)
    _wait(app, lambda: w._runner.worker is None)
    app.processEvents()
    print(w._status.value)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--base-minutes", type=float, default=6.0)
    p.add_argument("--refine-minutes", type=float, default=0.5)
    p.add_argument("--model", type=Path, default=None, help="a GlaS model to start from")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["NAPARI_RES101UNET_MODELS"] = str(args.out / "models")  # not the user's
    main(args)
