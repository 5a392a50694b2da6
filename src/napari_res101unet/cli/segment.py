"""``napari-res101unet segment INPUT... -m MODEL -o OUT``: label files with the geometry."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..config import SegmentSettings
from .blockwise import add_blockwise_options, maybe_run_blockwise
from .cohort_file import DICOM_SEG
from .common import add_settings, settings_from
from .inputs import add_cohort_options
from .spacing import add_pixel_size, pixel_spacing

SETTINGS = ("device", "tile_size", "overlap", "batch_size", "tta", "threshold")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "segment",
        help="segment image files into label files",
        description="Segment each INPUT (NIfTI, DICOM folder, NRRD, MHA, TIFF, PNG/JPEG/BMP) "
        "and write <name>_labels into OUT, keeping the voxel spacing. Inputs from several "
        "folders keep their folders relative to the inputs' common folder (a/imaging.nii.gz "
        "and b/imaging.nii.gz become OUT/a/imaging_labels.nii.gz and "
        "OUT/b/imaging_labels.nii.gz). Every output is checked before any work: two inputs "
        "with the same output, or an existing file, stop the command with the list. A file "
        "that fails is reported and skipped; a summary ends the run (exit 1 if any failed). "
        "Every output gets a provenance sidecar <output>.json.",
        epilog="example: napari-res101unet segment scan.nii.gz -m liver -o out/ ; a cohort: "
        "napari-res101unet segment slides/ --recursive -m glas -o out/ --skip-existing "
        "--part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files, folders (a DICOM series, or the images in it), quoted globs "
        "('scans/*.nii.gz', '**' crosses folders) or @list.txt (paths, one a line, # comments)",
    )
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
    add_cohort_options(p)
    add_blockwise_options(p)
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
    from .cohort import run_cohort

    settings = settings_from(args, SegmentSettings, SETTINGS)
    pixel_spacing(args.pixel_size, [])  # a bad --pixel-size fails before any work
    if (code := maybe_run_blockwise(args, settings)) is not None:
        return code  # large zarr / TIFF images: block by block (cli/blockwise.py)
    return run_cohort(args, settings, plan_outputs)


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
