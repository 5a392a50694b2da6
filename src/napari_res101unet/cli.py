"""Command line: ``napari-res101unet info | segment | train | evaluate``.

Errors print one line (``error: ...``) and exit non-zero; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .config import SEGMENT_DEFAULTS

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-res101unet",
        description="Segment medical and biomedical images with Res101_UNet and fine-tune it "
        "on a few labelled images, without a GUI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_info(sub)
    _add_segment(sub)
    from ._cli_demo import add_command
    from ._cli_train import add_commands

    add_commands(sub, _COMMANDS)
    add_command(sub, _COMMANDS)
    return parser


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="versions, devices found and the model folder",
        description="Print versions, the compute devices found, the model folder and its "
        "models; with MODEL, what that model file holds.",
    )
    p.add_argument("model", nargs="?", help="a model file or name to describe")
    _COMMANDS["info"] = cmd_info


def _add_segment(sub) -> None:
    d = SEGMENT_DEFAULTS
    p = sub.add_parser(
        "segment",
        help="segment image files into label files",
        description="Segment each INPUT (NIfTI, DICOM folder, NRRD, MHA, TIFF, PNG/JPEG/BMP) "
        "and write <name>_labels next to OUT, keeping the voxel spacing.",
        epilog="example: napari-res101unet segment scan.nii.gz -m liver -o out/",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or DICOM folders")
    p.add_argument(
        "-m",
        "--model",
        required=True,
        help="model file, a model name in the model folder, or 'untrained'",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--device", default=d["device"], help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--tile-size", type=int, default=None, help="tile side (default: planned)")
    p.add_argument("--overlap", type=float, default=d["overlap"], help="tile overlap fraction")
    p.add_argument(
        "--batch-size", type=int, default=None, help="tiles per batch (default: planned)"
    )
    p.add_argument("--tta", action="store_true", help="average over flips (4x slower)")
    p.add_argument(
        "--threshold",
        type=float,
        default=d["threshold"],
        help="foreground probability threshold for binary models",
    )
    p.add_argument("--axis", type=int, default=0, help="slice axis of 3D volumes")
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="also write the probability map (<name>_probabilities.tif)",
    )
    p.add_argument(
        "--format",
        default=None,
        help="output suffix, e.g. .nii.gz, .tif, .png (default: like the input)",
    )
    _COMMANDS["segment"] = cmd_segment


def cmd_info(args: argparse.Namespace) -> int:
    import platform

    import numpy
    import segmentation_models_pytorch as smp
    import torch

    from .config import models_dir
    from .device import available_devices, describe_device, resolve_device
    from .registry import find_model, list_models

    print(f"napari-res101unet {__version__}")
    print(
        f"python {platform.python_version()}, numpy {numpy.__version__}, torch "
        f"{torch.__version__} (CUDA {torch.version.cuda or 'none'}), smp {smp.__version__}"
    )
    print("devices:")
    for name in available_devices():
        print(f"  {describe_device(resolve_device(name))}")
    folder = models_dir()
    models = list_models(folder)
    print(f"model folder: {folder} ({len(models)} models)")
    for entry in models:
        print(
            f"  {entry.name}: classes {entry.classes}, {entry.in_channels} channels, "
            f"{entry.summary}"
        )
    if args.model:
        _print_model(find_model(args.model))
    return 0


def _print_model(path) -> None:
    import json

    from .checkpoint import read_header

    header = read_header(path)
    spec = dict(header["spec"])
    training = spec.pop("training", None) or {}
    print(f"model {path}:")
    print(json.dumps({"spec": spec, "provenance": header.get("provenance")}, indent=2))
    if training:
        print(f"training: {json.dumps({k: v for k, v in training.items() if k != 'history'})}")


def load_cli_model(name: str, device: str):
    """The model ``-m`` names (a path, a folder name, or ``untrained``)."""
    from .registry import UNTRAINED, find_model

    found = find_model(name)
    if found == UNTRAINED:
        from .model import build_model

        print(
            "warning: using an untrained (random) Res101_UNet; its labels are meaningless",
            file=sys.stderr,
        )
        return build_model()
    from .checkpoint import load_model

    return load_model(found, device=device)


def output_path(folder: Path, source: Path, tag: str, fmt: str | None) -> Path:
    """``folder/<source stem>_<tag><ext>``: the input's format unless ``fmt`` is given;
    DICOM becomes NIfTI and JPEG becomes PNG (labels are never stored lossily)."""
    from .io import suffix

    ext = "" if source.is_dir() else suffix(source)
    stem = source.name[: len(source.name) - len(ext)]
    if fmt:
        ext = fmt if fmt.startswith(".") else f".{fmt}"
    elif ext in ("", ".dcm"):
        ext = ".nii.gz"
    elif ext in (".jpg", ".jpeg"):
        ext = ".png"
    return folder / f"{stem}_{tag}{ext}"


def cmd_segment(args: argparse.Namespace) -> int:
    from .inference import run_segmentation
    from .io import read_image, write_labels

    model = load_cli_model(args.model, args.device)
    for source in map(Path, args.inputs):
        image = read_image(source, labels=False)  # an input is an image, whatever its name
        started = time.perf_counter()
        result = run_segmentation(
            image.data,
            model,
            tile_size=args.tile_size,
            overlap=args.overlap,
            batch_size=args.batch_size,
            device=args.device,
            tta=args.tta,
            threshold=args.threshold,
            axis=args.axis,
            return_probabilities=args.probabilities,
            channel_axis=-1 if image.rgb else None,
            progress=_progress_printer(source.name),
        )
        target = output_path(args.output, source, "labels", args.format)
        geometry = {
            "spacing": image.spacing,
            "origin": image.origin,
            "direction": image.direction,
            "unit": image.metadata.get("unit"),
        }
        write_labels(target, result.labels, **geometry)
        if result.probabilities is not None:
            _write_probabilities(
                output_path(args.output, source, "probabilities", ".tif"), result, geometry
            )
        counts = {int(k): int(v) for k, v in zip(*_unique(result.labels))}
        print(
            f"{source} -> {target}  ({time.perf_counter() - started:.1f} s; "
            f"{result.summary()}; label pixels {counts})"
        )
    return 0


def _write_probabilities(path: Path, result, geometry: dict) -> None:
    """Binary: the foreground map with the image's geometry; multi-class: classes last."""
    import numpy as np

    from .io import write_image

    probs = result.probabilities
    if probs.ndim == result.labels.ndim:
        write_image(path, probs, **geometry)
    else:
        write_image(path, np.moveaxis(probs, 0, -1), unit=geometry["unit"])


def _unique(labels):
    import numpy as np

    return np.unique(labels, return_counts=True)


def _progress_printer(name: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{name}: {done}/{total} tiles", end=end, file=sys.stderr, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as exc:
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
