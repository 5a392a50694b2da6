"""Robustness benchmark (issue 16, items 2 and 3): other display windows, other pixel sizes.

A model trained on the MSD liver slices (split by volume, as ``bench_training.py``; or
``--model``) is scored (pixel IoU over the held-out slices, :func:`napari_res101unet.evaluate`)
on:

* **window**: the held-out slices as they are, and re-rendered with a wide window:
  contrast compressed around the soft-tissue grey (the median training pixel inside the
  liver masks) to a third, ``g + (x - g) / 3``. Before: intensity mapping off (the
  model's ``spec.intensity`` removed, as for a checkpoint of earlier versions); after: on.
  Target: the wide-window IoU within 0.05 of the original's.
* **spacing**: the same slices upsampled to 512x512 (image bilinear, truth nearest), so
  their pixels are half the size. Before: segmented as today (no spacing given: the
  network sees the liver twice as large); after: with ``spacing=(0.5, 0.5)``, resampled
  to the model's pixel size and back. The model is trained with ``spacing=(1, 1)``: the
  JPEG slices carry no pixel size, so "1 slice pixel" is the unit. Target: within 0.02
  of the original IoU (scored against the upsampled truth).

Usage::

    python benchmarks/bench_robustness.py --minutes 10 --out results/
    python benchmarks/bench_robustness.py --model liver.safetensors --out results/
    python benchmarks/bench_robustness.py --quick --out /tmp/robust   # seconds: mechanics only
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable_settings  # noqa: E402
from bench_training import hardware, liver_split  # noqa: E402
from napari_res101unet.device import resolve_device  # noqa: E402
from napari_res101unet.preprocess.spacing import nearest, resize_slices  # noqa: E402

COMPRESSION = 1.0 / 3.0
UPSAMPLE = 2


def gray(pairs):
    """RGB-encoded gray slices as ``(Y, X)`` uint8 (what the reader gives for them)."""
    return [(image[..., 0], mask) for image, mask in pairs]


def soft_tissue_grey(pairs) -> float:
    """The median training intensity inside the liver masks."""
    return float(np.median(np.concatenate([im[m > 0] for im, m in pairs if m.any()])))


def wide_window(image: np.ndarray, grey: float) -> np.ndarray:
    """``image`` re-rendered with contrast compressed around ``grey`` to a third."""
    return np.rint(grey + COMPRESSION * (image.astype(np.float64) - grey)).astype(np.uint8)


def upsampled(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slice on a grid ``UPSAMPLE`` times finer (image linear, truth nearest)."""
    size = (image.shape[0] * UPSAMPLE, image.shape[1] * UPSAMPLE)
    big = resize_slices(image[None, ..., None], size)[0, ..., 0]
    return big, nearest(mask[None], size)[0]


def without_intensity(model):
    """The model as a checkpoint of earlier versions sees it: no intensity record."""
    twin = copy.copy(model)  # shares the weights; only the spec differs
    twin.spec = nr.ModelSpec.from_dict({**model.spec.to_dict(), "intensity": None})
    return twin


def score(model, pairs, device, **options) -> dict:
    started = time.monotonic()
    s = nr.evaluate(model, pairs, device=device, **options)
    return {
        "iou": round(s["iou"], 4),
        "dice": round(s["dice"], 4),
        "mean_iou": round(s["mean_iou"], 4),
        "seconds": round(time.monotonic() - started, 1),
    }


def measure(model, test, grey, device) -> dict:
    """Every before/after row of the two shifts."""
    wide = [(wide_window(im, grey), m) for im, m in test]
    big = [upsampled(im, m) for im, m in test]
    old = without_intensity(model)
    rows = {
        "original": score(model, test, device, spacing=(1.0, 1.0)),
        "window_before": score(old, wide, device),
        "window_after": score(model, wide, device),
        "spacing_before": score(model, big, device),
        "spacing_after": score(model, big, device, spacing=(0.5, 0.5)),
    }
    base = rows["original"]["iou"]
    for row in rows.values():
        row["gap_to_original"] = round(row["iou"] - base, 4)
    return rows


def markdown(rows: dict) -> str:
    targets = {"window": 0.05, "spacing": 0.02}
    lines = [
        "| test | before (IoU) | after (IoU) | original | gap after | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    base = rows["original"]["iou"]
    for test, target in targets.items():
        before, after = rows[f"{test}_before"]["iou"], rows[f"{test}_after"]["iou"]
        gap = after - base
        met = "yes" if abs(gap) <= target or gap > 0 else "**no**"
        lines.append(
            f"| {test} | {before:.3f} | {after:.3f} | {base:.3f} | {gap:+.3f} | "
            f"within {target:.2f} | {met} |"
        )
    return "\n".join(lines) + "\n"


def get_model(args, train, device):
    if args.model is not None:
        return nr.load_model(args.model, device=device), {"model": args.model.name}
    options = {"max_minutes": args.minutes, "epochs": 1000}
    if args.quick:
        options = {"epochs": 1, "steps_per_epoch": 2, "patch_size": 64, "batch_size": 2}
    started = time.monotonic()
    model = nr.train(train, spacing=(1.0, 1.0), device=device, seed=args.seed, **options)
    record = model.spec.training
    return model, {
        "train_seconds": round(time.monotonic() - started, 1),
        "steps": record["step"],
        "best_epoch": record["best_epoch"],
        "recipe": record.get("recipe"),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--model", type=Path, help="score this model instead of training one")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget")
    p.add_argument("--quick", action="store_true", help="4 slices, 2 steps: mechanics only")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--out", type=Path, help="folder for robustness.json and robustness.md")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    limit = 4 if args.quick else args.max_images
    device = resolve_device(args.device)
    train, test, volumes = liver_split(args.data / "msd_liver_jpg", args.seed, limit)
    train, test = gray(train), gray(test)
    grey = soft_tissue_grey(train)
    print(f"liver: {len(train)} train, {len(test)} test slices ({volumes} volumes); grey {grey}")
    model, trained = get_model(args, train, device)
    rows = measure(model, test, grey, device)
    result = {
        "hardware": hardware(device),
        "settings": portable_settings(vars(args), args.data),
        "soft_tissue_grey": grey,
        "model": trained,
        "results": rows,
    }
    table = markdown(rows)
    print(json.dumps(rows, indent=2))
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "robustness.json").write_text(json.dumps(result, indent=2))
        (args.out / "robustness.md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
