"""``napari-res101unet export MODEL --format {bioimageio,onnx,torchscript} -o PATH``."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("bioimageio", "onnx", "torchscript")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as a bioimage.io package, ONNX or TorchScript",
        description="Export MODEL for other tools. ONNX and TorchScript take the normalised "
        "(B, C, Y, X) float32 input (Y, X multiples of 32) and output class probabilities; "
        "a bioimage.io package (a folder, or a .zip) takes raw intensities and describes "
        "the checkpoint's normalisation, and holds pytorch_state_dict, torchscript and "
        "onnx weights, a test input/output, a cover and a README.",
        epilog="example: napari-res101unet export liver --format bioimageio -o liver.zip",
    )
    p.add_argument("model", help="model file, bioimage.io package, or name in the model folder")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("-o", "--output", required=True, type=Path, help="file, folder or .zip")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--normalization",
        help="bioimageio: the input normalisation to describe when the model's is 'auto' "
        "(imagenet, window, percentile, minmax, none)",
    )
    p.add_argument(
        "--sample",
        type=Path,
        help="bioimageio: an image of the kind the model segments; the test input is cut "
        "from it (and 'auto' normalisation decided from it)",
    )
    p.add_argument(
        "--weights",
        nargs="+",
        choices=("pytorch_state_dict", "torchscript", "onnx"),
        help="bioimageio: weight formats (pytorch_state_dict is always written; default all)",
    )
    p.add_argument("--name", help="bioimageio: the package's name (default: the model's)")
    p.add_argument("--author", action="append", help="bioimageio: an author (repeatable)")
    p.add_argument("--license", default="CC-BY-4.0", help="bioimageio: SPDX id (CC-BY-4.0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export_model
    from .common import load_cli_model

    options = _options(args)
    model = load_cli_model(args.model, "cpu")
    path = export_model(model, args.output, args.format, overwrite=args.overwrite, **options)
    print(f"{args.model} -> {path} ({args.format})")
    return 0


def _options(args: argparse.Namespace) -> dict:
    bioimageio = {
        "normalization": args.normalization,
        "sample": _sample(args.sample) if args.sample else None,
        "weights": ["pytorch_state_dict", *(args.weights or ("torchscript", "onnx"))],
        "name": args.name,
        "authors": args.author,
        "license": args.license,
    }
    given = [k for k in ("normalization", "sample", "weights", "name", "author")
             if getattr(args, k)]  # fmt: skip
    if args.format != "bioimageio":
        if given:
            raise ValueError(f"--{given[0]} applies to --format bioimageio only")
        return {}
    return {k: v for k, v in bioimageio.items() if v is not None}


def _sample(path: Path):
    """A 2D image from ``path`` (the middle slice of a volume)."""
    from ..io import read_image

    image = read_image(path, labels=False)
    data = image.data
    if image.spatial_ndim == 3:
        data = data[data.shape[0] // 2]
    return data
