"""Weight files, read without running code: safetensors or PyTorch state dicts, and the
encoder's starting weights (ImageNet from smp's source, or a local ResNet-101 file).

Shared by checkpoints (:mod:`.checkpoint`) and :func:`~.model.build_model`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ENCODER_NAME
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


ENCODER_WEIGHTS_HELP = (
    "pass encoder_weights=None for random initialisation, 'imagenet' for smp's download, "
    "or the path of a local ResNet-101 weights file (torchvision's resnet101-*.pth, "
    "timm's resnet101 *.safetensors/*.pth)"
)


def normalise_weights_arg(weights: str | Path | None) -> str | Path | None:
    if weights is None:
        return None
    if isinstance(weights, Path):
        return weights
    if not isinstance(weights, str):
        raise TypeError(f"encoder_weights must be None, 'imagenet' or a path; got {weights!r}")
    if weights.lower() in ("", "none", "random"):
        return None
    if weights.lower() == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if path.suffix or path.exists() or "/" in weights or "\\" in weights:
        return path
    raise ValueError(f"unknown encoder_weights {weights!r}; {ENCODER_WEIGHTS_HELP}")


def check_imagenet_reachable(timeout: float = 3.0) -> None:
    """Fail within seconds, not after minutes of retries, when the weights can't be had."""
    import socket

    from huggingface_hub import try_to_load_from_cache
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[ENCODER_NAME]["pretrained_settings"]["imagenet"]
    cached = try_to_load_from_cache(
        settings["repo_id"], "model.safetensors", revision=settings["revision"]
    )
    if isinstance(cached, str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ValueError(
            f"ImageNet weights for ResNet-101 are not cached and HF_HUB_OFFLINE is set. "
            f"{ENCODER_WEIGHTS_HELP}."
        )
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError as exc:
        raise ValueError(
            "ImageNet weights for ResNet-101 are not cached and huggingface.co (smp's "
            f"source) cannot be reached ({exc}). Offline? {ENCODER_WEIGHTS_HELP}."
        ) from None


def load_encoder_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Map a ResNet-101 state dict (torchvision or timm layout) onto ``model.encoder``.

    Returns a report ``{"missing": [...], "unexpected": [...], "sha256": str}``. Keys of the
    classifier head (``fc.*``) are expected to be unused and not reported.

    Raises
    ------
    ValueError
        When the file is unreadable or is not a ResNet-101 (missing encoder keys or
        mismatched shapes).
    """
    path = Path(path)
    state = read_state_dict(path, what="encoder weights file")
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in ("module.", "model.", "encoder.", "backbone."):
            key = key.removeprefix(prefix)
        if key.startswith("fc."):
            continue
        cleaned[key] = value
    encoder = model.encoder
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(cleaned))
    unexpected = sorted(set(cleaned) - set(expected))
    wrong = [
        f"{k} {tuple(cleaned[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in cleaned and cleaned[k].shape != expected[k].shape
    ]
    if missing or wrong:
        details = "; ".join(
            part
            for part in (
                f"{len(missing)} missing keys (e.g. {missing[:3]})" if missing else "",
                f"{len(wrong)} shape mismatches (e.g. {wrong[:2]})" if wrong else "",
            )
            if part
        )
        raise ValueError(f"{path.name} is not a ResNet-101 state dict: {details}")
    encoder.load_state_dict({k: cleaned[k] for k in expected}, strict=True)
    if unexpected:
        warnings.warn(
            f"{path.name}: {len(unexpected)} keys not used by the encoder: {unexpected[:5]}",
            stacklevel=2,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"missing": missing, "unexpected": unexpected, "sha256": digest}
