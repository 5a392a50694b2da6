"""``napari-res101unet evaluate``: score a model on image and mask folders, or score label
files made by any tool against ground-truth masks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import SegmentSettings
from .common import add_settings, load_cli_model, settings_from

SETTINGS = ("tile_size", "tta")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on image and mask folders, or any tool's label files",
        description="Either segment each image with a model (-m MODEL --images DIR) or "
        "take the label files of --predictions DIR (written by this plugin, Cellpose, "
        "StarDist, QuPath...), and compare them with the masks of --masks DIR, matched by "
        "file name. A model is scored by IoU, Dice and accuracy; --objects adds the GlaS "
        "object F1, object Dice and object Hausdorff (pooled over the set) and the IoU "
        "matching at 0.5:0.95; --surface adds Dice, HD95 and ASSD in mm per case. "
        "Binary masks become objects by 8-connected components. --json writes everything.",
        epilog="examples: napari-res101unet evaluate -m glas.safetensors "
        "--images glas/testA/images --masks glas/testA/masks --objects --json scores.json\n"
        "  napari-res101unet evaluate --predictions stardist_out --masks truth --objects",
    )
    p.add_argument("-m", "--model", help="model file or name in the model folder")
    p.add_argument("--images", type=Path, help="folder of test images (with -m)")
    p.add_argument(
        "--predictions",
        type=Path,
        help="folder of label files to score instead of a model (instance maps or masks; "
        "<stem>, <stem>_labels, <stem>_cp_masks... paired with the masks by name)",
    )
    p.add_argument(
        "--masks",
        required=True,
        type=Path,
        help="folder of ground-truth label images, paired by file name (<stem> or "
        "<stem>_mask...). 0/255 masks become 0/1, JPEG masks are > 127",
    )
    p.add_argument("--binary", action="store_true", help="treat every mask as mask > 0 (-m)")
    p.add_argument("--objects", action="store_true", help="object F1/Dice/Hausdorff + matching")
    p.add_argument("--surface", action="store_true", help="Dice, HD95, ASSD in mm per case")
    p.add_argument("--ignore-index", type=int, default=None, help="label of unlabelled pixels")
    p.add_argument("--json", type=Path, help="write the scores to this JSON file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (-m)")
    add_settings(p, SegmentSettings, SETTINGS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.predictions is not None:
        if args.model is not None or args.images is not None:
            raise ValueError("--predictions scores label files: give it without -m/--images")
        result = _score_files(args)
    elif args.model is None or args.images is None:
        raise ValueError("give -m MODEL --images DIR (segment and score) or --predictions DIR")
    else:
        result = _score_model(args)
    if args.json is not None:
        from ..io.files import atomic_target

        with atomic_target(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
        print(f"scores written to {args.json}")
    return 0


def _score_model(args: argparse.Namespace) -> dict:
    from ..evaluation.score_model import evaluate
    from ..io.folders import read_pairs

    settings = settings_from(args, SegmentSettings, (*SETTINGS, "device"))
    spacings: list = []
    pairs, names = read_pairs(
        args.images, args.masks, binary=args.binary, mask_spacings_mm=spacings
    )
    model = load_cli_model(args.model, settings.device)
    options = {k: getattr(settings, k) for k in SETTINGS}
    result = evaluate(
        model,
        pairs,
        device=settings.device,
        ignore_index=args.ignore_index,
        objects=args.objects,
        surface=args.surface,
        spacings=spacings,
        **options,
    )
    for entry, name in zip(result["per_image"], names):
        entry["name"] = name
    print_table(result)
    print_extra(result)
    result["model"] = str(getattr(model, "checkpoint_path", args.model))
    return result


def _score_files(args: argparse.Namespace) -> dict:
    from ..evaluation.files import score_files

    objects = args.objects or not args.surface  # objects by default
    result = score_files(args.predictions, args.masks, objects=objects, surface=args.surface)
    for entry in result["per_image"]:
        entry["name"] = entry["prediction"]
    print_objects_table(result)
    print_extra(result)
    return result


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


def print_objects_table(result: dict) -> None:
    """Per-image object counts and GlaS scores (files mode)."""
    if "object_f1" not in result:
        return
    width = max([len("pooled")] + [len(e["name"]) for e in result["per_image"]])
    print(f"{'image':<{width}}  {'pred':>6}  {'true':>6}  {'obj F1':>7}  {'obj Dice':>8}  "
          f"{'obj Hausdorff':>13}")  # fmt: skip
    for e in [*result["per_image"], {**result, "name": "pooled"}]:
        print(
            f"{e['name']:<{width}}  {e['n_pred']:6d}  {e['n_true']:6d}  {e['object_f1']:7.4f}  "
            f"{e['object_dice']:8.4f}  {e['object_hausdorff']:13.3f}"
        )


def print_extra(result: dict) -> None:
    """The pooled object scores, matching at IoU 0.5 and the surface means."""
    if "object_f1" in result:
        sources = result["objects_from"]
        print(
            f"objects (GlaS, pooled over {result['n_images']} images): F1 "
            f"{result['object_f1']:.4f}  Dice {result['object_dice']:.4f}  Hausdorff "
            f"{result['object_hausdorff']:.2f} px; predictions: {sources['prediction']}, "
            f"masks: {sources['truth']}"
        )
        for m in result["matching"]:
            if m["thresh"] in (0.5, 0.75, 0.9):
                print(
                    f"  IoU >= {m['thresh']:.2f}: precision {m['precision']:.4f}  recall "
                    f"{m['recall']:.4f}  F1 {m['f1']:.4f}  PQ {m['panoptic_quality']:.4f}"
                )
    if "hd95_mm" in result:
        unit = result["spacing_unit"]
        print(
            f"surface (mean of {len(result['per_case'])} cases): HD95 {result['hd95_mm']:.3f} "
            f"{unit}  ASSD {result['assd_mm']:.3f} {unit}"
        )
