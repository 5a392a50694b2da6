"""Where outputs go: ``<name>_labels<ext>`` beside mirrored folders, refused before any
work when two inputs would share one, one is an input, or one exists."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import DICOM_SEG
from ._formats import suffix


class OutputsRefused(ValueError):
    """Outputs that would collide, be an input, or replace a file: nothing was written.
    ``problems`` lists them, one line each."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


def output_path(folder: Path, source: Path, tag: str, fmt: str | None) -> Path:
    """``folder/<source stem>_<tag><ext>``: the input's format unless ``fmt`` is given;
    DICOM becomes NIfTI and JPEG becomes PNG (labels are never stored lossily)."""
    name = real_name(source)
    ext = "" if source.is_dir() else suffix(source)
    stem = name[: len(name) - len(ext)]
    if fmt:
        ext = fmt if fmt.startswith(".") else f".{fmt}"
    elif ext in ("", ".dcm"):
        ext = ".nii.gz"
    elif ext in (".jpg", ".jpeg"):
        ext = ".png"
    return folder / f"{stem}_{tag}{ext}"


def real_name(source: Path) -> str:
    """The name an output is called after: ``source``'s own, or for ``.``, ``..`` and
    ``dir/..`` the folder they stand for (``segment .`` inside a DICOM series folder
    names the output after that folder, not ``_labels``). Links are not resolved."""
    name = Path(os.path.abspath(source)).name
    if not name:
        raise ValueError(f"{source} has no name to call its output after; give its folder")
    return name


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
    OutputsRefused (a ValueError)
        Listing (``problems``, one line each) every output that two inputs would share,
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
        hint = "" if overwrite else "; pass --overwrite to replace existing files"
        raise OutputsRefused(
            f"{len(problems)} output(s) would collide or overwrite (listed above){hint}; "
            "inputs sharing an output go to separate -o folders",
            problems,
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


def target_for(source: Path, output: Path, count: int) -> Path:
    """``output`` when it names a ``.zarr`` store (one input), else
    ``output/<stem>_labels.zarr``."""
    if output.suffix == ".zarr":
        if count > 1:
            raise ValueError(f"{output} names one store but {count} inputs were given")
        return output
    stem = real_name(source)
    for ext in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif", ".svs"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    return output / f"{stem}_labels.zarr"
