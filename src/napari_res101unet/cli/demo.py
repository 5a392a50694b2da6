"""``napari-res101unet demo``: the whole job on the bundled liver CT sample, offline.

Train Res101_UNet from random weights on the sample's training slices for a fixed number
of seeded steps (or, with ``--minutes``, a wall-clock budget), segment its 2 held-out
slices (2 other scans, chosen before any tuning and never changed), score them against
their masks, save the model to the model folder (the napari widgets list it), write the
labels and a picture, print the command that does the same on your own image and, when a
display is there, open the result in napari (``--no-viewer`` skips it).

The recipe (:data:`DEMO_TRAINING`, :data:`DEMO_STEPS`, :data:`DEMO_SCALE`) is what made
the demo robust: the network sees the 256x256 slices at half their resolution (a step
costs a quarter of one at full size, so four times the steps fit the same minutes), the
model records that pixel size, and the held-out slices are resampled to it and back, so
they are scored at their full resolution; the 40 training slices of 20 scans (10 of 5
before issue 25) keep the score from hanging on a few scans. Fixed steps give the same
figures run after run on one machine, but another CPU's float order moves them, so the
promise (IoU >= 0.75 over all held-out pixels, no slice below 0.5) is checked for seeds 0,
1 and 2 by ``benchmarks/bench_demo.py``; its runs are on the Getting started page.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ..config import TrainSettings
from .progress import StepBar, expected_time

DEMO_MODEL = "liver-demo"
DEMO_STEPS = 128
STEPS_PER_EPOCH = 16
DEMO_SCALE = 2
"""The network sees the sample at 1/DEMO_SCALE of its resolution (256x256 -> 128x128)."""
DEMO_TRAINING = TrainSettings(
    patch_size=128, batch_size=8, learning_rate=1e-3, early_stopping=None
)
"""The demo's training settings besides its steps and seed (whole 128x128 slices, 8 a step)."""
DEMO_SECONDS_PER_STEP = 1.1
"""One demo step (8 patches of 128x128) on 2 idle CPU threads, estimated: half the pixels
of :data:`~napari_res101unet.cli.progress.CPU_SECONDS_PER_STEP`'s step (2.7 s for 4 x
256x256). Measured in issue 25 on a 2-core Xeon that other jobs shared (no idle one was at
hand): 1.3 s (21 s an epoch of 16) on 2 threads at a load average of 1.4-2.3."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train on the bundled liver CT sample and segment held-out slices",
        description="Train Res101_UNet from random weights on the bundled liver CT slices "
        f"(MSD Task03) for {DEMO_STEPS} seeded steps (about 3 minutes on a 2-core CPU), "
        "then segment 2 held-out slices of 2 other scans and score them: the same figures "
        "run after run. Nothing is downloaded. The model is saved to the model folder as "
        f"'{DEMO_MODEL}' and appears in napari's Segment widget; the result opens in "
        "napari when there is a display.",
        epilog="examples: napari-res101unet demo; napari-res101unet demo --seed 1 "
        "--no-viewer -o demo-out; napari-res101unet demo --minutes 3 (a time budget: "
        "figures vary)",
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
    p.add_argument(
        "--no-viewer",
        action="store_true",
        help="do not open the result in napari at the end (it opens only when a display is there)",
    )
    p.set_defaults(func=run)


def plan_steps(steps: int) -> tuple[int, int]:
    """``(epochs, steps_per_epoch)`` for at least ``steps`` steps, epochs of <= 16 steps.

    Examples
    --------
    >>> plan_steps(128), plan_steps(2), plan_steps(100)
    ((8, 16), (1, 2), (7, 15))
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


def reduce_scale(images: np.ndarray, labels: np.ndarray, factor: int):
    """``(N, Y, X)`` images and labels at ``1/factor`` of their size (images bilinear and
    antialiased, labels nearest neighbour: the resampling inference uses)."""
    from ..preprocess.spacing import nearest, resize_slices

    size = (images.shape[1] // factor, images.shape[2] // factor)
    return resize_slices(images[..., None], size)[..., 0], nearest(labels, size)


def run(args: argparse.Namespace) -> int:
    from ..device import resolve_device
    from ..samples import load_sample
    from .demo_view import display_available, open_viewer, write_result

    _budget(args)  # bad values stop here, before the sample is read
    sample = load_sample("liver_ct")
    test_idx = sample["split"]["test"]
    predicted = _train_and_segment(args, sample, resolve_device(args.device))
    _print_scores(sample, test_idx, predicted)
    truth = sample["labels"][test_idx]
    write_result(args.output, sample["image"][test_idx], truth, predicted)
    print(f"\nlabels and a picture (image | truth | prediction) are in {args.output}/")
    print(
        "the same on your own image (a model that saw liver CT slices at 2x the sample's "
        "pixel size; --pixel-size gives it one where the file has none):\n"
        f"  napari-res101unet segment YOUR_IMAGE -m {args.name} -o {args.name}-labels/"
    )
    if not args.no_viewer and display_available():
        open_viewer(args.output, args.name)
    return 0


def _train_and_segment(args: argparse.Namespace, sample: dict, device) -> np.ndarray:
    """Train on the sample's training slices (at :data:`DEMO_SCALE`), save the model and
    return its labels of the held-out slices, at their own resolution."""
    from ..config import models_dir
    from ..device import describe_device
    from ..training.run import train

    epochs, per_epoch, minutes = _budget(args)
    train_idx = sample["split"]["train"]
    images, labels = reduce_scale(
        sample["image"][train_idx], sample["labels"][train_idx], DEMO_SCALE
    )
    spacing = [float(s) for s in sample["spacing"]]
    steps = None if minutes is not None else epochs * per_epoch
    what = f"{minutes:g} min" if steps is None else f"{steps} steps (seed {args.seed})"
    scans = len({sample["volume_ids"][i] for i in train_idx})
    print(
        f"Training Res101_UNet on {len(train_idx)} liver CT slices of {scans} scans, at "
        f"{images.shape[2]}x{images.shape[1]}, for {what} on {describe_device(device)} "
        "(random initialisation; nothing downloaded)"
    )
    print(expected_time(steps, minutes, device, DEMO_SECONDS_PER_STEP), flush=True)
    target = models_dir() / f"{args.name}.safetensors"
    if target.exists():
        print(f"replacing the earlier demo model {target} (use --name to keep it)", flush=True)
    started = time.perf_counter()
    settings = dataclasses.replace(
        DEMO_TRAINING, epochs=epochs, steps_per_epoch=per_epoch, max_minutes=minutes,
        seed=args.seed,
    )  # fmt: skip
    with StepBar(steps, minutes) as bar:
        model = train(
            [(images, labels)],
            settings,
            spacing=[spacing[0]] + [s * DEMO_SCALE for s in spacing[1:]],
            output=models_dir() / args.name,
            overwrite=True,  # the demo's own model, named by --name (see its help)
            device=str(device),
            callback=bar.event,
        )
    print(f"trained in {time.perf_counter() - started:.0f} s; model saved as {target}")
    return _segment(sample["image"][sample["split"]["test"]], model, spacing, str(device))


def _segment(images: np.ndarray, model, spacing: list[float], device: str) -> np.ndarray:
    """Labels of the held-out ``(N, Y, X)`` slices at their own resolution (resampled to
    the model's pixel size and back)."""
    from ..inference.segment import segment

    return segment(images, model, device=device, spacing=spacing)


def _print_scores(sample: dict, test_idx: list[int], predicted: np.ndarray) -> None:
    from ..evaluation.pixel import confusion_matrix, scores_from_confusion

    truth = sample["labels"][test_idx]
    total = np.zeros((2, 2), np.int64)
    print("\nheld-out slice        IoU     Dice")
    for i, pred, gt in zip(test_idx, predicted, truth):
        cm = confusion_matrix(pred, gt, 2)
        total += cm
        row = scores_from_confusion(cm)
        print(f"  {_slice_name(sample, i):<18} {row['iou']:.3f}   {row['dice']:.3f}")
    pooled = scores_from_confusion(total)
    print(f"  {'all pixels':<18} {pooled['iou']:.3f}   {pooled['dice']:.3f}")


def _slice_name(sample: dict, index: int) -> str:
    files = sample.get("source_files") or []
    name = files[index] if index < len(files) else f"slice {index}"
    return Path(str(name)).stem[:18]
