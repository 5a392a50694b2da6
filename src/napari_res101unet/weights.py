"""Reading weight files without running code: safetensors, or PyTorch state dicts.

Shared by checkpoints (:mod:`.checkpoint`) and encoder weights (:mod:`.model`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError, summarize

if TYPE_CHECKING:
    import torch

SAFETENSORS = ".safetensors"
SAFE_TORCH = (2, 6)
"""First torch whose ``weights_only=True`` loading cannot be bypassed (CVE-2025-32434)."""
_WRAPPERS = ("state_dict", "model_state_dict", "model", "encoder")


def read_state_dict(
    path: str | os.PathLike, what: str = "model file", skip: str | None = None
) -> dict[str, torch.Tensor]:
    """Tensors of a weights file (safetensors, or a PyTorch state dict), never running code.

    PyTorch files are read with ``torch.load(weights_only=True)``; a dict wrapping the
    state (``state_dict``, ``model``...) is unwrapped and ``module.``/``model.`` key
    prefixes (DataParallel, Lightning) are dropped. Safetensors tensors whose names start
    with ``skip`` are not read.

    Raises
    ------
    CheckpointError (a ValueError)
        For a missing, truncated or pickled-code file, or one without a dict of tensors.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    if path.suffix == SAFETENSORS:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                keys = f.keys()
                names = [k for k in keys if not (skip and k.startswith(skip))]
                return {k: f.get_tensor(k) for k in names}
        except Exception as exc:
            raise CheckpointError(
                f"{path.name} is truncated or not a safetensors file: {summarize(exc)}"
            ) from None
    _check_torch_for_pickles(torch.__version__, path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path.name} is not a plain PyTorch state dict (weights_only loading refuses "
            "pickled code and objects, which are never loaded, and truncated files): "
            f"{type(exc).__name__}: {summarize(exc, 200)}"
        ) from None
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name} does not hold a state dict of tensors")
    return {k.removeprefix("module.").removeprefix("model."): v for k, v in obj.items()}


def _check_torch_for_pickles(version: str, path: Path) -> None:
    """Refuse PyTorch (pickle) files on a torch whose ``weights_only`` can be bypassed."""
    parts = version.split("+")[0].split(".")[:2]
    found = tuple(int("".join(ch for ch in p if ch.isdigit()) or 0) for p in parts)
    if found < SAFE_TORCH:
        raise CheckpointError(
            f"{path.name} is a PyTorch pickle file and torch {version} cannot load those "
            "safely (CVE-2025-32434: weights_only=True can be bypassed before torch 2.6). "
            "Upgrade torch to 2.6 or later, or use a .safetensors file"
        )
