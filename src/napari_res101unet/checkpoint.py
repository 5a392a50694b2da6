"""Self-describing checkpoints: weights in safetensors, the spec as JSON in its header.

A checkpoint is one ``.safetensors`` file whose header metadata holds, under the key
``napari_res101unet``, a JSON document with the :class:`~napari_res101unet.model.ModelSpec`
and provenance (versions, date). Loading never unpickles code: safetensors is plain tensors,
and PyTorch ``.pth`` state dicts are read with ``torch.load(weights_only=True)``.

Also loaded: a directory written by smp's ``save_pretrained`` and plain Res101_UNet state
dicts (``.safetensors``/``.pth``), whose spec is inferred from the tensor shapes.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ARCHITECTURE, CHECKPOINT_FORMAT, DECODER_CHANNELS, ENCODER_NAME
from .errors import CheckpointError, summarize
from .io import bioimageio as _bioimageio
from .io.files import atomic_target
from .weights import read_state_dict

if TYPE_CHECKING:  # torch is imported where weights are touched, not on import
    import torch

    from .model import ModelSpec

__all__ = ["CheckpointError", "load_model", "read_header", "read_state_dict", "save_model"]

META_KEY = "napari_res101unet"
SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
MAX_HEADER_BYTES = 100_000_000
EXTRA_PREFIX = "optimizer."
"""Tensors stored beside the weights (a run's optimizer state), never loaded as weights."""
_LAYER3_BLOCKS = {6: "ResNet-50", 23: "ResNet-101", 36: "ResNet-152"}


def provenance() -> dict[str, Any]:
    """Versions and time, written into every checkpoint."""
    from .io.provenance import utc_now, versions

    return {**versions(), "saved": utc_now()}


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    tensors: dict[str, torch.Tensor] | None = None,
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> Path:
    """Write ``model`` (with its spec) to ``path`` atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`build_model`, :func:`load_model` or :func:`train`.
    path : path
        Target file; ``.safetensors`` is appended when it has no suffix. A half-written file
        never replaces an existing one (temporary file + rename).
    tensors, metadata
        More tensors (named ``optimizer.*``: :func:`load_model` skips them) and header
        entries committed in the same file, e.g. a training run's optimizer state.
    **extra
        JSON-serialisable items stored beside the spec (e.g. ``note="..."``).

    Returns
    -------
    Path
        The file written.
    """
    from safetensors.torch import save_file

    from .model import model_spec

    spec = model_spec(model)
    path = Path(path).expanduser()
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    header = {
        "format": "napari-res101unet checkpoint",
        "format_version": CHECKPOINT_FORMAT,
        "spec": spec.to_dict(),
        "provenance": provenance(),
        **extra,
    }
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if tensors and any(not k.startswith(EXTRA_PREFIX) for k in tensors):
        raise ValueError(f"extra tensors must be named {EXTRA_PREFIX}*")
    with atomic_target(path) as tmp:
        save_file(
            {**weights, **(tensors or {})},
            str(tmp),
            metadata={**(metadata or {}), META_KEY: json.dumps(header)},
        )
    return path


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a checkpoint written by :func:`save_model`.

    Plain file I/O: no weights are loaded and neither torch nor safetensors is imported,
    so the model lists in napari's process can call it.

    Raises
    ------
    CheckpointError
        When the file is not a safetensors file or holds no napari-res101unet spec.
    """
    meta = read_metadata(path)
    if not isinstance(meta.get(META_KEY), str):
        raise NoSpecError(f"{path} was not written by napari-res101unet (no spec inside)")
    try:
        header = json.loads(meta[META_KEY])
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CheckpointError(f"{path}: the spec inside is not valid JSON ({reason})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the spec inside is not a JSON object")
    return header


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file (plain file I/O, torch-free).

    Raises
    ------
    CheckpointError
        When the file cannot be read or is not a safetensors file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < MAX_HEADER_BYTES:
                raise CheckpointError(f"{path} is not a readable safetensors file")
            raw = f.read(size)
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read: {summarize(exc)}") from None
    if len(raw) < size:
        raise CheckpointError(f"{path} is truncated: its header is cut short")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path} is not a readable safetensors file") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a readable safetensors file")
    found = meta.get("__metadata__")
    return found if isinstance(found, dict) else {}


class NoSpecError(CheckpointError):
    """A safetensors file without a napari-res101unet header (e.g. a plain state dict)."""


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a Res101_UNet from a checkpoint file or an smp ``save_pretrained`` folder.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    CheckpointError (a ValueError)
        For a truncated or corrupt file, a pickle with objects in it, another architecture,
        or a file of another tool.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    if _bioimageio.is_package(path):
        state, spec = _bioimageio.read_package(path)
    elif path.is_dir():
        state, spec = _load_directory(path)
    elif path.suffix == SUFFIX:
        state, spec = _load_safetensors(path)
    elif path.suffix in TORCH_SUFFIXES:
        state = read_state_dict(path)
        spec = infer_spec(state, path)
    else:
        raise CheckpointError(
            f"{path.name}: unknown model file type {path.suffix!r}; expected a "
            f"napari-res101unet {SUFFIX} checkpoint, a .pth state dict or an smp folder"
        )
    from .device import resolve_device
    from .model import build_model

    _check_depth(state, path)  # a foreign file fails here, before a network is built
    model = build_model(spec=spec)
    _load_state(model, state, path)
    model.checkpoint_path = str(path)

    return model.to(resolve_device(device)).eval()


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelSpec]:
    try:
        header = read_header(path)
    except NoSpecError:
        state = read_state_dict(path)
        return state, infer_spec(state, path)
    spec = spec_from_header(header, path)  # checked before any tensor is read
    return read_state_dict(path, skip=EXTRA_PREFIX), spec


def spec_from_header(header: dict[str, Any], path: Path) -> ModelSpec:
    """The validated :class:`ModelSpec` of a checkpoint header (bounded, see
    :data:`~napari_res101unet.model.SPEC_LIMITS`).

    Raises
    ------
    CheckpointError
        For a newer format, a missing spec, or one of wrong types or out of bounds.
    """
    from .model import ModelSpec

    version = header.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path.name}: checkpoint format {version!r:.40} is not a number")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path.name} uses checkpoint format {version}, newer than this plugin reads "
            f"({CHECKPOINT_FORMAT}); update napari-res101unet"
        )
    try:
        return ModelSpec.from_dict(header.get("spec"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path.name}: its spec is not usable: {exc}") from None


def _load_directory(path: Path) -> tuple[dict[str, torch.Tensor], ModelSpec]:
    config_file = path / "config.json"
    if not config_file.is_file():
        ours = sorted(path.glob(f"*{SUFFIX}"))
        if len(ours) == 1:
            return _load_safetensors(ours[0])
        raise CheckpointError(f"folder {path} holds no config.json of an smp model")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file} is not valid JSON: {exc}") from None
    cls, encoder = config.get("_model_class"), config.get("encoder_name")
    if cls != "Unet" or encoder != ENCODER_NAME:
        raise CheckpointError(
            f"{path.name} holds smp {cls} with encoder {encoder!r}; this plugin runs "
            f"{ARCHITECTURE} (smp Unet with encoder {ENCODER_NAME!r})"
        )
    weights = path / "model.safetensors"
    state = read_state_dict(weights if weights.is_file() else path / "pytorch_model.bin")
    from .model import ModelSpec

    try:
        spec = ModelSpec(
            in_channels=int(config.get("in_channels", 3)),
            classes=int(config.get("classes", 1)),
            decoder_channels=list(config.get("decoder_channels", DECODER_CHANNELS)),
            encoder_weights=str(config.get("encoder_weights")),
            name=path.name,
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_file}: not a usable smp config: {exc}") from None
    return state, spec


def infer_spec(state: dict[str, torch.Tensor], path: Path) -> ModelSpec:
    """Spec of a bare Res101_UNet state dict, read from its tensor shapes."""
    from .model import ModelSpec

    first, head = state.get("encoder.conv1.weight"), state.get("segmentation_head.0.weight")
    if first is None or head is None:
        raise CheckpointError(
            f"{path.name} is not a Res101_UNet checkpoint: it has no U-Net encoder/head "
            f"tensors (first keys: {list(state)[:3]}); it may belong to another tool"
        )
    _check_depth(state, path)
    decoder = [
        int(state[f"decoder.blocks.{i}.conv1.0.weight"].shape[0])
        for i in range(5)
        if f"decoder.blocks.{i}.conv1.0.weight" in state
    ]
    warnings.warn(
        f"{path.name} carries no napari-res101unet spec; inferred in_channels="
        f"{first.shape[1]}, classes={head.shape[0]} and 'auto' normalisation",
        stacklevel=3,
    )
    return ModelSpec(
        in_channels=int(first.shape[1]),
        classes=int(head.shape[0]),
        decoder_channels=decoder or list(DECODER_CHANNELS),
        encoder_weights="unknown",
        name=path.stem,
    )


def _check_depth(state: dict[str, torch.Tensor], path: Path) -> None:
    blocks = {k.split(".")[2] for k in state if k.startswith("encoder.layer3.")}
    if len(blocks) != 23:
        guess = _LAYER3_BLOCKS.get(len(blocks), "another network")
        raise CheckpointError(
            f"{path.name} holds a U-Net with a {guess} encoder ({len(blocks)} blocks in "
            f"layer3); this plugin runs {ARCHITECTURE} (ResNet-101, 23 blocks)"
        )


def _load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    _check_depth(state, path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path.name} does not match {ARCHITECTURE} with in_channels="
            f"{model.spec.in_channels}, classes={model.spec.classes}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} mis-shaped tensors "
            f"(e.g. {(missing + unexpected + wrong)[:3]})"
        )
    model.load_state_dict(state, strict=True)
