"""Models: the user's model folder, finding one by name, and :func:`open_model`, the one
way every part of the plugin (the engine, dask workers, the CLI, :func:`segment`) opens a
model: loaded once per process, cached by the file's SHA-256 and the device.

Listing and finding models imports no torch (napari's process calls them); opening one
imports torch when first called.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import read_header
from .config import models_dir
from .errors import summarize
from .io.files import file_sha256

UNTRAINED = "untrained"
"""Model name for a randomly initialised Res101_UNet (for trying the pipeline only)."""
UNTRAINED_SEED = 0
"""The seed of every untrained model: the same random weights in every process."""
OPEN_MODELS = 1
"""Models kept in memory per process by :func:`open_model` (each can take hundreds of MB)."""

_OPEN: OrderedDict[tuple, Any] = OrderedDict()
_LOCK = threading.Lock()


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


def open_model(source: str | os.PathLike, device: Any = "cpu", *, in_channels: int = 3) -> Any:
    """The model ``source`` names, loaded once per process and shared.

    Parameters
    ----------
    source : str or path
        A checkpoint file or folder (anything :func:`~napari_res101unet.load_model` reads),
        a name in the model folder, or ``"untrained"`` (a Res101_UNet with random weights
        seeded by :data:`UNTRAINED_SEED`, the same in every process).
    device : str or torch.device
        Where the weights go (``"auto"`` resolves here).
    in_channels : int
        Input channels of an untrained model.

    Returns
    -------
    torch.nn.Module
        In eval mode. Shared with every caller in this process that names the same file
        content and device: never change it in place (training copies it).

    Raises
    ------
    FileNotFoundError
        Naming the folder searched and the models it has.
    CheckpointError
        For a file that is not a usable Res101_UNet.
    """
    from .device import resolve_device

    found = find_model(source)
    dev = str(resolve_device(device))
    key = (_content_key(found, in_channels), dev)
    with _LOCK:
        if key in _OPEN:
            _OPEN.move_to_end(key)
            return _OPEN[key]
        while len(_OPEN) >= OPEN_MODELS:
            _OPEN.popitem(last=False)
        model = untrained_model(in_channels) if found == UNTRAINED else _load(found)
        _OPEN[key] = model.to(dev).eval()
        return _OPEN[key]


def untrained_model(in_channels: int = 3) -> Any:
    """A Res101_UNet with random weights seeded by :data:`UNTRAINED_SEED` (for trying the
    pipeline only: its labels are meaningless)."""
    import torch

    from .model import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = build_model(in_channels=in_channels)
    model.spec.name = "untrained Res101_UNet"
    return model


def _load(path: Path) -> Any:
    from .checkpoint import load_model

    return load_model(path)


def _content_key(found: Path | str, in_channels: int) -> str:
    """The SHA-256 of a model file; of the names, sizes and times of a folder's files."""
    if found == UNTRAINED:
        return f"{UNTRAINED}:{in_channels}"
    path = Path(found)
    if path.is_dir():
        parts = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())
        return "dir:" + hashlib.sha256(repr(parts).encode()).hexdigest()
    return file_sha256(path)


def forget_models() -> None:
    """Drop the models :func:`open_model` keeps (tests; freeing memory)."""
    with _LOCK:
        _OPEN.clear()
