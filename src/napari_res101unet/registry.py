"""The user's model folder: which models exist and finding one by name (no torch needed)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import read_header
from .config import models_dir

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


def list_models(folder: str | os.PathLike | None = None) -> list[ModelEntry]:
    """Models (``*.safetensors`` checkpoints and smp folders) in ``folder`` (default: the
    user's model folder), newest first. Unreadable files are skipped."""
    root = Path(folder) if folder is not None else models_dir()
    if not root.is_dir():
        return []
    found = []
    paths = [*root.glob("*.safetensors"), *(p.parent for p in root.glob("*/config.json"))]
    for path in sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True):
        entry = describe_model(path)
        if entry is not None:
            found.append(entry)
    return found


def describe_model(path: str | os.PathLike) -> ModelEntry | None:
    """Read a model's header without loading weights or torch; None if unreadable."""
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            n = int(config.get("classes", 1))
            names = ["background", "foreground"] if n <= 2 else [f"class {i}" for i in range(n)]
            return ModelEntry(path.name, path, names, int(config.get("in_channels", 3)), "smp")
        header = read_header(path)
        spec = header["spec"]
        training = spec.get("training") or {}
        best = training.get("best_val_iou")
        summary = f"val IoU {best:.3f}" if isinstance(best, (int, float)) else "not trained here"
        return ModelEntry(
            path.stem, path, list(spec["class_names"]), int(spec["in_channels"]), summary
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
