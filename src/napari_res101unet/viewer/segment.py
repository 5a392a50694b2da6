"""Segmenting an image layer: the request, the result put into layers, re-thresholding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BlockwiseSettings, SegmentSettings, settings_with, split_fields
from ..engine import protocol as P
from .corrections import track_corrections
from .jobs import Progress, model_reference, run_job
from .layers import (
    TAG,
    derived_metadata,
    free_name,
    get_layer,
    is_edited,
    layer_array,
    mark_edited,
    own_layer,
    put_map,
    record_model,
    spatial_geometry,
    spatial_shape,
)


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
    uncertainty: bool = False
    spacing: list[float] | None = None  # in plane, from the layer when known
    pixel_size: float | None = None  # given by the user (wins over spacing)

    def payload(self) -> dict[str, Any]:
        options = {
            "channel_axis": self.channel_axis,
            "return_probabilities": True,
            "return_uncertainty": self.uncertainty,
            "spacing": self.spacing,
            "pixel_size": self.pixel_size,
        }
        return {"image": self.data, "model": self.model, "settings": self.settings,
                "options": options, "in_channels": 3}  # fmt: skip


@dataclass
class SegmentOutcome:
    """What :func:`apply_segment_result` put into the viewer."""

    labels: Any
    probabilities: np.ndarray | None  # kept for re-thresholding (binary models only)
    summary: str
    extra: dict = field(default_factory=dict)


def segment_request(
    viewer: Any,
    layer: Any,
    model: Any,
    settings: SegmentSettings | None = None,
    *,
    current_slice: bool = False,
    uncertainty: bool = False,
    pixel_size: float | None = None,
) -> SegmentRequest:
    """Check an image layer and build its job (raises ValueError naming the problem).

    ``uncertainty`` also asks for the uncertainty map (see :mod:`.review`);
    ``pixel_size`` (in the layer's unit) overrides the layer's spacing; 0/None: the
    layer's scale when known (see :func:`~napari_res101unet.viewer.layers.known_spacing`).
    """
    from ..preprocess.spacing import check_pixel_size
    from .layers import known_spacing

    if pixel_size is not None and pixel_size != 0:
        check_pixel_size(pixel_size)
    else:
        pixel_size = None
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
        image, data, reference, settings or SegmentSettings(), -1 if rgb else None, index,
        spacing=known_spacing(image), pixel_size=pixel_size, uncertainty=bool(uncertainty),
    )  # fmt: skip


def current_index(viewer: Any, layer: Any, depth: int) -> int:
    """The slice of ``layer``'s first axis that the viewer shows."""
    point = layer.world_to_data(viewer.dims.point)
    return int(np.clip(round(float(point[0])), 0, depth - 1))


def apply_segment_result(
    viewer: Any, request: SegmentRequest, result: dict, *, show_probabilities: bool = False
) -> SegmentOutcome:
    """Put an engine ``segment`` result into the viewer (labels, optional probabilities)."""
    image, index = request.image, request.slice_index
    objects = request.settings.instances
    labels_layer = put_labels(viewer, image, result["labels"], index, objects=objects)
    record_model(labels_layer, result)
    labels_layer.metadata[TAG] = {**labels_layer.metadata[TAG], "model": request.model}
    probs = result.get("probabilities")
    # objects are not re-thresholded (the ids would need a new watershed): no probabilities kept
    binary = probs is not None and probs.ndim == result["labels"].ndim and not objects
    if binary and show_probabilities:
        put_probabilities(viewer, image, probs, index)
    summary = f"{result['model_name']} on {image.name}: {result['summary']}"
    if result.get("uncertainty") is not None:
        from .review import show_uncertainty

        shown = show_uncertainty(viewer, image, result["uncertainty"], result["labels"], index)
        result = {**result, "review": shown[0], "review_by": shown[1]}
        summary += f"; {shown[2]}" if shown[2] else ""
    return SegmentOutcome(labels_layer, probs if binary else None, summary, result)


def put_labels(
    viewer: Any, image: Any, labels: np.ndarray, index: int | None, *, objects: bool = False
) -> Any:
    """Our labels layer for ``image`` updated with ``labels`` (all, or slice ``index``),
    or a new layer when there is none or the user painted on it. ``objects``: the labels
    are object ids, shown as the layer ``"<image> objects"``."""
    name = f"{image.name} {'objects' if objects else 'labels'}"
    target = own_layer(viewer, name, "labels", image)
    full_shape = spatial_shape(image)
    fits = target is not None and (index is None or np.can_cast(labels.dtype, target.data.dtype))
    if fits and target.data.shape == full_shape:
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
    track_corrections(layer)
    return layer


def put_probabilities(viewer: Any, image: Any, probs: np.ndarray, index: int | None) -> Any:
    """A foreground-probability image layer over ``image`` (binary models)."""
    return put_map(viewer, image, probs, index, "probability", opacity=0.5, blending="additive")


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
    settings: SegmentSettings | None = None,
    *,
    current_slice: bool = False,
    show_probabilities: bool = False,
    show_uncertainty: bool = False,
    in_process: bool = False,
    progress: Progress | None = None,
    pixel_size: float | None = None,
    output: str | Path | None = None,
    **fields: Any,
) -> Any:
    """Segment an image layer and return the Labels layer (created or updated).

    With ``instances=True`` the layer ``"<image> objects"`` holds one id per object
    (uint16, uint32 above 65,535; multi-class models: objects per class; 3D: in 3D, or
    ``per_slice=True``); see :func:`~napari_res101unet.segment`.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    layer : Image layer or its name
    model : str or path
        A model file, a name in the model folder, or ``"untrained"``.
    settings : SegmentSettings, optional
        How to segment (the defaults when None); its fields may also be given as keyword
        arguments, which win.
    current_slice : bool
        For 3D stacks: only the slice the viewer shows.
    show_probabilities : bool
        Also add a foreground-probability layer (binary models).
    show_uncertainty : bool
        Also add an uncertainty layer (``"<image> uncertainty"``) and rank slices/regions
        by it: the ranking is ``layer.metadata["napari_res101unet"]["review"]``.
    in_process : bool
        Run the network in this process instead of the engine process.
    progress : callable, optional
        Called with each ``PROGRESS`` message (``{"done", "total", ...}``).
    pixel_size : float, optional
        In-plane pixel size of the image (for PNG/JPEG, whose spacing is unknown); the
        image is resampled to the model's spacing when they differ.
    output : path, optional
        Lazy (dask, zarr, multiscale) layers only: the zarr labels store to write (default:
        a new temporary folder).
    **fields
        :class:`~napari_res101unet.config.SegmentSettings` fields, and for lazy layers
        :class:`~napari_res101unet.config.BlockwiseSettings` fields (``block_size``).
    """
    from .segment_lazy import is_lazy_layer, segment_lazy_layer

    segment_fields, block_fields = split_fields(fields, SegmentSettings, BlockwiseSettings)
    s = settings_with(SegmentSettings, settings, segment_fields)
    if not current_slice and is_lazy_layer(get_layer(viewer, layer, "image")):
        return segment_lazy_layer(  # block by block, never loaded whole (segment_lazy.py)
            viewer, layer, model, s, BlockwiseSettings(**block_fields), output=output,
            in_process=in_process, progress=progress, show_probabilities=show_probabilities,
        )  # fmt: skip
    if block_fields or output is not None:
        given = ", ".join([*block_fields, *(["output"] if output is not None else [])])
        raise TypeError(f"{given} apply to lazy (dask, zarr, multiscale) layers only")
    request = segment_request(
        viewer,
        layer,
        model,
        s,
        current_slice=current_slice,
        uncertainty=show_uncertainty,
        pixel_size=pixel_size,
    )
    result = run_job(P.SEGMENT, request.payload(), in_process=in_process, progress=progress)
    outcome = apply_segment_result(viewer, request, result, show_probabilities=show_probabilities)
    if "review" in outcome.extra:
        items = [vars(item) for item in outcome.extra["review"]]
        outcome.labels.metadata[TAG] = {**outcome.labels.metadata[TAG], "review": items}
    return outcome.labels
