"""Blending on the predictor's device: the band accumulator with torch tensors.

On CUDA the tile outputs then never leave the GPU: they are weighted and summed there,
labels are taken there (threshold or argmax) and only the labels (and probabilities, when
asked for) are copied back, asynchronously. Same Gaussian weights and the same float32
operations in the same order as :class:`~.blending.SliceAccumulator`, so on one device
both give identical sums, probabilities and labels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .blending import SliceAccumulator
from .tiling import TilePlan

BLEND_SHARE = 0.25
"""Share of the device's free memory the accumulators may take (tiles plan with 0.6)."""


class TorchAccumulator(SliceAccumulator):
    """:class:`~.blending.SliceAccumulator` on ``device``; ``emit`` receives tensors.

    With ``band`` >= the slice height it holds the whole slice and emits once, at
    :meth:`finish` (no rows are shifted); otherwise it emits and shifts like the CPU band.
    """

    def __init__(
        self,
        plan: TilePlan,
        channels: int,
        emit: Callable,
        device: torch.device,
        band: int | None = None,
    ) -> None:
        self.device = device
        super().__init__(plan, channels, emit, band)
        self.whole = self.band >= self.height

    def _zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch.float32, device=self.device)

    def _array(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(self.device)

    def _shift(self, n: int, keep: int) -> None:
        self.acc[:, :keep] = self.acc[:, n:].clone()
        self.wsum[:keep] = self.wsum[n:].clone()

    def _flush(self, until: int) -> None:
        if self.whole and until < self.height:
            return  # the whole slice is held: emit it once, at finish()
        super()._flush(until)


def blend_rows(plan: TilePlan, channels: int, free_bytes: float) -> int | None:
    """Rows of a device accumulator that fit ``BLEND_SHARE`` of ``free_bytes``: the whole
    slice when it fits, else one tile-high band; None when not even that fits (blend on
    the CPU). Counts the sums, the weight sums and as much again for the division and
    labels at emission."""
    row_bytes = 2 * 4 * (channels + 1) * plan.shape[1]
    rows = int(BLEND_SHARE * free_bytes // row_bytes)
    if rows >= plan.shape[0]:
        return plan.shape[0]
    if rows >= plan.tile[0]:
        return plan.tile[0]
    return None


def device_emitter(
    labels: np.ndarray,
    probs: np.ndarray | None,
    s: int,
    threshold: float,
    to_host: Callable[[torch.Tensor, np.ndarray], None],
) -> Callable[[int, int, torch.Tensor], None]:
    """``emit`` for a :class:`TorchAccumulator`: labels taken on the device, then
    ``to_host(tensor, destination)`` copies them (and probabilities) into the outputs.
    Same rules as the CPU emitter: ``p > threshold`` (compared in float32) for one
    channel, the first argmax otherwise."""
    thr = float(np.float32(threshold))
    dtype = torch.uint8 if labels.dtype == np.uint8 else torch.int32

    def emit(r0: int, r1: int, p: torch.Tensor) -> None:
        if p.shape[0] == 1:
            to_host((p[0] > thr).to(dtype), labels[r0:r1])
            if probs is not None:
                to_host(p[0], probs[s, r0:r1])
        else:
            to_host(torch.argmax(p, dim=0).to(dtype), labels[r0:r1])
            if probs is not None:
                to_host(p.permute(1, 2, 0), probs[s, r0:r1])

    return emit
