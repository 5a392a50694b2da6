"""Fine-tune on corrections from layers: the request, and the refined labels put back.

The user segmented an image, painted fixes on its labels layer (tracked by
:mod:`.corrections`) and asks for a refined model: :func:`refine_request` checks it all
in napari's process (no torch), the engine runs
:func:`~napari_res101unet.training.refine.refine`, and :func:`apply_refine_result` adds
the refined labels as a new layer (the painted one is never overwritten) and offers the
new model in the Segment list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RefineSettings, SegmentSettings, settings_with, split_fields
from ..engine import protocol as P
from ..training.corrected import NO_EDITS, check_shapes, confirmed_area, edited_mask
from ..training.corrected import training_target as _target
from .corrections import corrections, track_corrections
from .jobs import Progress, run_job
from .layers import TAG, derived_metadata, free_name, get_layer, layer_array, mark_edited
from .layers import spatial_geometry as _geometry
from .segment import model_reference
from .train import apply_train_result, resolve_pairs, unique_model_path


@dataclass
class RefineRequest:
    """A refine job: the image, the corrected labels, what was painted, the model."""

    image: Any
    labels_layer: Any
    data: np.ndarray
    labels: np.ndarray
    edited: np.ndarray
    edits: int
    model: str
    settings: RefineSettings
    segment: SegmentSettings
    output: str
    pairs: list = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "image": self.data,
            "labels": self.labels,
            "edited": self.edited,
            "model": self.model,
            "settings": self.settings,
            "segment_settings": self.segment,
            "output": self.output,
            "pairs": self.pairs,
            "in_channels": 3,
        }

    def correction_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """``(image, labels)`` of this turn's corrections (``SPARSE_IGNORE`` elsewhere), to
        pass as an earlier pair to the next turn."""
        area = confirmed_area(self.edited, self.settings.confirm, self.settings.margin)
        return self.data, _target(self.labels, area)


@dataclass
class RefineOutcome:
    """What :func:`apply_refine_result` did."""

    labels: Any
    path: Path | None
    summary: str
    record: dict


def refine_request(
    viewer: Any,
    labels: Any,
    model: Any = None,
    settings: RefineSettings | None = None,
    *,
    image: Any = None,
    edited: Any = None,
    pairs: Sequence[tuple[Any, Any]] = (),
    output: str | Path | None = None,
    segment: SegmentSettings | None = None,
    **fields: Any,
) -> RefineRequest:
    """Check a labels layer's corrections and build the refine job.

    ``model`` defaults to the one that made the labels, ``image`` to the layer they were
    segmented from, ``edited`` to the edits tracked on the layer. ``settings`` (a
    :class:`~napari_res101unet.config.RefineSettings`) is the turn; ``segment`` how the
    rest is segmented again, on its device (where the training runs too). ``**fields``:
    fields of either (``minutes=2``, ``device="cpu"``; a name both have, ``batch_size``,
    is the refinement's). Raises ValueError naming the problem (no edits, another shape,
    no image) before anything runs.
    """
    refine_fields, segment_fields = split_fields(fields, RefineSettings, SegmentSettings)
    s = settings_with(RefineSettings, settings, refine_fields)
    seg = settings_with(SegmentSettings, segment, segment_fields)
    layer = get_layer(viewer, labels, "labels")
    meta = layer.metadata.get(TAG) or {}
    image = image if image is not None else meta.get("source")
    if image is None:
        raise ValueError(
            f"labels layer {layer.name!r} was not segmented here: pass the image it labels"
        )
    image = get_layer(viewer, image, "image")
    model = model if model is not None else meta.get("model")
    data, lab = layer_array(image), layer_array(layer)
    check_shapes(data, lab)
    if edited is None:
        edited = corrections(layer)
        if edited is None:
            raise ValueError(NO_EDITS)
    mask, edits = edited_mask(edited, lab.shape)
    confirmed_area(mask, s.confirm, s.margin)  # checks both
    earlier = [
        p if isinstance(p[0], np.ndarray) else tuple(layer_array(x) for x in p)
        for p in _resolve(viewer, pairs)
    ]
    ref = model_reference(model)
    _check_classes(layer, lab, mask, ref)
    out = str(output or unique_model_path(f"{image.name}-refined"))
    return RefineRequest(image, layer, data, lab, mask, edits, ref, s, seg, out, earlier)


def _check_classes(layer: Any, labels: np.ndarray, mask: np.ndarray, model: str) -> None:
    """Painted values must be classes of the model (read from its header, no torch)."""
    from ..registry import UNTRAINED, describe_model

    n = 2 if model == UNTRAINED else len(describe_model(model).classes)
    top = int(labels[mask].max(initial=0))
    if n and top >= n:
        raise ValueError(
            f"label {top} was painted on {layer.name!r}, but the model has {n} classes "
            f"(label values 0..{n - 1}); paint with one of those"
        )


def _resolve(viewer: Any, pairs: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    arrays = [p for p in pairs if isinstance(p[0], np.ndarray)]
    layers = [p for p in pairs if not isinstance(p[0], np.ndarray)]
    return arrays + (resolve_pairs(viewer, layers) if layers else [])


def apply_refine_result(viewer: Any, request: RefineRequest, result: dict) -> RefineOutcome:
    """Add the refined labels as a new layer over the image and register the model."""
    image, old = request.image, request.labels_layer
    name = free_name(viewer, f"{image.name} refined")
    meta = derived_metadata(image, {"source": image.name, "model": result.get("path")})
    meta[TAG].update({"class_names": result.get("class_names"), "refined_from": old.name})
    layer = viewer.add_labels(
        np.asarray(result["labels"]).astype(old.data.dtype, copy=False),
        name=name,
        metadata=meta,
        **_geometry(old),
    )
    layer.events.paint.connect(lambda event=None: mark_edited(layer))
    track_corrections(layer)
    path = apply_train_result(result)
    record = result.get("record") or {}
    saved = f"; model saved as {path.name}" if path else ""
    summary = (
        f"Fine-tuned {result.get('model_name')} on {record.get('corrected_pixels', 0):,} "
        f"corrected pixels in {result.get('seconds', 0):.0f} s{saved}; '{layer.name}' keeps "
        "every painted pixel"
    )
    return RefineOutcome(layer, path, summary, record)


def refine_layer(
    viewer: Any,
    labels: Any,
    model: Any = None,
    *,
    in_process: bool = False,
    progress: Progress | None = None,
    **options: Any,
) -> Any:
    """Fine-tune on the corrections painted on ``labels`` and return the refined layer.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    labels : Labels layer or its name
        Segmented here (by :func:`segment_layer` or the Segment widget), then painted on.
    model : str or path, optional
        Default: the model that made the labels.
    in_process : bool
        Train in this process instead of the engine process.
    progress : callable, optional
        Called with each ``EVENT`` message of the training.
    **options
        Of :func:`refine_request`: ``settings``, ``image``, ``edited``, ``pairs``,
        ``output``, ``segment``, and fields of
        :class:`~napari_res101unet.config.RefineSettings` (``minutes``, ``confirm``,
        ``margin``, training values) or :class:`~napari_res101unet.config.SegmentSettings`
        (``device``, ``threshold``...).

    Returns
    -------
    Labels layer
        ``"<image> refined"``: the painted pixels kept, the rest re-segmented by the new
        model (saved under a new name and added to the session's model list).
    """
    request = refine_request(viewer, labels, model, **options)
    result = run_job(P.REFINE, request.payload(), in_process=in_process, progress=progress)
    return apply_refine_result(viewer, request, result).labels
