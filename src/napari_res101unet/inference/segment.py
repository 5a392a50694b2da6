"""Tiled, blended, memory-bounded prediction with Res101_UNet (or any injected predictor)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import SegmentSettings, settings_with
from ..device import (
    describe_device,
    fixed_shape_kernels,
    free_memory,
    precision_name,
    resolve_device,
)
from ..errors import DeviceFailure, device_failure, is_device_failure
from ..model import ModelSpec
from ..preprocess.adapt import adapt_input
from ..preprocess.normalize import as_stack, make_normalizer
from .forward import Forward, OutOfMemory, compiled_module, inference_module
from .pipeline import transfers_for
from .tile_loop import TileLoop
from .tiling import CPU_COST, GPU_COST, MIN_TILE, TilePlan, plan_tiles
from .uncertainty import entropy_map

BYTES_PER_PIXEL_FP32 = 480.0
"""Activation memory of a Res101_UNet forward per input pixel (measured, float32, CPU)."""
BYTES_PER_PIXEL_MIXED = 300.0
CPU_BUDGET_CAP = 1 << 30
"""Activation budget cap on the CPU: bigger tiles are not faster there (see CostModel)."""


@dataclass
class SegmentationResult:
    """Labels and what produced them.

    Attributes
    ----------
    labels : ndarray
        Integer labels with the image's spatial shape (uint8, or uint16 for > 255 classes);
        with ``instances``, object ids (uint16, uint32 above 65,535 objects).
    probabilities : ndarray or None
        Foreground probability (spatial shape) for binary models; ``(classes, *spatial)``
        for multi-class models; None unless requested.
    uncertainty : ndarray or None
        Normalised entropy of the probabilities, in [0, 1], of the labels' shape (see
        :mod:`~napari_res101unet.inference.uncertainty`); None unless requested.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    plan: TilePlan
    device: str
    precision: str
    normalization: str
    seconds: float
    class_names: list[str]
    notes: list[str] = field(default_factory=list)
    uncertainty: np.ndarray | None = None
    settings: SegmentSettings | None = None
    """The settings the labels were made with."""

    def summary(self) -> str:
        """One line for logs and the widget: device, precision, plan, time."""
        extra = f"; {', '.join(self.notes)}" if self.notes else ""
        return (
            f"{self.device}, {self.precision}; {self.plan.describe()}; {self.seconds:.1f} s{extra}"
        )


def segment(
    image: Any,
    model: Any,
    settings: SegmentSettings | None = None,
    *,
    return_probabilities: bool = False,
    return_uncertainty: bool = False,
    **options: Any,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Segment an image with Res101_UNet.

    Parameters
    ----------
    image : (Y, X), (Y, X, C), (Z, Y, X) or (Z, Y, X, C) array-like
        Any numeric dtype; stacks are segmented slice by slice along ``axis``.
    model : torch.nn.Module, path or callable
        A model from :func:`build_model`/:func:`load_model`, a checkpoint path, or any
        callable mapping a ``(B, C, Y, X)`` float tensor to ``(B, K, Y, X)`` logits.
    settings : SegmentSettings, optional
        How to segment (tiles, overlap, device, TTA, threshold, blending, precision); the
        defaults when None. Its fields may also be given as keyword arguments
        (``segment(image, model, tile_size=512)``), which override ``settings``.
    return_probabilities : bool
        Also return probabilities (see :class:`SegmentationResult`).
    return_uncertainty : bool
        Also return a per-pixel uncertainty map: the normalised entropy (0 sure, 1 classes
        equally likely) of the same blended (TTA-averaged when ``tta``) probabilities, so
        no second pass; rank it with :func:`~napari_res101unet.rank_uncertain`.
    **options
        The keyword arguments of :func:`run_segmentation`: the
        :class:`~napari_res101unet.config.SegmentSettings` fields (``tile_size``,
        ``overlap``, ``batch_size``, ``device``, ``tta``, ``threshold``, ``blending``,
        ``mixed_precision``, ``instances``, ``instance_method``, ``per_slice``,
        ``min_object_size``, ``fill_holes``), ``axis`` (slice axis of 3D stacks, default 0),
        ``progress(done, total)`` (after each batch of tiles), ``should_stop()`` (checked
        between batches; True raises :class:`Cancelled`), ``channel_axis``, ``normalization``,
        ``memory_budget``, ``optimize``, ``compile_model`` and ``blend_on_device``;
        ``spacing`` (the image's, per spatial axis) and ``pixel_size`` (in-plane, a number
        or ``(y, x)``; wins over ``spacing``): an image whose spacing differs from the
        model's is resampled to it and back (:mod:`~napari_res101unet.preprocess.spacing`).

        ``instances=True`` gives one id per object instead of one value per class:
        uint16 labels, uint32 above 65,535 objects. A model with an instance head
        (``spec.instance_head``) splits touching objects by what it learned (the contour
        class of a boundary head, the distance bins of a distance head); others by the
        distance-transform watershed (``instance_method="components"``: connected
        components). Multi-class models give objects per class, ids unique over all
        classes. 3D stacks: objects in 3D, or per slice with ``per_slice=True``. Objects
        below ``min_object_size`` pixels are dropped (None: the size the model learned
        from its training objects, 0 when it records none); holes are filled
        (``fill_holes``).

    Returns
    -------
    labels : ndarray
        Integer labels of the image's spatial shape; with ``return_probabilities`` a tuple
        ``(labels, probabilities)``; with ``return_uncertainty`` the map comes last:
        ``(labels, uncertainty)`` or ``(labels, probabilities, uncertainty)``.
    """
    result = run_segmentation(
        image,
        model,
        settings,
        return_probabilities=return_probabilities,
        return_uncertainty=return_uncertainty,
        **options,
    )
    out = (result.labels,)
    if return_probabilities:
        out += (result.probabilities,)
    if return_uncertainty:
        out += (result.uncertainty,)
    return out if len(out) > 1 else result.labels


def run_segmentation(
    image: Any,
    model: Any,
    settings: SegmentSettings | None = None,
    *,
    return_probabilities: bool = False,
    return_uncertainty: bool = False,
    axis: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    channel_axis: int | str | None = "auto",
    normalization: str | dict | None = None,
    spacing: Any = None,
    pixel_size: Any = None,
    memory_budget: float | None = None,
    optimize: bool = True,
    compile_model: bool = False,
    blend_on_device: bool | None = None,
    **fields: Any,
) -> SegmentationResult:
    """:func:`segment`, returning a :class:`SegmentationResult` with what was used.

    ``settings`` and ``**fields`` (its fields as keywords, which win) make the one
    :class:`~napari_res101unet.config.SegmentSettings` of the run; the result keeps it.
    Two options are for benchmarks and tests: ``compile_model`` runs the network through
    ``torch.compile`` (off by default: unmeasured on GPUs); ``blend_on_device`` blends the
    tiles on the model's device (True), on the CPU (False) or, by default (None), on the
    device when it is CUDA and the slice fits in its free memory.
    """
    start = time.perf_counter()
    if isinstance(fields.get("device"), torch.device):
        fields["device"] = str(fields["device"])
    s = settings_with(SegmentSettings, settings, fields)
    dev = resolve_device(s.device)
    model, spec, predictor = _resolve_model(model, image, channel_axis, normalization)
    view = as_stack(
        image, channel_axis=channel_axis, axis=0 if axis is None else axis, allow_nan=True
    )
    data, grid, adapted = adapt_input(
        view, spec, spacing=spacing, pixel_size=pixel_size, axis=0 if axis is None else axis
    )
    normalizer = make_normalizer(data, spec.normalization, spec.in_channels)
    mixed = s.mixed_precision and dev.type == "cuda"
    if isinstance(predictor, torch.nn.Module):
        predictor = inference_module(predictor, dev, optimize)
        if compile_model:
            predictor = compiled_module(predictor)
    bpp = (BYTES_PER_PIXEL_MIXED if mixed else BYTES_PER_PIXEL_FP32) if model is not None else 64.0
    budget = memory_budget or _budget(dev)
    plan = plan_tiles(
        data.shape[1:3],
        data.shape[0],
        budget_bytes=budget,
        bytes_per_pixel=bpp,
        tile_size=s.tile_size,
        overlap=s.overlap,
        batch_size=s.batch_size,
        blending=s.blending,
        cost=GPU_COST if dev.type == "cuda" else CPU_COST,
    )
    forward = Forward(predictor, dev, mixed, s.tta)
    want_probs = return_probabilities or return_uncertainty
    loop = TileLoop(data, normalizer, forward, spec, s.threshold, want_probs, transfers_for(dev))
    loop.blend_on_device, loop.free_bytes = blend_on_device, _blend_budget(dev, blend_on_device)
    notes = [*adapted, "tta" if s.tta else "", _nan_note(view.nan_count)]
    with fixed_shape_kernels(dev):
        labels, probs, plan = _run(loop, plan, budget, bpp, progress, should_stop, notes, dev)
    if s.instances:  # on the model's pixel grid, where its learned object size holds
        labels = _objects(labels, s, spec, view.slice_axis is None, notes)
    if grid is not None:  # back to the input's pixel grid
        labels = grid.labels(labels)
        probs = None if probs is None else grid.probabilities(probs)
    labels = view.restore(labels)
    if probs is not None:
        probs = view.restore(probs)
        if probs.ndim > labels.ndim:
            probs = np.moveaxis(probs, -1, 0)
    uncertainty = entropy_map(probs, labels.ndim) if return_uncertainty else None
    return SegmentationResult(
        labels=labels,
        probabilities=probs if return_probabilities else None,
        plan=plan,
        device=describe_device(dev),
        precision=precision_name(dev, mixed),
        normalization=normalizer.describe(),
        seconds=time.perf_counter() - start,
        class_names=list(spec.class_names),
        notes=[n for n in notes if n],
        uncertainty=uncertainty,
        settings=s,
    )


def _objects(labels, s: SegmentSettings, spec: ModelSpec, flat: bool, notes: list) -> np.ndarray:
    """The ``(N, Y, X)`` class labels as object ids (a 2D image: ``N == 1``, done in 2D)."""
    from ..postprocess.objects import objects_from_labels

    objects, note = objects_from_labels(labels[0] if flat else labels, s, spec)
    notes.append(note)
    return objects[None] if flat else objects


def _nan_note(count: int) -> str:
    return f"{count} NaN pixels read as the mean intensity" if count else ""


def _resolve_model(model, image, channel_axis, normalization) -> tuple[Any, ModelSpec, Any]:
    """``(module or None, spec, predictor)`` for a module, a checkpoint path or a callable."""
    if isinstance(model, (str, os.PathLike)):
        from ..registry import open_model

        model = open_model(model)
    spec = getattr(model, "spec", None)
    if isinstance(model, torch.nn.Module) and isinstance(spec, ModelSpec):
        if normalization is not None:
            spec = ModelSpec.from_dict({**spec.to_dict(), "normalization": _norm(normalization)})
        return model, spec, model
    if not callable(model):
        raise TypeError(
            f"model must be a Res101_UNet module, a checkpoint path or a callable; "
            f"got {type(model).__name__}"
        )
    channels = as_stack(image, channel_axis=channel_axis, allow_nan=True).slices.shape[-1]
    spec = ModelSpec(in_channels=channels, normalization=_norm(normalization or "none"))
    return None, spec, model


def _norm(value: str | dict) -> dict:
    return {"mode": value} if isinstance(value, str) else dict(value)


def _budget(dev: torch.device) -> float:
    free = free_memory(dev)
    if dev.type == "cuda":
        return 0.6 * free
    return min(0.25 * free, CPU_BUDGET_CAP)


def _blend_budget(dev: torch.device, blend_on_device: bool | None) -> float:
    """Free bytes on the device that device-side blending may plan with."""
    if dev.type == "cuda" or blend_on_device:
        return float(free_memory(dev))
    return 0.0


def _run(loop: TileLoop, plan: TilePlan, budget, bpp, progress, should_stop, notes, dev):
    """Run the tile loop, retrying with smaller plans while the device runs out of memory; a
    failing GPU becomes a :class:`~napari_res101unet.errors.DeviceFailure`."""
    first = plan
    while True:
        try:
            labels, probs = loop.run(plan, progress, should_stop)
            break
        except OutOfMemory:
            plan = _smaller(plan, budget, bpp)
        except DeviceFailure:
            raise
        except RuntimeError as exc:
            if is_device_failure(exc):
                raise device_failure(exc, str(dev)) from exc
            if "out of memory" not in str(exc).lower():
                raise
            # out of memory outside the forward pass (copies, blending on the device):
            # retry smaller, and blend on the CPU unless told otherwise
            if loop.blend_on_device is None:
                loop.blend_on_device = False
            plan = _smaller(plan, budget, bpp)
    if plan != first:
        notes.append(f"out of device memory with {first.tile[0]}x{first.tile[1]} tiles in "
                     f"batches of {first.batch_size}: retried smaller")  # fmt: skip
    return labels, probs, plan


def _smaller(plan: TilePlan, budget: float, bpp: float) -> TilePlan:
    """The plan to retry with after running out of device memory."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if plan.batch_size > 1:
        batch, tile = plan.batch_size // 2, plan.tile
    elif max(plan.tile) > MIN_TILE:
        batch, tile = 1, tuple(max(MIN_TILE, t // 2) for t in plan.tile)
    else:
        raise MemoryError(
            f"out of device memory even with {plan.tile[0]}x{plan.tile[1]} tiles one at a "
            "time; free memory on the device or use device='cpu'"
        ) from None
    return plan_tiles(
        plan.shape,
        plan.n_slices,
        budget_bytes=budget,
        bytes_per_pixel=bpp,
        tile_size=tile,
        overlap=plan.overlap,
        batch_size=batch,
        blending=plan.blending,
    )
