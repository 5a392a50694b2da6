"""``napari-res101unet segment INPUT... -m MODEL -o OUT``: label files with the geometry.

Argument parsing and terminal output only: the work is
:func:`~napari_res101unet.inference.cohort.segment_files`, which Python and napari users
call the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import (
    DICOM_SEG,
    BlockwiseSettings,
    ClusterSettings,
    CohortSettings,
    SegmentSettings,
)
from .common import add_pixel_size, add_settings, pixel_spacing, settings_from
from .progress import FileBar

SETTINGS = (
    "device",
    "tile_size",
    "overlap",
    "batch_size",
    "tta",
    "threshold",
    "blending",
    "mixed_precision",
    "instances",
    "instance_method",
    "per_slice",
    "min_object_size",
    "fill_holes",
)
CLUSTER = ("workers", "scheduler", "scheduler_timeout")


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
        "Every output gets a provenance sidecar <output>.json. Large zarr / OME-Zarr / TIFF "
        "images are segmented block by block into OME-Zarr (-o ending in .zarr names the "
        "store of a single input).",
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
    add_settings(p, CohortSettings, ("axis", "probabilities"))
    p.add_argument(
        "--format",
        default=CohortSettings.format,
        help="output suffix, e.g. .nii.gz, .tif, .png (default: like the input), or "
        f"'{DICOM_SEG}' for a DICOM Segmentation of a DICOM input (<name>_seg.dcm)",
    )
    add_settings(p, CohortSettings, ("overwrite",))
    p.add_argument(
        "--from-list",
        action="append",
        metavar="FILE",
        help="a text file of input paths, one a line (# comments); like @FILE; repeatable",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="also take images in subfolders")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="resume a run: skip inputs whose outputs exist with a matching provenance "
        "sidecar (same input, model and settings); redo the others (an output without its "
        "sidecar is unfinished and is replaced)",
    )
    p.add_argument(
        "--part",
        metavar="K/N",
        help="only part K of N (1-based) of the sorted inputs, for job arrays "
        "(SLURM: --part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT with --array=1-N)",
    )
    add_settings(p, ClusterSettings, CLUSTER, none="none")
    add_settings(p, BlockwiseSettings, ("block_size",))
    add_settings(p, CohortSettings, ("labels_name",), none="none")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.cohort import segment_files
    from ..io.outputs import OutputsRefused

    _check_flags(args)
    settings = settings_from(args, SegmentSettings, SETTINGS)
    pixel_spacing(args.pixel_size, [])  # a bad --pixel-size fails before any work
    cohort = CohortSettings(
        format=args.format, probabilities=args.probabilities, axis=args.axis,
        pixel_size=args.pixel_size, overwrite=args.overwrite,
        skip_existing=args.skip_existing, recursive=args.recursive, part=args.part,
        labels_name=args.labels_name,
    )  # fmt: skip
    cluster = settings_from(args, ClusterSettings, CLUSTER)
    blockwise = settings_from(args, BlockwiseSettings, ("block_size",))
    inputs = [*args.inputs, *(f"@{f}" for f in args.from_list or ())]
    with Terminal() as shown:
        try:
            result = segment_files(
                inputs, args.model, args.output, settings, cohort, cluster,
                blockwise=blockwise, progress=shown,
            )  # fmt: skip
        except OutputsRefused as exc:
            shown.refused(exc.problems)
            raise
    return summary(result)


def _check_flags(args: argparse.Namespace) -> None:
    """Options that exclude each other, and the numbers, in the options' own words."""
    if args.skip_existing and args.overwrite:
        raise ValueError("--skip-existing and --overwrite exclude each other: pick one")
    if args.workers is not None and args.scheduler is not None:
        raise ValueError("--workers and --scheduler exclude each other: pick one")
    if not args.inputs and not args.from_list:
        raise ValueError("no input: give files, folders, globs, @list.txt or --from-list")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")


class Terminal:
    """:class:`~napari_res101unet.inference.cohort.CohortProgress` on a terminal: a bar
    of files and tiles (stderr, when it is a terminal), one line per file."""

    def __init__(self) -> None:
        self.bar: FileBar | None = None

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__()

    def planned(self, files: int) -> None:
        self.bar = FileBar(files).__enter__()

    def started(self, source: str) -> None:
        if self.bar is not None:
            self.bar.start(Path(source).name)

    def tiles(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.tiles(done, total)

    def finished(self, status: dict[str, Any]) -> None:
        line, stream = describe(status)
        if self.bar is None:
            print(line, file=stream, flush=True)
            return
        self.bar.line(line, stream)
        self.bar.advance()

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def refused(self, problems: list[str]) -> None:
        print("refusing to write (nothing was written):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)


def describe(status: dict[str, Any]) -> tuple[str, Any]:
    """The line for one file's status and its stream (failures on stderr)."""
    if status["status"] == "done":
        if status.get("pixels"):
            detail = (
                f"{status['seconds']:.1f} s; {status['summary']}; label pixels {status['pixels']}"
            )
        else:
            detail = status["summary"]
        return f"{status['source']} -> {status['target']}  ({detail})", sys.stdout
    if status["status"] == "skipped":
        why = status.get("summary") or "its outputs are complete"
        return f"{status['source']}: skipped, {why}", sys.stdout
    return f"failed: {status['source']}: {status['reason']}", sys.stderr


def summary(result: Any) -> int:
    """Print ``done D, skipped S, failed F of N files in T s``; 1 when any failed."""
    if result.note:
        print(result.note)
        return 0
    done, seconds, total = result.count("done"), result.seconds, len(result.statuses)
    rate = f", {done / seconds:.2f} files/s" if done and seconds > 0 else ""
    print(
        f"done {done}, skipped {result.count('skipped')}, failed {len(result.failed)} of "
        f"{total} file(s) in {seconds:.1f} s{rate}",
        flush=True,
    )
    if not result.failed:
        return 0
    print(
        f"error: {len(result.failed)} of {total} file(s) failed (listed above); the first: "
        f"{result.failed[0]['reason']}",
        file=sys.stderr,
    )
    return 1
