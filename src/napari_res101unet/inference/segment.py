"""Tiled, blended, memory-bounded prediction with Res101_UNet (or any injected predictor)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import SegmentSettings
from ..device import describe_device, free_memory, precision_name, resolve_device
from ..errors import Cancelled
from ..model import ModelSpec
from .blending import SliceAccumulator, extract_tile
from .data import adapt_channels, as_stack, make_normalizer
from .forward import Forward, OutOfMemory, inference_module
from .tiling import CPU_COST, GPU_COST, MIN_TILE, TilePlan, plan_tiles

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
        Integer labels with the image's spatial shape (uint8, or uint16 for > 255 classes).
    probabilities : ndarray or None
        Foreground probability (spatial shape) for binary models; ``(classes, *spatial)``
        for multi-class models; None unless requested.
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

    def summary(self) -> str:
        """One line for logs and the widget: device, precision, plan, time."""
        extra = f"; {', '.join(self.notes)}" if self.notes else ""
        return (
            f"{self.device}, {self.precision}; {self.plan.describe()}; {self.seconds:.1f} s{extra}"
        )


_S = SegmentSettings()


def segment(
    image: Any, model: Any, *, return_probabilities: bool = False, **options: Any
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Segment an image with Res101_UNet.

    Parameters
    ----------
    image : (Y, X), (Y, X, C), (Z, Y, X) or (Z, Y, X, C) array-like
        Any numeric dtype; stacks are segmented slice by slice along ``axis``.
    model : torch.nn.Module, path or callable
        A model from :func:`build_model`/:func:`load_model`, a checkpoint path, or any
        callable mapping a ``(B, C, Y, X)`` float tensor to ``(B, K, Y, X)`` logits.
    return_probabilities : bool
        Also return probabilities (see :class:`SegmentationResult`).
    **options
        The keyword arguments of :func:`run_segmentation`: the
        :class:`~napari_res101unet.config.SegmentSettings` fields (``tile_size``,
        ``overlap``, ``batch_size``, ``device``, ``tta``, ``threshold``, ``blending``,
        ``mixed_precision``; ``segment(image, model, **settings.as_dict())`` passes a whole
        one), ``axis`` (slice axis of 3D stacks, default 0), ``progress(done, total)``
        (after each batch of tiles), ``should_stop()`` (checked between batches; True
        raises :class:`Cancelled`), ``channel_axis``, ``normalization``,
        ``memory_budget`` and ``optimize``.

    Returns
    -------
    labels : ndarray
        Integer labels of the image's spatial shape; with ``return_probabilities`` a tuple
        ``(labels, probabilities)``.
    """
    result = run_segmentation(image, model, return_probabilities=return_probabilities, **options)
    if return_probabilities:
        return result.labels, result.probabilities
    return result.labels


def run_segmentation(
    image: Any,
    model: Any,
    *,
    tile_size: int | None = _S.tile_size,
    overlap: float = _S.overlap,
    batch_size: int | None = _S.batch_size,
    device: str | torch.device = _S.device,
    tta: bool = _S.tta,
    return_probabilities: bool = False,
    axis: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threshold: float = _S.threshold,
    blending: str = _S.blending,
    channel_axis: int | str | None = "auto",
    normalization: str | dict | None = None,
    memory_budget: float | None = None,
    optimize: bool = True,
    mixed_precision: bool = _S.mixed_precision,
) -> SegmentationResult:
    """:func:`segment`, returning a :class:`SegmentationResult` with what was used."""
    start = time.perf_counter()
    s = SegmentSettings(
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        device=str(device),
        tta=tta,
        threshold=threshold,
        blending=blending,
        mixed_precision=mixed_precision,
    )
    dev = resolve_device(s.device)
    model, spec, predictor = _resolve_model(model, image, channel_axis, normalization)
    view = as_stack(
        image, channel_axis=channel_axis, axis=0 if axis is None else axis, allow_nan=True
    )
    data, note = adapt_channels(view.slices, spec.in_channels)
    normalizer = make_normalizer(data, spec.normalization, spec.in_channels)
    mixed = s.mixed_precision and dev.type == "cuda"
    if isinstance(predictor, torch.nn.Module):
        predictor = inference_module(predictor, dev, optimize)
    bpp = (BYTES_PER_PIXEL_MIXED if mixed else BYTES_PER_PIXEL_FP32) if model is not None else 64.0
    budget = memory_budget or _budget(dev)
    plan = plan_tiles(
        view.slices.shape[1:3],
        view.slices.shape[0],
        budget_bytes=budget,
        bytes_per_pixel=bpp,
        tile_size=s.tile_size,
        overlap=s.overlap,
        batch_size=s.batch_size,
        blending=s.blending,
        cost=GPU_COST if dev.type == "cuda" else CPU_COST,
    )
    forward = Forward(predictor, dev, mixed, s.tta)
    job = _Job(data, normalizer, forward, spec, s.threshold, return_probabilities)
    while True:
        try:
            labels, probs = job.run(plan, progress, should_stop)
            break
        except OutOfMemory:
            plan = _smaller(plan, budget, bpp)
    labels = view.restore(labels)
    if probs is not None:
        probs = view.restore(probs)
        if probs.ndim > labels.ndim:
            probs = np.moveaxis(probs, -1, 0)
    return SegmentationResult(
        labels=labels,
        probabilities=probs,
        plan=plan,
        device=describe_device(dev),
        precision=precision_name(dev, mixed),
        normalization=normalizer.describe(),
        seconds=time.perf_counter() - start,
        class_names=list(spec.class_names),
        notes=[n for n in (note, "tta" if s.tta else "", _nan_note(view.nan_count)) if n],
    )


def _nan_note(count: int) -> str:
    return f"{count} NaN pixels read as the mean intensity" if count else ""


def _resolve_model(model, image, channel_axis, normalization) -> tuple[Any, ModelSpec, Any]:
    """``(module or None, spec, predictor)`` for a module, a checkpoint path or a callable."""
    if isinstance(model, (str, os.PathLike)):
        from ..checkpoint import load_model

        model = load_model(Path(model))
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


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


@dataclass
class _Job:
    """One image's data and how to predict it; :meth:`run` follows a plan."""

    data: np.ndarray
    normalizer: Any
    forward: Forward
    spec: ModelSpec
    threshold: float
    want_probs: bool

    def run(self, plan: TilePlan, progress, should_stop):
        data, spec = self.data, self.spec
        n, height, width = data.shape[:3]
        labels = np.zeros((n, height, width), np.uint8 if spec.n_labels <= 256 else np.uint16)
        probs: np.ndarray | None = None
        windows = plan.windows()
        accs: dict[int, SliceAccumulator] = {}
        done, total = 0, plan.total_tiles
        jobs = ((s, i, y, x) for s in range(n) for i, (y, x) in enumerate(windows))
        for batch in _chunks(jobs, plan.batch_size):
            if should_stop is not None and should_stop():
                raise Cancelled("segmentation cancelled")
            tiles = np.stack([extract_tile(data[s], y, x, plan.tile) for s, _, y, x in batch])
            out = self.forward(self.normalizer(tiles))
            if self.want_probs and probs is None:
                k = out.shape[1]
                probs = np.zeros((n, height, width) + ((k,) if k > 1 else ()), np.float32)
            for (s, i, y, x), tile_out in zip(batch, out):
                if s not in accs:
                    emit = _emitter(labels[s], probs, s, self.threshold)
                    accs[s] = SliceAccumulator(plan, out.shape[1], emit)
                accs[s].add(y, x, tile_out)
                if i == len(windows) - 1:
                    accs.pop(s).finish()
            done += len(batch)
            if progress is not None:
                progress(done, total)
        return labels, probs


def _emitter(labels: np.ndarray, probs: np.ndarray | None, s: int, threshold: float):
    def emit(r0: int, r1: int, p: np.ndarray) -> None:
        if p.shape[0] == 1:
            labels[r0:r1] = p[0] > threshold
            if probs is not None:
                probs[s, r0:r1] = p[0]
        else:
            labels[r0:r1] = np.argmax(p, axis=0)
            if probs is not None:
                probs[s, r0:r1] = np.moveaxis(p, 0, -1)

    return emit
