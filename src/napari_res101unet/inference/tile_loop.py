"""The tile loop of one image: cut, normalise, predict, blend, emit labels.

:meth:`TileLoop.run` follows a :class:`~.tiling.TilePlan`. With :class:`~.pipeline.Inline`
transfers (the CPU) each batch is cut, predicted and blended in turn, in this thread. With
:class:`~.pipeline.Streamed` transfers (CUDA) the next batch is prepared and copied in
while the device runs the current one, and the device's work is waited for one batch late.
Blending happens on the host (:class:`~.blending.SliceAccumulator`) or on the predictor's
device (:class:`~.device_blend.TorchAccumulator`) when the slice fits there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch

from ..errors import Cancelled
from ..model import ModelSpec
from .blending import SliceAccumulator, extract_tile
from .device_blend import TorchAccumulator, blend_rows, device_emitter
from .forward import Forward, OutOfMemory
from .pipeline import DeviceNormalizer, Inline
from .tiling import TilePlan


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


@dataclass
class TileLoop:
    """One image's data and how to predict it.

    ``blend_on_device``: True blends on the predictor's device, False on the CPU, None
    decides from ``free_bytes`` (device memory) on CUDA and blends on the CPU elsewhere.
    """

    data: np.ndarray
    normalizer: Any
    forward: Forward
    spec: ModelSpec
    threshold: float
    want_probs: bool
    transfers: Inline
    blend_on_device: bool | None = None
    free_bytes: float = 0.0

    def run(self, plan: TilePlan, progress, should_stop) -> tuple[np.ndarray, np.ndarray | None]:
        """``(labels, probabilities or None)`` of shape ``(N, Y, X[, K])``."""
        out = _Outputs(self, plan)
        jobs = ((s, i, y, x) for s in range(out.n) for i, (y, x) in enumerate(out.windows))
        batches = list(_chunks(jobs, plan.batch_size))
        steps = self._streamed if self.transfers.overlapped else self._inline
        steps(batches, out, _Progress(progress, plan.total_tiles), should_stop)
        return out.labels, out.probs

    def _inline(self, batches, out: _Outputs, progress: _Progress, should_stop) -> None:
        device_side = self.blend_on_device is True
        for batch in batches:
            _check(should_stop)
            tiles = self._prepared(batch, out.plan.tile)
            if device_side:
                result = self.forward.run(torch.from_numpy(tiles))
            else:
                result = self.forward(tiles)
            out.add(batch, result)
            progress(len(batch))

    def _streamed(self, batches, out: _Outputs, progress: _Progress, should_stop) -> None:
        t = self.transfers
        t.reset()
        pending: deque = deque()
        load = self._loader(out.plan.tile)
        x = load(batches[0])
        for n, batch in enumerate(batches):
            _check(should_stop)
            result = self.forward.run(x)
            if out.on_device(result.shape[1]):
                out.add(batch, result)
                handle = None
            else:
                handle = t.fetch(result)
            pending.append((batch, handle, t.mark()))
            if n + 1 < len(batches):
                x = load(batches[n + 1])  # cut and copied in while the device runs n
            if n >= 1:
                self._retire(pending.popleft(), out, progress)
        self._retire(pending.popleft(), out, progress)
        t.drain()

    def _retire(self, item, out: _Outputs, progress: _Progress) -> None:
        batch, handle, marker = item
        self.transfers.wait(marker)
        if handle is not None:
            out.add(batch, handle.numpy())
        progress(len(batch))

    def _prepared(self, batch: list, tile: tuple[int, int]) -> np.ndarray:
        """The batch's tiles, cut and normalised on the host: ``(B, C, TY, TX)`` float32."""
        return self.normalizer(self._cut(batch, tile))

    def _cut(self, batch: list, tile: tuple[int, int]) -> np.ndarray:
        """The batch's raw tiles, reflect-padded: ``(B, TY, TX, C)``."""
        data = self.data
        return np.stack([extract_tile(data[s], y, x, tile) for s, _, y, x in batch])

    def _loader(self, tile: tuple[int, int]):
        """``load(batch)``: the batch on the device, normalised there when it can be."""
        t = self.transfers
        if not DeviceNormalizer.applies(self.normalizer, self.data.dtype):
            return lambda batch: t.upload(self._prepared(batch, tile))
        norm = DeviceNormalizer(self.normalizer, self.forward.device)
        return lambda batch: norm(t.upload(self._cut(batch, tile)))


def _check(should_stop) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("segmentation cancelled")


class _Progress:
    def __init__(self, report, total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.report is not None:
            self.report(self.done, self.total)


class _Outputs:
    """Labels, probabilities and the open accumulators of one run."""

    def __init__(self, job: TileLoop, plan: TilePlan) -> None:
        self.job, self.plan = job, plan
        self.n, height, width = job.data.shape[:3]
        dtype = np.uint8 if job.spec.n_labels <= 256 else np.uint16
        self.labels = np.zeros((self.n, height, width), dtype)
        self.probs: np.ndarray | None = None
        self.windows = plan.windows()
        self.accs: dict[int, SliceAccumulator] = {}
        self.rows: int | None = None
        self.decided = False

    def on_device(self, channels: int) -> bool:
        """Whether tile outputs are blended on the device (decided at the first batch)."""
        if not self.decided:
            self.decided = True
            job = self.job
            if job.blend_on_device is True:
                self.rows = blend_rows(self.plan, channels, job.free_bytes) or self.plan.tile[0]
            elif job.blend_on_device is None and job.forward.device.type == "cuda":
                self.rows = blend_rows(self.plan, channels, job.free_bytes)
        return self.rows is not None

    def add(self, batch: list, out) -> None:
        """Blend a batch of ``(K, TY, TX)`` outputs (numpy, or tensors on the device)."""
        if self.job.want_probs and self.probs is None:
            k = out.shape[1]
            shape = self.labels.shape + ((k,) if k > 1 else ())
            self.probs = np.zeros(shape, np.float32)
        last = len(self.windows) - 1
        for (s, i, y, x), tile_out in zip(batch, out):
            if s not in self.accs:
                self.accs[s] = self._accumulator(s, out.shape[1], isinstance(out, torch.Tensor))
            self.accs[s].add(y, x, tile_out)
            if i == last:
                self.accs.pop(s).finish()

    def _accumulator(self, s: int, channels: int, tensors: bool) -> SliceAccumulator:
        job = self.job
        if not tensors:
            return SliceAccumulator(self.plan, channels, _emitter(self, s))
        self.on_device(channels)
        emit = device_emitter(self.labels[s], self.probs, s, job.threshold, job.transfers.to_host)
        try:
            return TorchAccumulator(self.plan, channels, emit, job.forward.device, self.rows)
        except torch.cuda.OutOfMemoryError:
            job.blend_on_device = False  # the retry blends on the CPU
            raise OutOfMemory from None


def _emitter(out: _Outputs, s: int):
    labels, threshold = out.labels[s], out.job.threshold

    def emit(r0: int, r1: int, p: np.ndarray) -> None:
        probs = out.probs
        if p.shape[0] == 1:
            labels[r0:r1] = p[0] > threshold
            if probs is not None:
                probs[s, r0:r1] = p[0]
        else:
            labels[r0:r1] = np.argmax(p, axis=0)
            if probs is not None:
                probs[s, r0:r1] = np.moveaxis(p, 0, -1)

    return emit
