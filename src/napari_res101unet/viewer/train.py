"""Training from layer pairs: the checked request and the model handed to the session."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainSettings, models_dir, settings_with
from ..engine import protocol as P
from ..errors import Cancelled
from .jobs import Progress, run_job
from .layers import get_layer, layer_array
from .segment import model_reference


@dataclass
class TrainRequest:
    """A training job from layer pairs, checked with the engine's own data rules."""

    names: list[str]
    pairs: list[tuple[np.ndarray, np.ndarray]]
    settings: TrainSettings
    options: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "names": self.names,
            "settings": self.settings,
            "options": self.options,
        }


def resolve_pairs(viewer: Any, pairs: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``(image layer, labels layer)`` for pairs of layers or layer names."""
    if not pairs:
        raise ValueError(
            "no training data: pick an image and its labels layer "
            "(open both, or paint labels on a new Labels layer)"
        )
    out = []
    for image, labels in pairs:
        try:
            out.append((get_layer(viewer, image, "image"), get_layer(viewer, labels, "labels")))
        except ValueError as exc:
            raise ValueError(f"training pair ({image!r}, {labels!r}): {exc}") from None
    return out


def train_request(
    viewer: Any,
    pairs: Sequence[tuple[Any, Any]],
    settings: TrainSettings | None = None,
    *,
    output: str | Path | None = None,
    device: str = "auto",
    start: str | Path | None = None,
    encoder_weights: str | None = None,
) -> TrainRequest:
    """Check layer pairs with the training data rules and build the job.

    ``start`` is a model to fine-tune (name or path); ``encoder_weights`` starts a new
    model from ``"imagenet"`` or a ResNet-101 file. Raises ValueError/TypeError naming
    the pair (by its layer names) before anything runs.
    """
    from ..preprocess.pairs import check_pairs, resolve_classes
    from .layers import known_spacing

    settings = settings or TrainSettings()
    layers = resolve_pairs(viewer, pairs)
    arrays = [(layer_array(img), layer_array(lab)) for img, lab in layers]
    names = [f"{img.name} + {lab.name}" for img, lab in layers]
    checked = check_pairs(
        arrays, ignore_index=settings.ignore_index, sparse=settings.sparse, names=names
    )
    resolve_classes(checked, settings.classes, settings.label_ignore)
    options: dict[str, Any] = {
        "output": str(output or unique_model_path(layers[0][0].name)),
        "device": device,
        "spacing": _spacing([known_spacing(img) for img, _ in layers]),
    }
    if start is not None:
        options["model"] = model_reference(start)
    if encoder_weights is not None:
        options["encoder_weights"] = str(encoder_weights)
    return TrainRequest(names, arrays, settings, options)


def _spacing(spacings: list) -> Any:
    """One spacing when every pair has it (None: all unknown), else one per pair."""
    return spacings[0] if all(s == spacings[0] for s in spacings) else spacings


def unique_model_path(name: str = "model", folder: Path | None = None) -> Path:
    """A new file name in the model folder: ``res101unet-<name>-<date-time>.safetensors``,
    with ``-2``, ``-3``... when two runs start within the same second. A name is handed
    out once per session, even before its run has written anything."""
    folder = Path(folder) if folder is not None else models_dir()
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"
    stem = f"res101unet-{safe}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, i = folder / f"{stem}.safetensors", 2
    while _taken(path):
        path, i = folder / f"{stem}-{i}.safetensors", i + 1
    _HANDED_OUT.add(path.resolve())
    return path


_HANDED_OUT: set[Path] = set()


def _taken(path: Path) -> bool:
    last = path.with_name(path.name.removesuffix(".safetensors") + ".last.safetensors")
    return path.exists() or last.exists() or path.resolve() in _HANDED_OUT


def apply_train_result(result: dict | None) -> Path | None:
    """Register a finished run's model for this session (the Segment list offers it)."""
    from .session import SESSION_MODELS

    if not result or not result.get("path"):
        return None
    path = Path(result["path"])
    SESSION_MODELS.add(path, label=path.stem, origin="trained")
    return path


def train_from_layers(
    viewer: Any,
    pairs: Sequence[tuple[Any, Any]],
    settings: TrainSettings | None = None,
    *,
    output: str | Path | None = None,
    device: str = "auto",
    start: str | Path | None = None,
    encoder_weights: str | None = None,
    in_process: bool = False,
    progress: Progress | None = None,
    **fields: Any,
) -> Path:
    """Fine-tune Res101_UNet on ``(image, labels)`` layer pairs and return the saved model.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    pairs : sequence of (image, labels)
        Layers or layer names.
    settings : TrainSettings, optional
        What to train (the defaults when None); its fields may also be given as keyword
        arguments, which win.
    output : path, optional
        Where the model goes (default: a new file in the model folder).
    device, start, encoder_weights
        As in :func:`train_request`.
    in_process : bool
        Train in this process instead of the engine process.
    progress : callable, optional
        Called with each ``EVENT`` message (``msg["event"]`` is a training event dict).
    **fields
        :class:`~napari_res101unet.config.TrainSettings` fields.

    Returns
    -------
    Path
        The best model's file; it is added to this session's model list, and
        :func:`segment_layer`, ``load_model`` and the Segment widget take it.
    """
    request = train_request(
        viewer,
        pairs,
        settings_with(TrainSettings, settings, fields),
        output=output,
        device=device,
        start=start,
        encoder_weights=encoder_weights,
    )
    result = run_job(P.TRAIN, request.payload(), in_process=in_process, progress=progress)
    path = apply_train_result(result)
    if path is None:
        raise Cancelled(f"training stopped ({result.get('reason')}) before the first epoch")
    return path
