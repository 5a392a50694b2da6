"""The inputs of a cohort: files, folders, globs and lists of paths, and part ``K/N``.

No torch on import. A folder is one DICOM series when it holds DICOM files, otherwise it
stands for its readable image files (``io.READABLE``; with ``recursive``, those of its
subfolders too, and subfolders holding DICOM are series). A glob (``*``, ``?``, ``[``;
``**`` crosses folders) is expanded here, so quote it. ``@list.txt`` (or ``--from-list``)
is a text file of paths, one a line, ``#`` starting a comment; relative paths in it are
relative to the list's folder. Files in folders and globs that are outputs of an earlier
run (they have a provenance sidecar) are left out. The result is sorted and without
duplicates, so that ``--part K/N`` splits the same list the same way in every job.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

GLOB_CHARS = ("*", "?", "[")


def expand_inputs(
    items: Iterable[str], *, recursive: bool = False, lists: Iterable[str | os.PathLike] = ()
) -> list[Path]:
    """The input paths ``items`` and the list files ``lists`` stand for, sorted.

    A listed file that does not exist is kept (the run reports it as failed and goes
    on); a folder, glob or list that gives no image is an error.

    Raises
    ------
    ValueError
        For a folder without images, a glob matching nothing, or an empty or missing list.
    """
    found: list[Path] = []
    for item in items:
        item = str(item)
        if item.startswith("@") and len(item) > 1:
            found += read_list(item[1:], recursive=recursive)
        else:
            found += _expand(item, recursive)
    for listed in lists:
        found += read_list(listed, recursive=recursive)
    unique = {os.path.normpath(p): Path(os.path.normpath(p)) for p in found}
    return [unique[k] for k in sorted(unique)]


def read_list(path: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """The inputs named in a text file (one a line; ``#`` comments; blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the list of inputs {path}: {exc.strerror}") from None
    found: list[Path] = []
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            where = Path(entry).expanduser()
            found += _expand(str(where if where.is_absolute() else path.parent / where), recursive)
    if not found:
        raise ValueError(f"the list of inputs {path} names no file")
    return found


def _expand(item: str, recursive: bool) -> list[Path]:
    path = Path(item).expanduser()
    if path.is_dir():
        return folder_inputs(path, recursive=recursive)
    if not path.exists() and any(c in item for c in GLOB_CHARS):
        matches = sorted(glob.glob(str(path), recursive=True))
        if not matches:
            raise ValueError(f"no file matches {item!r}")
        found: list[Path] = []
        for match in matches:
            found += _expand_match(Path(match), recursive)
        if not found:
            raise ValueError(f"{item!r} matches no readable image ({_readable()})")
        return found
    return [path]  # a file, or a missing one (reported when its turn comes)


def _expand_match(path: Path, recursive: bool) -> list[Path]:
    from . import READABLE, suffix
    from ._formats import is_dicom_file, is_dicom_folder

    if path.is_dir():
        if is_dicom_folder(path):
            return [path]
        return folder_inputs(path, recursive=True) if recursive else []
    ok = suffix(path) in READABLE or is_dicom_file(path)
    return [path] if ok and not path.name.startswith(".") and not _an_output(path) else []


def _an_output(path: Path) -> bool:
    """Whether ``path`` was written by ``segment`` (it has a provenance sidecar): the
    outputs of an earlier run in the same folder are not inputs."""
    from .provenance import read_sidecar, sidecar_path

    return sidecar_path(path).is_file() and read_sidecar(path) is not None


def folder_inputs(folder: Path, *, recursive: bool = False) -> list[Path]:
    """``[folder]`` for a DICOM series, else its readable images (and, with
    ``recursive``, those below it, DICOM subfolders as series), sorted.

    Raises
    ------
    ValueError
        When nothing readable is found (saying whether ``--recursive`` would help).
    """
    from ._formats import is_dicom_folder

    if is_dicom_folder(folder):
        return [folder]
    found, subfolders = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            subfolders.append(path)
            if recursive:
                found += _in_subfolder(path)
        else:
            found += _expand_match(path, False)
    if not found:
        more = subfolders and not recursive
        hint = "; pass --recursive to look in its subfolders" if more else ""
        raise ValueError(f"{folder} holds no readable image ({_readable()}){hint}")
    return found


def _in_subfolder(path: Path) -> list[Path]:
    try:
        return folder_inputs(path, recursive=True)
    except ValueError:
        return []  # an empty subfolder of a cohort is not an error


def _readable() -> str:
    from . import READABLE

    return ", ".join(READABLE) + ", DICOM folders"


def parse_part(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` -> ``(K, N)`` with 1 <= K <= N (None for None).

    Raises
    ------
    ValueError
        For anything else, saying what is allowed.
    """
    if text is None:
        return None
    pieces = str(text).split("/")
    try:
        k, n = (int(p) for p in pieces) if len(pieces) == 2 else (0, 0)
    except ValueError:
        k, n = 0, 0
    if n < 1 or not 1 <= k <= n:
        raise ValueError(
            f"--part must be K/N with whole numbers 1 <= K <= N (part K of N, e.g. 1/4), "
            f"got {text!r}"
        )
    return k, n


def select_part(items: list, part: tuple[int, int] | None) -> list:
    """Part ``K`` of ``N`` of a sorted list: every N-th item from the K-th (1-based), so
    the parts are disjoint, together hold every item once, and differ in size by <= 1."""
    if part is None:
        return list(items)
    k, n = part
    return list(items[k - 1 :: n])


def large_inputs(inputs: list[str]) -> list[Path]:
    """The inputs segmented block by block (zarr stores, big TIFFs); all or none.

    Raises
    ------
    ValueError
        When large and ordinary inputs are mixed.
    """
    from .large import is_large_source

    paths = [Path(p) for p in inputs]
    large = [p for p in paths if is_large_source(p)]
    if large and len(large) != len(paths):
        raise ValueError(
            f"{', '.join(p.name for p in large)} are large images (zarr or big TIFF), "
            "segmented block by block: segment them in a command of their own"
        )
    return large
