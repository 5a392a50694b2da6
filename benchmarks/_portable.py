"""Paths fit for a results file: never this machine's absolute paths.

Result files are committed and compared across machines, so a path in them says where a
file sits relative to something every reader has: the data root (``glas/testA/images``),
the repository (``../shared/data``, ``bench_results/inference.json``) or the home folder
(``~/.local/share/...``); anything else is reduced to its name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def portable(path: str | os.PathLike, data: str | os.PathLike | None = None) -> str:
    """``path`` relative to the data root, the repository (at most one level up) or ``~``.

    Examples
    --------
    >>> portable(REPO.parent / "shared" / "data" / "glas", REPO.parent / "shared" / "data")
    'glas'
    >>> portable(REPO / "bench_results" / "x.json")
    'bench_results/x.json'
    >>> portable("/mnt/scratch/model.safetensors")
    'model.safetensors'
    """
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    path = Path(os.path.abspath(path))
    if data is not None:
        root = Path(os.path.abspath(data))
        if path == root or root in path.parents:
            return path.relative_to(root).as_posix()
    try:
        relative = Path(os.path.relpath(path, REPO))
    except ValueError:  # another drive (Windows)
        relative = None
    if relative is not None and relative.parts[:2] != ("..", ".."):
        return relative.as_posix()
    home = Path.home()
    if home in path.parents:
        return "~/" + path.relative_to(home).as_posix()
    return path.name


def portable_settings(settings: dict[str, Any], data: str | os.PathLike | None) -> dict:
    """``settings`` (e.g. ``vars(args)``) with every path made :func:`portable`.

    Path objects and absolute path strings (``--encoder-weights /x/resnet101.pth``) are
    rewritten; the data root itself becomes its path relative to the repository.
    """
    out = {}
    for key, value in settings.items():
        if isinstance(value, Path) or (isinstance(value, str) and os.path.isabs(value)):
            value = portable(value, None if key == "data" else data)
        out[key] = value
    return out


def write_results(out: Path, stem: str, result: dict, table: str) -> None:
    """``out/<stem>.json`` and ``out/<stem>.md`` (the folder made), the table printed."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(table, encoding="utf-8")
    print(table)
