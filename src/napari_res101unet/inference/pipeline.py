"""How batches of tiles move between the host and the device.

:class:`Inline` is the CPU path: every step runs in turn, in this thread. :class:`Streamed`
is the CUDA path: while the device runs batch ``n``, the host cuts and normalises batch
``n + 1`` and copies it in from pinned memory on a copy stream; results come back by
asynchronous copies that are waited for only when needed. Both expose the same steps
(``upload``, ``mark``, ``wait``, ``fetch``, ``to_host``, ``drain``), which is the seam
the tests record (:mod:`.job` drives them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class Marker:
    """The point after a batch's device work: its event and the copies queued before it."""

    event: Any
    copies: int


class Inline:
    """Host and device steps one after the other (the CPU: no threads, no copies)."""

    overlapped = False

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(batch).to(self.device)

    def to_host(self, tensor: torch.Tensor, dest: np.ndarray) -> None:
        dest[...] = tensor.cpu().numpy()

    def mark(self) -> Marker:
        return Marker(None, 0)

    def wait(self, marker: Marker) -> None:
        return None

    def fetch(self, tensor: torch.Tensor) -> Any:
        return tensor.cpu()

    def drain(self) -> None:
        return None


class Streamed(Inline):
    """Overlapped host and device work (CUDA streams, events and pinned memory; on other
    devices the same order of steps, done synchronously, so that tests can follow it)."""

    overlapped = True

    def __init__(self, device: torch.device, slots: int = 2) -> None:
        super().__init__(device)
        self.cuda = device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(device) if self.cuda else None
        self.buffers: list[torch.Tensor | None] = [None] * slots
        self.copied: list[Any] = [None] * slots
        self.uploads = 0
        self.copies: list[tuple[int, torch.Tensor, np.ndarray]] = []
        self.queued = 0

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """Copy a host batch into a pinned slot and on to the device, without waiting."""
        if not self.cuda:
            return super().upload(batch)
        slot = self.uploads % len(self.buffers)
        self.uploads += 1
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # the slot's previous copy has left it
        buf = self.buffers[slot]
        if buf is None or tuple(buf.shape) != batch.shape:
            buf = self.buffers[slot] = torch.empty(batch.shape, pin_memory=True)
        buf.numpy()[...] = batch
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.copy_stream):
            x = buf.to(self.device, non_blocking=True)
            done = self.copied[slot] = torch.cuda.Event()
            done.record(self.copy_stream)
        compute.wait_event(done)
        x.record_stream(compute)
        return x

    def mark(self) -> Marker:
        event = None
        if self.cuda:
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
        return Marker(event, self.queued)

    def wait(self, marker: Marker) -> None:
        """Wait for the device work before ``marker``; finish the copies queued before it."""
        if marker.event is not None:
            marker.event.synchronize()
        self._complete(marker.copies)

    def fetch(self, tensor: torch.Tensor) -> Any:
        """Start copying ``tensor`` back; the returned handle is read after :meth:`wait`."""
        return self._copy_back(tensor)

    def to_host(self, tensor: torch.Tensor, dest: np.ndarray) -> None:
        """Copy ``tensor`` into ``dest`` once the device has produced it (see :meth:`wait`)."""
        self.copies.append((self.queued, self._copy_back(tensor), dest))
        self.queued += 1

    def _copy_back(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.cuda:
            return tensor.cpu()
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)  # on the compute stream, after the producer
        return host

    def drain(self) -> None:
        """Wait for everything queued and write every pending copy."""
        if self.cuda:
            torch.cuda.current_stream(self.device).synchronize()
        self._complete(self.queued)

    def _complete(self, before: int) -> None:
        left = []
        for seq, host, dest in self.copies:
            if seq < before:
                dest[...] = host.numpy()
            else:
                left.append((seq, host, dest))
        self.copies = left


def transfers_for(device: torch.device) -> Inline:
    """The host/device steps for ``device``: overlapped on CUDA, inline elsewhere."""
    return Streamed(device) if device.type == "cuda" else Inline(device)
