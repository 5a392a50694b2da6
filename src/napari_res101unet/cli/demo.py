"""``napari-res101unet demo``: the whole job on the bundled liver CT sample, offline.

Fine-tune Res101_UNet on the 10 training slices (5 scans) for a wall-clock budget, segment
the 2 held-out slices (2 other scans), score them against their masks, save the model to
the model folder (the napari widgets list it) and write the labels and a picture.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEMO_MODEL = "liver-demo"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="fine-tune on the bundled liver CT sample and segment held-out slices",
        description="Fine-tune Res101_UNet on 10 bundled liver CT slices (MSD Task03, 5 "
        "scans) for --minutes, then segment 2 held-out slices of 2 other scans and score "
        "them. Nothing is downloaded. The model is saved to the model folder as "
        f"'{DEMO_MODEL}' and appears in napari's Segment widget.",
        epilog="example: napari-res101unet demo --minutes 3 -o demo-out",
    )
    p.add_argument("--minutes", type=float, default=3.0, help="training budget (default 3)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("res101unet-demo"),
        help="folder for the labels and the picture (default ./res101unet-demo)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--name", default=DEMO_MODEL, help="model name in the model folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import models_dir
    from ..device import describe_device, resolve_device
    from ..evaluation import evaluate
    from ..samples import load_sample
    from ..training.run import train

    if args.minutes <= 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    sample = load_sample("liver_ct")
    train_idx, test_idx = sample["split"]["train"], sample["split"]["test"]
    image, labels = sample["image"], sample["labels"]
    device = resolve_device(args.device)
    print(
        f"Fine-tuning Res101_UNet on {len(train_idx)} liver CT slices for {args.minutes:g} "
        f"min on {describe_device(device)} (random initialisation; nothing downloaded)"
    )
    started = time.perf_counter()
    model = train(
        [(image[train_idx], labels[train_idx])],
        epochs=1000,
        max_minutes=args.minutes,
        early_stopping=None,
        output=models_dir() / args.name,
        device=str(device),
        callback=_print_epoch,
    )
    print(
        f"trained in {time.perf_counter() - started:.0f} s; model saved as "
        f"{models_dir() / args.name}.safetensors"
    )
    pairs = [(image[i], labels[i]) for i in test_idx]
    scores = evaluate(model, pairs, device=str(device))
    print("\nheld-out slice        IoU     Dice")
    for i, row in zip(test_idx, scores["per_image"]):
        print(f"  {_slice_name(sample, i):<18} {row['iou']:.3f}   {row['dice']:.3f}")
    print(f"  {'all pixels':<18} {scores['iou']:.3f}   {scores['dice']:.3f}")
    _write_outputs(args.output, model, image[test_idx], labels[test_idx], str(device))
    print(f"\nlabels and a picture (image | truth | prediction) are in {args.output}/")
    print(
        f"next: run `napari`, open File > Open Sample > Liver CT, then Plugins > Segment "
        f"and pick '{args.name}'"
    )
    return 0


def _print_epoch(event) -> None:
    if event.kind == "epoch":
        iou = f"  val IoU {event.val_iou:.3f}" if event.val_iou is not None else ""
        print(
            f"  epoch {event.epoch:>3}  loss {event.train_loss:.4f}{iou}  ({event.seconds:.0f} s)",
            flush=True,
        )


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
