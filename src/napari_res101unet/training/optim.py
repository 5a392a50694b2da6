"""AdamW parameter groups, the learning-rate schedule, and optimizer state without pickle.

The optimizer state of a run lives inside its last checkpoint
(``<output>.last.safetensors``, written in one atomic step with the weights): the
per-parameter moments as safetensors tensors named ``optimizer.state.<param index>.<key>``,
the param groups (and resume bookkeeping) as JSON in the header. Runs of earlier versions
kept it in ``<output>.last.optim.safetensors``, which still resumes. Nothing is unpickled
when it is read back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from ..io.files import atomic_target

MIN_LR_FACTOR = 0.01
META_KEY = "napari_res101unet_optimizer"
OPTIMIZER_FORMAT = 1


def lr_factor(step: int, total: int, warmup: int, elapsed: float = 0.0) -> float:
    """Learning-rate multiplier at ``step``: linear warmup, then a cosine to 1 %.

    ``elapsed`` is the fraction of a time budget used; the cosine follows whichever of the
    step count and the time budget is further along, so the rate has decayed when time
    runs out.
    """
    if step < warmup:
        return (step + 1) / warmup
    return cosine_factor(max((step - warmup) / max(1, total - warmup), elapsed))


def cosine_factor(t: float) -> float:
    """The cosine from 1 (``t = 0``) to :data:`MIN_LR_FACTOR` (``t >= 1``)."""
    t = min(1.0, max(0.0, t))
    return MIN_LR_FACTOR + (1 - MIN_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * t))


def make_optimizer(
    model: torch.nn.Module, learning_rate: float, encoder_factor: float, weight_decay: float
):
    """AdamW with two groups: decoder + head at ``learning_rate``, encoder at a fraction.

    Returns the optimizer and the two base learning rates (for the schedule)."""
    encoder = list(model.encoder.parameters())
    ids = {id(p) for p in encoder}
    rest = [p for p in model.parameters() if id(p) not in ids]
    base = [learning_rate, learning_rate * encoder_factor]
    groups = [
        {"params": rest, "lr": base[0], "name": "decoder"},
        {"params": encoder, "lr": base[1], "name": "encoder"},
    ]
    return torch.optim.AdamW(groups, weight_decay=weight_decay), base


def optimizer_payload(
    optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None, prefix: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The optimizer state as safetensors tensors (``<prefix>state.<param>.<key>``) and
    metadata (the param groups plus ``extra`` as JSON), to store in a file."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}state.{index}.{key}"] = tensor.detach().to("cpu").contiguous()
    meta = {
        "format_version": OPTIMIZER_FORMAT,
        "param_groups": state["param_groups"],
        **(extra or {}),
    }
    return tensors, {META_KEY: json.dumps(meta)}


def save_optimizer(
    path: Path, optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None
) -> Path:
    """Write the optimizer state atomically to its own file (see :func:`optimizer_payload`;
    training stores it inside the last checkpoint instead)."""
    from safetensors.torch import save_file

    tensors, metadata = optimizer_payload(optimizer, extra)
    with atomic_target(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def has_optimizer(path: Path) -> bool:
    """Whether the safetensors file ``path`` holds an optimizer state (torch-free header
    read; False for an unreadable file)."""
    from ..checkpoint import CheckpointError, read_metadata

    try:
        return META_KEY in read_metadata(path)
    except CheckpointError:
        return False


def load_optimizer(
    path: Path, optimizer: torch.optim.Optimizer, prefix: str = ""
) -> dict[str, Any]:
    """Restore ``optimizer`` from a file with :func:`optimizer_payload`'s content (tensors
    named ``<prefix>state...``); returns its JSON metadata.

    Raises
    ------
    ValueError
        When the file is missing, unreadable or does not fit ``optimizer``.
    """
    from safetensors import safe_open

    if not path.is_file():
        raise ValueError(
            f"cannot resume: the optimizer state {str(path)!r} is missing; it is written "
            "next to the last checkpoint. To fine-tune further, pass the model as model="
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
            keys = f.keys()
            names = [k for k in keys if k.startswith(prefix + "state.")]
            tensors = {k.removeprefix(prefix): f.get_tensor(k) for k in names}
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
