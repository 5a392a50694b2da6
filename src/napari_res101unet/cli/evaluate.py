"""``napari-res101unet evaluate``: score a model on image and mask folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import SegmentSettings
from .common import add_settings, load_cli_model, settings_from
from .train import add_folders

SETTINGS = ("tile_size", "tta")


def add_parser(sub) -> None:
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
    add_folders(p, "test")
    p.add_argument("--ignore-index", type=int, default=None, help="label of unlabelled pixels")
    p.add_argument("--json", type=Path, help="write the scores to this JSON file")
    add_settings(p, SegmentSettings, SETTINGS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.score_model import evaluate
    from ..io.files import atomic_target
    from ..io.folders import read_pairs

    settings = settings_from(args, SegmentSettings, (*SETTINGS, "device"))
    pairs, names = read_pairs(args.images, args.masks, binary=args.binary)
    model = load_cli_model(args.model, settings.device)
    options = {k: getattr(settings, k) for k in SETTINGS}
    result = evaluate(
        model, pairs, device=settings.device, ignore_index=args.ignore_index, **options
    )
    for entry, name in zip(result["per_image"], names):
        entry["name"] = name
    print_table(result)
    if args.json is not None:
        result["model"] = str(getattr(model, "checkpoint_path", args.model))
        with atomic_target(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
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
