"""``napari-res101unet demo``: the whole job on the bundled liver CT sample, offline.

Fine-tune Res101_UNet on the 10 training slices (5 scans) for a fixed number of seeded
steps (or, with ``--minutes``, a wall-clock budget), segment the 2 held-out slices (2 other
scans), score them against their masks, save the model to the model folder (the napari
widgets list it) and write the labels and a picture. A fixed number of steps gives the
same figures run after run, whatever the machine's speed or load (up to the small
differences between CPU kernels); a time budget does not.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from .progress import StepBar, expected_time

DEMO_MODEL = "liver-demo"
DEMO_STEPS = 64  # 4 epochs of 16: about 3 minutes on a 2-core CPU (see progress.py)
STEPS_PER_EPOCH = 16


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="fine-tune on the bundled liver CT sample and segment held-out slices",
        description="Fine-tune Res101_UNet on 10 bundled liver CT slices (MSD Task03, 5 "
        f"scans) for {DEMO_STEPS} seeded steps (about 3 minutes on a 2-core CPU), then "
        "segment 2 held-out slices of 2 other scans and score them: the same figures run "
        "after run. Nothing is downloaded. The model is saved to the model folder as "
        f"'{DEMO_MODEL}' and appears in napari's Segment widget.",
        epilog="examples: napari-res101unet demo; napari-res101unet demo --steps 160 "
        "-o demo-out; napari-res101unet demo --minutes 3 (a time budget: figures vary)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"training steps (default {DEMO_STEPS}; rounded up to whole epochs of at most "
        f"{STEPS_PER_EPOCH})",
    )
    budget.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="train for this wall-clock budget instead of a number of steps (the figures "
        "then depend on the machine's speed and load)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("res101unet-demo"),
        help="folder for the labels and the picture (default ./res101unet-demo)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--name",
        default=DEMO_MODEL,
        help="model name in the model folder; a rerun replaces the demo model of that name "
        "(and says so), pick another name to keep it",
    )
    p.set_defaults(func=run)


def plan_steps(steps: int) -> tuple[int, int]:
    """``(epochs, steps_per_epoch)`` for at least ``steps`` steps, epochs of <= 16 steps.

    Examples
    --------
    >>> plan_steps(64), plan_steps(2), plan_steps(100)
    ((4, 16), (1, 2), (7, 15))
    """
    epochs = math.ceil(steps / STEPS_PER_EPOCH)
    return epochs, math.ceil(steps / epochs)


def _budget(args: argparse.Namespace) -> tuple[int, int, float | None]:
    """``(epochs, steps_per_epoch, minutes)`` from ``--steps`` / ``--minutes``."""
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {args.seed}")
    if args.minutes is not None:
        if not args.minutes > 0:
            raise ValueError(f"--minutes must be positive, got {args.minutes}")
        return 1000, STEPS_PER_EPOCH, args.minutes
    steps = DEMO_STEPS if args.steps is None else args.steps
    if steps < 1:
        raise ValueError(f"--steps must be a positive whole number, got {steps}")
    return (*plan_steps(steps), None)


def run(args: argparse.Namespace) -> int:
    from ..config import models_dir
    from ..device import describe_device, resolve_device
    from ..evaluation.score_model import evaluate
    from ..samples import load_sample
    from ..training.run import train

    epochs, per_epoch, minutes = _budget(args)
    sample = load_sample("liver_ct")
    train_idx, test_idx = sample["split"]["train"], sample["split"]["test"]
    image, labels = sample["image"], sample["labels"]
    device = resolve_device(args.device)
    steps = None if minutes is not None else epochs * per_epoch
    what = f"{minutes:g} min" if steps is None else f"{steps} steps (seed {args.seed})"
    print(
        f"Fine-tuning Res101_UNet on {len(train_idx)} liver CT slices for {what} on "
        f"{describe_device(device)} (random initialisation; nothing downloaded)"
    )
    print(expected_time(steps, minutes, device), flush=True)
    target = models_dir() / f"{args.name}.safetensors"
    if target.exists():
        print(f"replacing the earlier demo model {target} (use --name to keep it)", flush=True)
    started = time.perf_counter()
    with StepBar(steps, minutes) as bar:
        model = train(
            [(image[train_idx], labels[train_idx])],
            epochs=epochs,
            steps_per_epoch=per_epoch,
            max_minutes=minutes,
            early_stopping=None,
            seed=args.seed,
            output=models_dir() / args.name,
            overwrite=True,  # the demo's own model, named by --name (see its help)
            device=str(device),
            callback=bar.event,
        )
    print(
        f"trained in {time.perf_counter() - started:.0f} s; model saved as "
        f"{models_dir() / args.name}.safetensors"
    )
    pairs = [(image[i], labels[i]) for i in test_idx]
    scores = evaluate(model, pairs, device=str(device))
    _print_scores(sample, test_idx, scores)
    _write_outputs(args.output, model, image[test_idx], labels[test_idx], str(device))
    print(f"\nlabels and a picture (image | truth | prediction) are in {args.output}/")
    print(
        "next: run `napari`, open File > Open Sample > Liver CT, then Layers > Segment > "
        f"Segment (Res101-UNet) and pick '{args.name}'"
    )
    return 0


def _print_scores(sample: dict, test_idx: list[int], scores: dict) -> None:
    print("\nheld-out slice        IoU     Dice")
    for i, row in zip(test_idx, scores["per_image"]):
        print(f"  {_slice_name(sample, i):<18} {row['iou']:.3f}   {row['dice']:.3f}")
    print(f"  {'all pixels':<18} {scores['iou']:.3f}   {scores['dice']:.3f}")


def _slice_name(sample: dict, index: int) -> str:
    files = sample.get("source_files") or []
    name = files[index] if index < len(files) else f"slice {index}"
    return Path(str(name)).stem[:18]


def _write_outputs(folder: Path, model, images, truth, device: str) -> None:
    from ..inference.segment import segment
    from ..io import write_image, write_labels

    predicted = segment(images, model, device=device)
    write_labels(folder / "liver_ct_test_labels.tif", predicted)
    write_image(
        folder / "liver_ct_test_overview.png", _overview(images, truth, predicted), rgb=True
    )


def _overview(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
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
