"""``napari-res101unet segment INPUT... -m MODEL -o OUT``: label files with the geometry."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..config import SegmentSettings
from .common import add_settings, load_cli_model, progress_printer, settings_from
from .spacing import add_pixel_size, file_spacing, pixel_spacing

SETTINGS = ("device", "tile_size", "overlap", "batch_size", "tta", "threshold")
DICOM_SEG = "dicom-seg"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="segment image files into label files",
        description="Segment each INPUT (NIfTI, DICOM folder, NRRD, MHA, TIFF, PNG/JPEG/BMP) "
        "and write <name>_labels into OUT, keeping the voxel spacing. Inputs from several "
        "folders keep their folders relative to the inputs' common folder (a/imaging.nii.gz "
        "and b/imaging.nii.gz become OUT/a/imaging_labels.nii.gz and "
        "OUT/b/imaging_labels.nii.gz). Every output is checked before any work: two inputs "
        "with the same output, or an existing file, stop the command with the list.",
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
    add_settings(p, SegmentSettings, SETTINGS)
    add_pixel_size(p, "of the inputs, for files that give none (PNG/JPEG) or to override theirs")
    p.add_argument("--axis", type=int, default=0, help="slice axis of 3D volumes")
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="also write the probability map (<name>_probabilities.tif)",
    )
    p.add_argument(
        "--format",
        default=None,
        help="output suffix, e.g. .nii.gz, .tif, .png (default: like the input), or "
        f"'{DICOM_SEG}' for a DICOM Segmentation of a DICOM input (<name>_seg.dcm)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (never an input, nor another input's output)",
    )
    p.set_defaults(func=run)


def output_path(folder: Path, source: Path, tag: str, fmt: str | None) -> Path:
    """``folder/<source stem>_<tag><ext>``: the input's format unless ``fmt`` is given;
    DICOM becomes NIfTI and JPEG becomes PNG (labels are never stored lossily)."""
    from ..io import suffix

    ext = "" if source.is_dir() else suffix(source)
    stem = source.name[: len(source.name) - len(ext)]
    if fmt:
        ext = fmt if fmt.startswith(".") else f".{fmt}"
    elif ext in ("", ".dcm"):
        ext = ".nii.gz"
    elif ext in (".jpg", ".jpeg"):
        ext = ".png"
    return folder / f"{stem}_{tag}{ext}"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..inference.segment import run_segmentation
    from ..io import read_image, write_labels

    settings = settings_from(args, SegmentSettings, SETTINGS)
    pixel_spacing(args.pixel_size, [])  # a bad --pixel-size fails before any work
    if args.format == DICOM_SEG:
        _check_dicom_inputs(args.inputs)
    plans = plan_outputs(
        [Path(p) for p in args.inputs],
        args.output,
        args.format,
        probabilities=args.probabilities,
        overwrite=args.overwrite,
    )
    model = load_cli_model(args.model, settings.device)
    for source, target, probs_target in plans:
        image = read_image(source, labels=False)  # an input is an image, whatever its name
        started = time.perf_counter()
        result = run_segmentation(
            image.data,
            model,
            axis=args.axis,
            return_probabilities=args.probabilities,
            channel_axis=-1 if image.rgb else None,
            progress=progress_printer(source.name),
            spacing=file_spacing(image),
            pixel_size=args.pixel_size,
            **settings.as_dict(),
        )
        geometry = {
            "spacing": image.spacing,
            "origin": image.origin,
            "direction": image.direction,
            "unit": image.metadata.get("unit"),
            "nifti": image.metadata.get("nifti"),
        }
        if args.format == DICOM_SEG:
            _write_dicom_seg(target, source, result.labels, model)
        else:
            write_labels(target, result.labels, **geometry)
        if result.probabilities is not None and probs_target is not None:
            _write_probabilities(probs_target, result, geometry)
        values, counts = np.unique(result.labels, return_counts=True)
        pixels = {int(k): int(v) for k, v in zip(values, counts)}
        print(
            f"{source} -> {target}  ({time.perf_counter() - started:.1f} s; "
            f"{result.summary()}; label pixels {pixels})"
        )
    return 0


def plan_outputs(
    sources: list[Path],
    folder: Path,
    fmt: str | None,
    *,
    probabilities: bool = False,
    overwrite: bool = False,
) -> list[tuple[Path, Path, Path | None]]:
    """``(input, labels file, probabilities file or None)`` per input, all checked first.

    An input's output goes to ``folder`` / (its folder relative to the common folder of
    all inputs) / ``<stem>_labels<ext>``: one input, or inputs of one folder, write flat
    into ``folder``.

    Raises
    ------
    FileNotFoundError
        For a missing input.
    ValueError
        Listing (also on stderr, one line each) every output that two inputs would share,
        that is an input, or that exists (unless ``overwrite``).
    """
    for source in sources:
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist")
    base = Path(os.path.commonpath([str(s.resolve().parent) for s in sources]))
    plans, owners = [], {}
    for source in sources:
        where = folder / source.resolve().parent.relative_to(base)
        if fmt == DICOM_SEG:
            labels = output_path(where, source, "seg", ".dcm")
        else:
            labels = output_path(where, source, "labels", fmt)
        probs = output_path(where, source, "probabilities", ".tif") if probabilities else None
        plans.append((source, labels, probs))
        for target in filter(None, (labels, probs)):
            owners.setdefault(target.resolve(), []).append(source)
    problems = _conflicts(owners, {s.resolve() for s in sources}, overwrite)
    if problems:
        print("refusing to write (nothing was written):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        hint = "" if overwrite else "; pass --overwrite to replace existing files"
        raise ValueError(
            f"{len(problems)} output(s) would collide or overwrite (listed above){hint}; "
            "inputs sharing an output go to separate -o folders"
        )
    return plans


def _conflicts(owners: dict[Path, list[Path]], inputs: set[Path], overwrite: bool) -> list[str]:
    problems = []
    for target, sources in owners.items():
        names = " and ".join(str(s) for s in sources)
        if len(sources) > 1:
            problems.append(f"{target}: the output of both {names}")
        elif target in inputs:
            problems.append(f"{target}: the output of {names} is an input")
        elif target.exists() and not overwrite:
            problems.append(f"{target}: the output of {names} already exists")
    return problems


def _write_probabilities(path: Path, result, geometry: dict) -> None:
    """Binary: the foreground map with the image's geometry; multi-class: classes last."""
    import numpy as np

    from ..io import write_image

    probs = result.probabilities
    if probs.ndim == result.labels.ndim:
        write_image(path, probs, **geometry)
    else:
        write_image(path, np.moveaxis(probs, 0, -1), unit=geometry["unit"])


def _check_dicom_inputs(inputs: list[str]) -> None:
    """Refuse non-DICOM inputs before any work (a SEG references its source series)."""
    from ..io._dicom_seg import source_series

    for source in inputs:
        source_series(source)


def _write_dicom_seg(target: Path, source: Path, labels, model) -> Path:
    """The labels as a DICOM SEG referencing ``source`` (its output was checked already)."""
    from ..io._dicom_seg import algorithm_identity, write_dicom_seg

    name, version = algorithm_identity(model)
    return write_dicom_seg(
        target, labels, source, class_names=model.spec.class_names, algorithm_name=name,
        algorithm_version=version, overwrite=True,
    )  # fmt: skip
