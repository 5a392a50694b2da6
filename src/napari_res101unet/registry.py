"""The user's model folder: which models exist and finding one by name (no torch needed)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import read_header
from .config import models_dir
from .errors import summarize

UNTRAINED = "untrained"
"""Model name for a randomly initialised Res101_UNet (for trying the pipeline only)."""


@dataclass(frozen=True)
class ModelEntry:
    """A model file and what its header says about it."""

    name: str
    path: Path
    classes: list[str]
    in_channels: int
    summary: str
    readable: bool = True
    """False for a file that cannot be used (``summary`` says "unreadable: why")."""


def list_models(folder: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Models (``*.safetensors`` checkpoints and smp folders) in ``folder`` (default: the
    user's model folder), newest first. A file that cannot be read (corrupt, foreign, a
    dangling symlink) is listed with ``readable=False`` and why in ``summary``; it never
    stops the others from being listed."""
    root = Path(folder) if folder is not None else models_dir()
    if not root.is_dir():
        return []
    paths = [*root.glob("*.safetensors"), *(p.parent for p in root.glob("*/config.json"))]
    return [describe_model(path) for path in sorted(paths, key=_mtime, reverse=True)]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # a dangling symlink
        return 0.0


def describe_model(path: str | os.PathLike) -> ModelEntry:
    """Read a model's header without loading weights or torch (``readable=False`` and the
    reason in ``summary`` when it cannot be used)."""
    path = Path(path)
    try:
        return _describe(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        why = summarize(exc, 120) if not isinstance(exc, KeyError) else f"no {exc} in its spec"
        if not path.exists():
            why = "a link to a missing file"
        return ModelEntry(path.stem, path, [], 0, f"unreadable: {why}", readable=False)


def _describe(path: Path) -> ModelEntry:
    if path.is_dir():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        n = int(config.get("classes", 1))
        names = ["background", "foreground"] if n <= 2 else [f"class {i}" for i in range(n)]
        return ModelEntry(path.name, path, names, int(config.get("in_channels", 3)), "smp")
    spec = read_header(path)["spec"]
    names, channels = spec["class_names"], spec["in_channels"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("its class names are not a list of strings")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"in_channels {channels!r:.40} is not a positive int")
    training = spec.get("training") or {}
    best = training.get("best_val_iou") if isinstance(training, dict) else None
    summary = f"val IoU {best:.3f}" if isinstance(best, (int, float)) else "not trained here"
    refined = training.get("refinements") if isinstance(training, dict) else None
    if isinstance(refined, list) and refined:
        summary = f"refined {len(refined)}x on corrections"
    return ModelEntry(path.stem, path, list(names), channels, summary)


def find_model(name: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path | str:
    """A model path from a path or a name in the model folder; ``UNTRAINED`` passes through.

    Raises
    ------
    FileNotFoundError
        Naming the folder searched and the models it has.
    """
    if str(name) == UNTRAINED:
        return UNTRAINED
    path = Path(name).expanduser()
    if path.exists():
        return path
    root = Path(folder) if folder is not None else models_dir()
    for candidate in (root / str(name), root / f"{name}.safetensors"):
        if candidate.exists():
            return candidate
    known = ", ".join(e.name for e in list_models(root)) or "none"
    raise FileNotFoundError(
        f"no model {str(name)!r}: not a file, and not in the model folder {root} "
        f"(models there: {known})"
    )
