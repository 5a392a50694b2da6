"""Where training writes its checkpoints, and the optimizer state saved without pickle.

Layout for ``output="runs/liver"`` (``.safetensors`` optional; an existing folder ``F``
means ``F/model``)::

    runs/liver.safetensors             best epoch (highest validation IoU): the model to use
    runs/liver.last.safetensors        the end of the latest epoch (resume from this one)
    runs/liver.last.optim.safetensors  AdamW moments of that epoch (tensors) + JSON groups

The two model files are ordinary checkpoints (:func:`~napari_res101unet.load_model`);
``spec.training`` holds the settings, the per-epoch history and where to resume.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

SUFFIX = ".safetensors"
LAST = ".last"
OPTIM = ".optim"
_META_KEY = "napari_res101unet_optimizer"
OPTIMIZER_FORMAT = 1


@dataclass(frozen=True)
class CheckpointPaths:
    """The three files of a training run."""

    best: Path
    last: Path
    optimizer: Path

    @classmethod
    def from_output(cls, output: str | os.PathLike) -> CheckpointPaths:
        """Paths for ``output`` (a file stem, a ``.safetensors`` file or an existing folder)."""
        if not isinstance(output, (str, os.PathLike)):
            raise TypeError(f"output must be a path or None, got {type(output).__name__}")
        path = Path(output).expanduser()
        if path.is_dir():
            path = path / "model"
        name = path.name.removesuffix(SUFFIX)
        if not name:
            raise ValueError(f"output {str(output)!r} has no file name")
        base = path.with_name(name)
        return cls(
            best=base.with_name(name + SUFFIX),
            last=base.with_name(name + LAST + SUFFIX),
            optimizer=base.with_name(name + LAST + OPTIM + SUFFIX),
        )

    @classmethod
    def from_last(cls, last: str | os.PathLike) -> CheckpointPaths:
        """Paths of the run whose last checkpoint is ``last`` (``X.last.safetensors``)."""
        path = Path(last).expanduser()
        name = path.name.removesuffix(SUFFIX)
        if not name.endswith(LAST):
            raise ValueError(
                f"resume must name a last checkpoint '<name>.last.safetensors', got "
                f"{path.name!r}; to fine-tune further from a model, pass it as model="
            )
        return cls.from_output(path.with_name(name.removesuffix(LAST)))


def save_optimizer(
    path: Path, optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None
) -> Path:
    """Write the optimizer state atomically: per-parameter tensors as safetensors
    (``state.<param>.<key>``) and the param groups plus ``extra`` as JSON metadata."""
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{key}"] = tensor.detach().to("cpu").contiguous()
    meta = {
        "format_version": OPTIMIZER_FORMAT,
        "param_groups": state["param_groups"],
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={_META_KEY: json.dumps(meta)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore ``optimizer`` from :func:`save_optimizer`'s file; returns its JSON metadata.

    Raises
    ------
    ValueError
        When the file is missing, unreadable or does not fit ``optimizer``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise ValueError(
            f"cannot resume: the optimizer state {str(path)!r} is missing; it is written "
            "next to the last checkpoint. To fine-tune further, pass the model as model="
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
        tensors = load_file(str(path))
    except Exception as exc:
        raise ValueError(f"{path.name} is not a readable optimizer state: {exc}") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    groups = meta["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{path.name} does not fit this model's optimizer: {exc}") from None
    return meta


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` an atomic copy of ``source`` (a hard link where the disk allows)."""
    import shutil

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    Path(tmp).unlink()
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
