"""``napari-res101unet train``: fine-tune on image and mask folders paired by file name."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import TrainSettings
from .common import (
    add_pixel_size,
    add_settings,
    fmt,
    graceful_interrupt,
    pixel_spacing,
    settings_from,
    start_model,
)
from .progress import StepBar

SETTINGS = (
    "epochs",
    "patch_size",
    "batch_size",
    "learning_rate",
    "encoder_learning_rate_factor",
    "freeze_encoder_epochs",
    "weight_decay",
    "val_fraction",
    "foreground_fraction",
    "steps_per_epoch",
    "early_stopping",
    "max_minutes",
    "seed",
    "classes",
    "ignore_index",
    "sparse",
    "augment",
    "mirror",
    "mixed_precision",
    "sync_bn",
    "workers",
    "loss",
    "instances",
    "instance_head",
)


def add_folders(p: argparse.ArgumentParser, what: str) -> None:
    """``--images``/``--masks`` folders, ``--binary`` and ``--device`` (train, evaluate)."""
    p.add_argument("--images", required=True, type=Path, help=f"folder of {what} images")
    p.add_argument(
        "--masks",
        required=True,
        type=Path,
        help="folder of label images, paired with the images by file name (<stem> or "
        "<stem>_mask...). 0/255 masks become 0/1, JPEG masks are > 127, others are class "
        "indices",
    )
    p.add_argument("--binary", action="store_true", help="treat every mask as mask > 0")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="fine-tune Res101_UNet on image and mask folders",
        description="Fine-tune Res101_UNet on pairs of images and masks (matched by file "
        "name) and write the best model to OUTPUT.safetensors, the last epoch to "
        "OUTPUT.last.safetensors (resume with --resume). Prints one line per epoch; Ctrl-C "
        "stops after the current step and keeps the best model.",
        epilog="example: napari-res101unet train --images glas/train/images "
        "--masks glas/train/masks -o glas --epochs 20 --encoder-weights imagenet",
    )
    add_folders(p, "training")
    p.add_argument("-o", "--output", required=True, type=Path, help="model file to write")
    p.add_argument("--val-images", type=Path, help="validation images (else held out)")
    p.add_argument("--val-masks", type=Path, help="validation masks")
    p.add_argument(
        "-m", "--model", help="start from this model (file or name; default: a new model)"
    )
    p.add_argument("--encoder-weights", help="for a new model: imagenet or a ResNet-101 file")
    p.add_argument("--resume", type=Path, help="continue from OUTPUT.last.safetensors")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the model files of an earlier run at OUTPUT (refused otherwise)",
    )
    add_settings(p, TrainSettings, SETTINGS)
    add_pixel_size(p, "of the training images (PNG/JPEG give none); default: from the files")
    p.add_argument(
        "--from-disk",
        action="store_true",
        help="leave the data on disk: read NIfTI/TIFF/zarr slices lazily through a bounded "
        "cache (for training sets larger than memory; see README)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes to start on this machine, one per GPU (CPU: Gloo, any number); "
        "under torchrun leave it at 1 (1)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.folders import read_pairs
    from ..training.run import TrainRun, check_output, fit

    settings = settings_from(args, TrainSettings, SETTINGS)
    check_output(args.output, args.resume, args.overwrite)  # before reading any data
    pixel_spacing(args.pixel_size, [])  # a bad --pixel-size fails here too
    if (args.val_images is None) != (args.val_masks is None):
        raise ValueError("give both --val-images and --val-masks, or neither")
    if getattr(args, "nproc", 1) > 1:
        from .train_ddp import launch_ranks

        return launch_ranks(args, run)
    spacings: list = []
    if getattr(args, "from_disk", False):  # left on disk: the files' spacing is not read
        from ..training.lazy_pairs import folder_pairs

        pairs, names = folder_pairs(args.images, args.masks, binary=args.binary)
    else:
        pairs, names = read_pairs(args.images, args.masks, binary=args.binary, spacings=spacings)
    spacing = pixel_spacing(args.pixel_size, spacings)
    read = _reader(args)
    val_pairs = None
    if args.val_images is not None:
        val_pairs, _ = read(args.val_images, args.val_masks, binary=args.binary)
    with graceful_interrupt() as stop, StepBar(None, None, line=_epoch_line) as bar:
        job = TrainRun(
            pairs, val_pairs, names, start_model(args.model), args.encoder_weights,
            spacing=spacing, output=args.output, overwrite=args.overwrite,
            resume=args.resume, device=args.device, callback=_reported(bar), should_stop=stop,
        )  # fmt: skip
        model = fit(job, settings)
    record = model.spec.training
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    print(
        f"stopped: {record['stopped']}; best epoch {record['best_epoch']} "
        f"(val IoU {fmt(record['best_val_iou'])})"
    )
    return 0


def _reader(args: argparse.Namespace):
    if getattr(args, "from_disk", False):
        from ..training.lazy_pairs import folder_pairs

        return folder_pairs
    from ..io.folders import read_pairs

    return read_pairs


def _epoch_line(event) -> str:
    return (
        f"epoch {event.epoch}/{event.epochs}  loss {event.train_loss:.4f}  "
        f"val IoU {fmt(event.val_iou)}  Dice {fmt(event.val_dice)}  "
        f"lr {event.lr:.2e}  {event.seconds:.1f} s"
    )


def _reported(bar: StepBar):
    """``train``'s callback: the bar's steps and epoch lines, then the model's path."""

    def show(event) -> None:
        if event.kind == "done":
            bar.bar.close()
            saved = event.path is not None
            print(f"best model: {event.path}" if saved else NO_MODEL, flush=True)
        else:
            bar.event(event)

    return show


NO_MODEL = "no epoch was completed: no model was saved"
