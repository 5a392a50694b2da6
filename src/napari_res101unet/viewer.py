"""The napari API without Qt: segment and train from layers, as the widgets do.

Works on ``napari.components.ViewerModel`` and ``napari.Viewer(show=False)`` alike and
imports neither Qt nor torch: the network runs in the engine process
(:mod:`napari_res101unet.engine`), exactly as from the widgets, or in this process when
the caller passes ``in_process=True`` (torch is then imported here)::

    import napari, napari_res101unet as nr
    viewer = napari.Viewer(show=False)
    image = viewer.add_image(data, name="scan", scale=(0.8, 0.8))
    labels = nr.segment_layer(viewer, "scan", "liver")          # a Labels layer
    model = nr.train_from_layers(viewer, [("scan", "scan labels")], epochs=5)

The promises the widgets keep live here: a result layer is named after its image and
carries its scale, translate and orientation metadata; a layer the user painted on is
never overwritten (a new one is made); re-thresholding reuses kept probabilities.
Preparing a job (``*_request``) and applying its result (``apply_*``) are separate
functions so the widgets can run the job in a worker thread between the two.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import SegmentSettings, TrainSettings, models_dir
from .engine import protocol as P
from .errors import Cancelled

TAG = "napari_res101unet"
"""Key of this plugin's entry in a layer's metadata (``source``, ``edited``...)."""
GEOMETRY_KEYS = ("direction", "unit", "units", "spacing", "origin", "nifti")
Progress = Callable[[dict], None]


# ---- layers --------------------------------------------------------------------------
def get_layer(viewer: Any, layer: Any, kind: str | None = None) -> Any:
    """``layer`` itself or the layer of that name, checked to be of ``kind``."""
    if isinstance(layer, str):
        if layer not in viewer.layers:
            names = ", ".join(repr(x.name) for x in viewer.layers) or "none"
            raise ValueError(f"no layer named {layer!r} in the viewer (layers: {names})")
        layer = viewer.layers[layer]
    if layer is None:
        raise ValueError(f"no {kind or ''} layer given".replace("  ", " "))
    if kind is not None and layer_kind(layer) != kind:
        raise ValueError(f"layer {layer.name!r} is a {layer_kind(layer)} layer, not {kind}")
    return layer


def layer_kind(layer: Any) -> str:
    """``"image"``, ``"labels"``... (napari's layer class name, lower case)."""
    return layer.__class__.__name__.lower()  # also through napari's PublicOnlyProxy


def layer_array(layer: Any) -> np.ndarray:
    """The full-resolution data of a layer as a numpy array (dask/zarr computed)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.asarray(data)


def spatial_geometry(layer: Any) -> dict[str, Any]:
    """Scale and translate of a layer, for a layer drawn over it."""
    return {
        "scale": np.asarray(layer.scale).tolist(),
        "translate": np.asarray(layer.translate).tolist(),
    }


def derived_metadata(layer: Any, info: dict) -> dict[str, Any]:
    """Metadata for a layer computed from ``layer``: its geometry (so saving restores the
    direction and unit) plus this plugin's entry."""
    meta = {k: layer.metadata[k] for k in GEOMETRY_KEYS if k in layer.metadata}
    meta[TAG] = dict(info)
    return meta


def free_name(viewer: Any, name: str) -> str:
    """``name``, or ``name [2]``, ``name [3]``... whichever no layer has yet."""
    names = {layer.name for layer in viewer.layers}
    if name not in names:
        return name
    i = 2
    while f"{name} [{i}]" in names:
        i += 1
    return f"{name} [{i}]"


def is_edited(layer: Any) -> bool:
    return bool((layer.metadata.get(TAG) or {}).get("edited"))


def mark_edited(layer: Any) -> None:
    """Record that the user painted on ``layer``: it is never overwritten afterwards."""
    meta = dict(layer.metadata.get(TAG) or {})
    meta["edited"] = True
    layer.metadata[TAG] = meta


def own_layer(viewer: Any, name: str, kind: str, source: Any) -> Any:
    """Our earlier output for ``source`` if it is still ours to replace (not painted)."""
    for candidate in viewer.layers:
        meta = candidate.metadata.get(TAG) or {}
        if (
            layer_kind(candidate) == kind
            and meta.get("source") == source.name
            and not meta.get("edited")
            and candidate.name == name
        ):
            return candidate
    return None


def spatial_shape(image: Any) -> tuple[int, ...]:
    shape = tuple(image.data[0].shape if image.multiscale else image.data.shape)
    return shape[:-1] if getattr(image, "rgb", False) else shape


# ---- segment -------------------------------------------------------------------------
@dataclass
class SegmentRequest:
    """A segmentation job for one image layer (what the engine is sent, and where the
    result goes)."""

    image: Any
    data: np.ndarray
    model: str
    settings: SegmentSettings
    channel_axis: int | None
    slice_index: int | None = None

    def payload(self) -> dict[str, Any]:
        options = {
            **self.settings.as_dict(),
            "channel_axis": self.channel_axis,
            "return_probabilities": True,
        }
        return {"image": self.data, "model": self.model, "options": options, "in_channels": 3}


@dataclass
class SegmentOutcome:
    """What :func:`apply_segment_result` put into the viewer."""

    labels: Any
    probabilities: np.ndarray | None  # kept for re-thresholding (binary models only)
    summary: str
    extra: dict = field(default_factory=dict)


def model_reference(model: Any) -> str:
    """A model name or path as the engine takes it (a path, or ``untrained``)."""
    from .registry import UNTRAINED, find_model

    if model is None:
        raise ValueError("choose a model first")
    found = find_model(model)
    return UNTRAINED if found == UNTRAINED else str(found)


def segment_request(
    viewer: Any,
    layer: Any,
    model: Any,
    settings: SegmentSettings | None = None,
    *,
    current_slice: bool = False,
) -> SegmentRequest:
    """Check an image layer and build its job (raises ValueError naming the problem)."""
    if layer is None:
        raise ValueError("no image layer: open an image (File > Open, or File > Open Sample)")
    image = get_layer(viewer, layer, "image")
    reference = model_reference(model)
    data = layer_array(image)
    rgb = bool(getattr(image, "rgb", False))
    spatial = data.ndim - (1 if rgb else 0)
    if spatial not in (2, 3):
        raise ValueError(
            f"layer '{image.name}' has {spatial} spatial dimensions; Segment takes 2D images "
            "and 3D stacks (split channels or time points into separate layers first)"
        )
    index = None
    if spatial == 3 and current_slice:
        index = current_index(viewer, image, data.shape[0])
        data = data[index]
    return SegmentRequest(
        image, data, reference, settings or SegmentSettings(), -1 if rgb else None, index
    )


def current_index(viewer: Any, layer: Any, depth: int) -> int:
    """The slice of ``layer``'s first axis that the viewer shows."""
    point = layer.world_to_data(viewer.dims.point)
    return int(np.clip(round(float(point[0])), 0, depth - 1))


def apply_segment_result(
    viewer: Any, request: SegmentRequest, result: dict, *, show_probabilities: bool = False
) -> SegmentOutcome:
    """Put an engine ``segment`` result into the viewer (labels, optional probabilities)."""
    image, index = request.image, request.slice_index
    labels_layer = put_labels(viewer, image, result["labels"], index)
    probs = result.get("probabilities")
    binary = probs is not None and probs.ndim == result["labels"].ndim
    if binary and show_probabilities:
        put_probabilities(viewer, image, probs, index)
    summary = f"{result['model_name']} on {image.name}: {result['summary']}"
    return SegmentOutcome(labels_layer, probs if binary else None, summary, result)


def put_labels(viewer: Any, image: Any, labels: np.ndarray, index: int | None) -> Any:
    """Our labels layer for ``image`` updated with ``labels`` (all, or slice ``index``),
    or a new layer when there is none or the user painted on it."""
    name = f"{image.name} labels"
    target = own_layer(viewer, name, "labels", image)
    full_shape = spatial_shape(image)
    if target is not None and target.data.shape == full_shape:
        if index is None:
            target.data = labels
        else:
            target.data[index] = labels
            target.refresh()
        return target
    if index is not None:
        volume = np.zeros(full_shape, labels.dtype)
        volume[index] = labels
        labels = volume
    layer = viewer.add_labels(
        labels,
        name=free_name(viewer, name),
        metadata=derived_metadata(image, {"source": image.name}),
        **spatial_geometry(image),
    )
    layer.events.paint.connect(lambda event=None: mark_edited(layer))
    return layer


def put_probabilities(viewer: Any, image: Any, probs: np.ndarray, index: int | None) -> Any:
    """A foreground-probability image layer over ``image`` (binary models)."""
    data = probs.astype(np.float32)
    name = f"{image.name} probability"
    target = own_layer(viewer, name, "image", image)
    if index is not None:
        full = target.data if target is not None else np.zeros(spatial_shape(image), np.float32)
        full[index] = data
        data = full
    if target is not None and target.data.shape == data.shape:
        target.data = data
        return target
    return viewer.add_image(
        data,
        name=free_name(viewer, name),
        colormap="magma",
        opacity=0.5,
        contrast_limits=(0.0, 1.0),
        blending="additive",
        metadata=derived_metadata(image, {"source": image.name}),
        **spatial_geometry(image),
    )


def rethreshold(
    viewer: Any, outcome: SegmentOutcome, threshold: float, index: int | None = None
) -> bool:
    """Apply ``threshold`` to the kept probabilities; False (nothing changed) when there
    are none, the layer is gone or the user painted on it."""
    layer = outcome.labels
    if outcome.probabilities is None or layer not in viewer.layers or is_edited(layer):
        return False
    labels = (outcome.probabilities > threshold).astype(layer.data.dtype)
    if index is None:
        layer.data = labels
    else:
        layer.data[index] = labels
        layer.refresh()
    return True


def segment_layer(
    viewer: Any,
    layer: Any,
    model: Any = "untrained",
    *,
    current_slice: bool = False,
    show_probabilities: bool = False,
    in_process: bool = False,
    progress: Progress | None = None,
    **settings: Any,
) -> Any:
    """Segment an image layer and return the Labels layer (created or updated).

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    layer : Image layer or its name
    model : str or path
        A model file, a name in the model folder, or ``"untrained"``.
    current_slice : bool
        For 3D stacks: only the slice the viewer shows.
    show_probabilities : bool
        Also add a foreground-probability layer (binary models).
    in_process : bool
        Run the network in this process instead of the engine process.
    progress : callable, optional
        Called with each ``PROGRESS`` message (``{"done", "total", ...}``).
    **settings
        :class:`~napari_res101unet.config.SegmentSettings` fields.
    """
    request = segment_request(
        viewer, layer, model, SegmentSettings(**settings), current_slice=current_slice
    )
    result = run_job(P.SEGMENT, request.payload(), in_process=in_process, progress=progress)
    return apply_segment_result(
        viewer, request, result, show_probabilities=show_probabilities
    ).labels


# ---- train ---------------------------------------------------------------------------
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
            "settings": self.settings.as_dict(),
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
    from .training.pairs import check_pairs, resolve_classes

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
        "spacing": [float(s) for s in layers[0][0].scale[-2:]],
    }
    if start is not None:
        options["model"] = model_reference(start)
    if encoder_weights is not None:
        options["encoder_weights"] = str(encoder_weights)
    return TrainRequest(names, arrays, settings, options)


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
    from ._session import SESSION_MODELS

    if not result or not result.get("path"):
        return None
    path = Path(result["path"])
    SESSION_MODELS.add(path, label=path.stem, origin="trained")
    return path


def train_from_layers(
    viewer: Any,
    pairs: Sequence[tuple[Any, Any]],
    *,
    output: str | Path | None = None,
    device: str = "auto",
    start: str | Path | None = None,
    encoder_weights: str | None = None,
    in_process: bool = False,
    progress: Progress | None = None,
    **settings: Any,
) -> Path:
    """Fine-tune Res101_UNet on ``(image, labels)`` layer pairs and return the saved model.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    pairs : sequence of (image, labels)
        Layers or layer names.
    output : path, optional
        Where the model goes (default: a new file in the model folder).
    device, start, encoder_weights
        As in :func:`train_request`.
    in_process : bool
        Train in this process instead of the engine process.
    progress : callable, optional
        Called with each ``EVENT`` message (``msg["event"]`` is a training event dict).
    **settings
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
        TrainSettings(**settings),
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


# ---- running a job -------------------------------------------------------------------
def run_job(
    op: str, payload: dict, *, in_process: bool = False, progress: Progress | None = None
) -> Any:
    """Run an engine operation and return its result: in the engine process (as the
    widgets do), or here with the same code when ``in_process``."""
    report = progress or (lambda msg: None)
    if in_process:
        from .engine.ops import OPS, JobContext

        job = JobContext(0, report, lambda: False)
        return OPS[op](P.request(op, 0, **payload), job)
    from .engine.client import get_engine

    job = get_engine(op).submit(op, **payload)
    for msg in job:
        report(msg)
    if job.cancelled:
        raise Cancelled(f"the engine's {op} job was cancelled")
    return job.result
