"""``train`` and ``evaluate`` subcommands: image and mask folders paired by file name."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from .config import TRAIN_DEFAULTS

D = TRAIN_DEFAULTS
READABLE = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz", ".nrrd", ".mha")
MASK_TAGS = ("", "_mask", "_masks", "_label", "_labels", "_seg", "_anno", "_gt")
"""Mask file stems accepted for an image ``<stem>``: ``<stem><tag>``."""


def add_commands(sub, commands) -> None:
    """Register the training subcommands on the ``napari-res101unet`` parser."""
    _add_train(sub)
    _add_evaluate(sub)
    commands["train"] = cmd_train
    commands["evaluate"] = cmd_evaluate


def _folders(p, what: str) -> None:
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
    p.add_argument("--ignore-index", type=int, default=None, help="label of unlabelled pixels")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def _add_train(sub) -> None:
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
    _folders(p, "training")
    p.add_argument("-o", "--output", required=True, type=Path, help="model file to write")
    p.add_argument("--val-images", type=Path, help="validation images (else held out)")
    p.add_argument("--val-masks", type=Path, help="validation masks")
    p.add_argument(
        "-m", "--model", help="start from this model (file or name; default: a new model)"
    )
    p.add_argument("--encoder-weights", help="for a new model: imagenet or a ResNet-101 file")
    p.add_argument("--classes", type=int, help="classes incl. background (default: labels)")
    p.add_argument("--resume", type=Path, help="continue from OUTPUT.last.safetensors")
    for name, kind, text in (
        ("epochs", int, "epochs"),
        ("patch-size", int, "patch side (multiple of 32)"),
        ("batch-size", int, "patches per step"),
        (
            "learning-rate",
            float,
            "peak learning rate of the decoder; auto: 1e-3 from random "
            "weights, 3e-4 when fine-tuning",
        ),
        ("encoder-learning-rate-factor", float, "encoder lr = learning rate x this"),
        ("freeze-encoder-epochs", int, "epochs with a frozen (pretrained) encoder"),
        ("weight-decay", float, "AdamW weight decay"),
        ("val-fraction", float, "share held out for validation when no --val-images"),
        ("foreground-fraction", float, "share of patches centred on an object"),
        ("steps-per-epoch", int, "steps per epoch (default: one pass over the pixels)"),
        ("early-stopping", int, "stop after N epochs without better val IoU (0: never)"),
        ("max-minutes", float, "wall-clock budget in minutes"),
        ("seed", int, "random seed"),
    ):
        key = name.replace("-", "_")
        shown = D[key] if D[key] is not None else "no limit" if key == "max_minutes" else "auto"
        p.add_argument(f"--{name}", type=kind, default=D[key], help=f"{text} ({shown})")
    p.add_argument("--no-augment", action="store_true", help="no flips/rotations/jitter")
    p.add_argument("--no-mixed-precision", action="store_true", help="float32 on CUDA too")


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on image and mask folders (IoU, Dice, accuracy)",
        description="Segment each image and compare it with its mask (matched by file "
        "name). Prints a table per image plus the scores over all pixels and the mean "
        "per image; --json writes everything.",
        epilog="example: napari-res101unet evaluate -m glas.safetensors "
        "--images glas/testA/images --masks glas/testA/masks --json scores.json",
    )
    p.add_argument("-m", "--model", required=True, help="model file or name in the model folder")
    _folders(p, "test")
    p.add_argument("--json", type=Path, help="write the scores to this JSON file")
    p.add_argument("--tile-size", type=int, default=None, help="tile side (default: planned)")
    p.add_argument("--tta", action="store_true", help="average over flips (4x slower)")


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    pairs, _ = read_pairs(args.images, args.masks, binary=args.binary)
    val_pairs = None
    if (args.val_images is None) != (args.val_masks is None):
        raise ValueError("give both --val-images and --val-masks, or neither")
    if args.val_images is not None:
        val_pairs, _ = read_pairs(args.val_images, args.val_masks, binary=args.binary)
    keys = [k for k in D if k not in ("augment", "mixed_precision", "ignore_index")]
    options = {k: getattr(args, k) for k in keys}
    with _graceful_interrupt() as stop:
        model = train(
            pairs,
            val_pairs=val_pairs,
            model=_start(args.model),
            classes=args.classes,
            encoder_weights=args.encoder_weights,
            ignore_index=args.ignore_index,
            augment=not args.no_augment,
            mixed_precision=not args.no_mixed_precision,
            output=args.output,
            resume=args.resume,
            device=args.device,
            callback=_printer(),
            should_stop=stop,
            **options,
        )
    record = model.spec.training
    print(
        f"stopped: {record['stopped']}; best epoch {record['best_epoch']} "
        f"(val IoU {_fmt(record['best_val_iou'])})"
    )
    return 0


def _start(name: str | None):
    """The model ``-m`` names: a path or a name in the model folder (None: a new model)."""
    from .registry import UNTRAINED, find_model

    found = None if name is None else find_model(name)
    return None if found == UNTRAINED else found


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _printer():
    tty = sys.stderr.isatty()

    def show(event) -> None:
        if event.kind == "step" and tty:
            line = f"\rstep {event.step}/{event.steps_total}  loss {event.loss:.4f}"
            print(line, end="", file=sys.stderr, flush=True)
        elif event.kind == "epoch":
            if tty:
                print("\r", end="", file=sys.stderr)
            print(
                f"epoch {event.epoch}/{event.epochs}  loss {event.train_loss:.4f}  "
                f"val IoU {_fmt(event.val_iou)}  Dice {_fmt(event.val_dice)}  "
                f"lr {event.lr:.2e}  {event.seconds:.1f} s",
                flush=True,
            )
        elif event.kind == "done":
            print(f"best model: {event.path}", flush=True)

    return show


@contextmanager
def _graceful_interrupt():
    """First Ctrl-C asks training to stop (keeping the best model); a second one aborts."""
    asked = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        print("\nstopping after this step (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .cli import load_cli_model
    from .evaluation import evaluate

    pairs, names = read_pairs(args.images, args.masks, binary=args.binary)
    model = load_cli_model(args.model, args.device)
    options = {"tile_size": args.tile_size, "tta": args.tta}
    result = evaluate(model, pairs, device=args.device, ignore_index=args.ignore_index, **options)
    for entry, name in zip(result["per_image"], names):
        entry["name"] = name
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result["model"] = str(getattr(model, "checkpoint_path", args.model))
        args.json.write_text(json.dumps(result, indent=2))
        print(f"scores written to {args.json}")
    return 0


def print_table(result: dict) -> None:
    """Per-image scores, then the pooled and per-image-mean rows."""
    width = max([len("mean per image")] + [len(e["name"]) for e in result["per_image"]])
    print(f"{'image':<{width}}  {'IoU':>7}  {'Dice':>7}  {'accuracy':>8}")
    for e in result["per_image"]:
        print(f"{e['name']:<{width}}  {e['iou']:7.4f}  {e['dice']:7.4f}  {e['accuracy']:8.4f}")
    rows = (("all pixels", ""), ("mean per image", "mean_"))
    for label, prefix in rows:
        values = [result[prefix + k] for k in ("iou", "dice", "accuracy")]
        print(f"{label:<{width}}  {values[0]:7.4f}  {values[1]:7.4f}  {values[2]:8.4f}")
    if len(result["per_class"]) > 1:
        for c in result["per_class"]:
            print(f"  class {c['class']} {c['name']}: IoU {c['iou']:.4f}  Dice {c['dice']:.4f}")


def read_pairs(images: Path, masks: Path, *, binary: bool = False):
    """``([(image, labels)], names)`` for the image files of ``images`` and their masks."""
    from .io import read_image, suffix

    for folder in (images, masks):
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder")
    image_files = _files(images, suffix)
    if not image_files:
        raise ValueError(f"{images} holds no image files ({', '.join(READABLE)})")
    by_stem = {stem: path for stem, path in _files(masks, suffix)}
    pairs, names, missing = [], [], []
    for stem, path in image_files:
        mask = next((by_stem[stem + t] for t in MASK_TAGS if stem + t in by_stem), None)
        if mask is None:
            missing.append(path.name)
            continue
        pairs.append((read_image(path).data, read_mask(mask, binary=binary)))
        names.append(path.name)
    if missing:
        raise ValueError(
            f"{len(missing)} images have no mask in {masks} (e.g. {missing[0]}); masks are "
            f"matched by file name stem, optionally with {', '.join(MASK_TAGS[1:])}"
        )
    return pairs, names


def _files(folder: Path, suffix) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(folder.iterdir()):
        ext = suffix(path)
        if path.is_file() and not path.name.startswith(".") and ext in READABLE:
            found.append((path.name[: len(path.name) - len(ext)], path))
    return found


def read_mask(path: Path, *, binary: bool = False):
    """Labels of a mask file, normalised like the napari reader does: JPEG → ``> 127``,
    0/255 (or 0/65535) → 0/1, class indices kept; ``binary`` → ``> 0``. Colour masks use
    their first channel."""
    import numpy as np

    from .io import read_image, suffix
    from .io._content import as_labels

    image = read_image(path, labels=False)
    data = image.data[..., 0] if image.rgb else image.data
    labels = as_labels(data, jpeg=suffix(path) in (".jpg", ".jpeg"))
    if labels is None:
        raise ValueError(f"{path.name}: mask holds fractional values; use --binary")
    return (labels > 0).astype(np.uint8) if binary else labels
