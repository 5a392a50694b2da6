"""The inputs of a cohort: files, folders, globs and lists of paths, and part ``K/N``.

No torch on import. A folder is one DICOM series when it holds DICOM files, otherwise it
stands for its readable image files (``io.READABLE``; with ``recursive``, those of its
subfolders too, and subfolders holding DICOM are series). A glob (``*``, ``?``, ``[``;
``**`` crosses folders) is expanded here, so quote it. ``@list.txt`` (or ``--from-list``)
is a text file of paths, one a line, ``#`` starting a comment; relative paths in it are
relative to the list's folder. Files in folders and globs that are outputs of an earlier
run (they have a provenance sidecar) are left out. The result is sorted and without
duplicates, so that ``--part K/N`` splits the same list the same way in every job.

Walks follow symbolic links but enter each real folder once and list each real file once
(by ``(st_dev, st_ino)``), so a link back to a parent or to itself (a loop) neither repeats
images nor keeps the walk from ending; ``**`` in a glob is walked the same way.
"""

from __future__ import annotations

import fnmatch
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
        matches = _glob(path)
        if not matches:
            raise ValueError(f"no file matches {item!r}")
        found: list[Path] = []
        walk = _Walk()
        for match in sorted(matches, key=_through_a_link):  # a file's own path first
            found += _expand_match(match, recursive, walk)
        if not found:
            raise ValueError(f"{item!r} matches no readable image ({_readable()})")
        return found
    return [path]  # a file, or a missing one (reported when its turn comes)


def _through_a_link(path: Path) -> bool:
    return os.path.realpath(path) != os.path.abspath(path)


class _Walk:
    """What one walk has seen: real folders entered and real files listed."""

    def __init__(self) -> None:
        self.folders: set[tuple[int, int]] = set()
        self.files: set[tuple[int, int]] = set()
        self.links: list[Path] = []  # linked folders, walked after the real ones

    @staticmethod
    def key(path: Path) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None  # a broken link: listed, and reported when its turn comes
        return st.st_dev, st.st_ino

    def enter(self, folder: Path) -> bool:
        """Whether ``folder`` is new to this walk (then it is marked as entered)."""
        return _first(self.folders, self.key(folder))

    def new_file(self, path: Path) -> bool:
        return _first(self.files, self.key(path))


def _first(seen: set, key) -> bool:
    if key is None:
        return True
    if key in seen:
        return False
    seen.add(key)
    return True


def _glob(pattern: Path) -> list[Path]:
    """The paths a glob matches, sorted; ``**`` is walked entering each real folder once
    (Python's glob follows links into loops until the path is too long)."""
    if "**" not in str(pattern):
        return [Path(p) for p in sorted(glob.glob(str(pattern)))]
    parts = pattern.parts
    first = next(i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARS))
    root = Path(*parts[:first]) if first else Path(".")
    rest = parts[first:]
    found = [root.joinpath(*segs) for segs in _below(root, _Walk()) if _match(rest, segs)]
    return sorted(found)


def _below(root: Path, walk: _Walk):
    """Relative parts of every visible path below ``root``; each real folder is entered
    once, by its own path when it has one in the walk (linked folders come last)."""
    queue, links = [()], []
    while queue or links:
        above = queue.pop() if queue else links.pop(0)
        folder = root.joinpath(*above)
        if not walk.enter(folder):
            continue
        try:
            names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
        except OSError:
            continue
        for name in names:
            yield (*above, name)
            if (folder / name).is_dir():
                (links if (folder / name).is_symlink() else queue).append((*above, name))


def _match(parts: tuple[str, ...], segs: tuple[str, ...]) -> bool:
    """Whether path segments ``segs`` match glob parts (``**``: any number of folders)."""
    if not parts:
        return not segs
    if parts[0] == "**":
        return any(_match(parts[1:], segs[i:]) for i in range(len(segs) + 1))
    return bool(segs) and fnmatch.fnmatchcase(segs[0], parts[0]) and _match(parts[1:], segs[1:])


def _expand_match(path: Path, recursive: bool, walk: _Walk) -> list[Path]:
    from . import READABLE, suffix
    from ._formats import is_dicom_file, is_dicom_folder

    if path.is_dir():
        if is_dicom_folder(path):
            return [path] if walk.new_file(path) else []
        return _walk_folder(path, True, walk) if recursive else []
    ok = suffix(path) in READABLE or is_dicom_file(path)
    ok = ok and not path.name.startswith(".") and not _an_output(path)
    return [path] if ok and walk.new_file(path) else []


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
    found, subfolders = _walk_folder(folder, recursive, _Walk(), top=True)
    if not found:
        more = subfolders and not recursive
        hint = "; pass --recursive to look in its subfolders" if more else ""
        raise ValueError(f"{folder} holds no readable image ({_readable()}){hint}")
    return found


def _walk_folder(folder: Path, recursive: bool, walk: _Walk, top: bool = False):
    """The inputs in ``folder`` (``(inputs, subfolders)`` when ``top``); folders reached
    through links are walked after the real ones, and a real folder entered already (a
    loop, or a second link to it) gives nothing."""
    subfolders: list[Path] = []
    found = _visit(folder, recursive, walk, subfolders)
    while walk.links:
        found += _visit(walk.links.pop(0), True, walk, [])
    return (found, subfolders) if top else found


def _visit(folder: Path, recursive: bool, walk: _Walk, subfolders: list[Path]) -> list[Path]:
    from ._formats import is_dicom_folder

    if is_dicom_folder(folder):
        return [folder] if walk.new_file(folder) else []
    found: list[Path] = []
    if not walk.enter(folder):
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            subfolders.append(path)
            if recursive and path.is_symlink():
                walk.links.append(path)
            elif recursive:
                found += _visit(path, True, walk, [])
        else:
            found += _expand_match(path, False, walk)
    return found


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
