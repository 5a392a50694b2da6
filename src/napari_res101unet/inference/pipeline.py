"""How batches of tiles move between the host and the device.

:class:`Inline` is the CPU path: every step runs in turn, in this thread. :class:`Streamed`
is the CUDA path: while the device runs batch ``n``, the host cuts batch ``n + 1`` and
copies it in, raw, from pinned memory on a copy stream, to be normalised on the device
(:class:`DeviceNormalizer`; on the host for dtypes torch lacks); results come back by
asynchronous copies that are waited for only when needed. Both expose the same steps
(``upload``, ``mark``, ``wait``, ``fetch``, ``to_host``, ``drain``, ``reset``), which is
the seam the tests record (:mod:`.job` drives them); :class:`CudaOps` holds the CUDA
primitives under them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..preprocess.normalize import Normalizer

DEVICE_DTYPES = tuple(
    np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.float16, np.float32)
)
"""Raw dtypes copied to the device as they are and normalised there (others: on the host)."""


class DeviceNormalizer:
    """A :class:`~.data.Normalizer`'s arithmetic in torch, on the device: raw ``(B, Y, X,
    C)`` tiles in, ``(B, C, Y, X)`` float32 out, already in channels-last memory. The same
    float32 operations in the same order as the numpy version (identical on the CPU)."""

    def __init__(self, norm: Normalizer, device: torch.device) -> None:
        def tensor(values) -> torch.Tensor:
            return torch.from_numpy(np.asarray(values, np.float32)).to(device)

        self.norm = norm
        self.low = tensor(norm.low)
        self.scale = tensor(1.0 / np.maximum(norm.high - norm.low, 1e-12))
        self.mean, self.std = tensor(norm.mean), tensor(norm.std)
        self.gray = tensor(np.array([0.299, 0.587, 0.114], np.float32)[:, None])

    @staticmethod
    def applies(normalizer: Any, dtype: np.dtype) -> bool:
        """Whether tiles of ``dtype`` can be normalised on the device by this class."""
        return isinstance(normalizer, Normalizer) and np.dtype(dtype) in DEVICE_DTYPES

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.norm.to_gray:
            x = x @ self.gray
        x = (x - self.low) * self.scale
        if self.norm.clip:
            x.clamp_(0.0, 1.0)
        x -= self.mean
        x /= self.std
        if self.norm.fill_nan:
            x = torch.nan_to_num(x, nan=0.0)
        return x.permute(0, 3, 1, 2)


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

    def reset(self) -> None:
        """Forget what an earlier, failed run left queued (before a retry)."""
        return None


class CudaOps:
    """The CUDA primitives :class:`Streamed` uses: pinned buffers, a copy stream, events.

    A seam: tests pass a stand-in with the same methods to follow the synchronisation on
    a machine without CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.copy_stream = torch.cuda.Stream(device)

    def pinned(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float32):
        return torch.empty(shape, dtype=dtype, pin_memory=True)

    def copy_in(self, buf: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Copy ``buf`` (pinned) to the device on the copy stream; the compute stream waits
        for it. Returns the device tensor and the copy's event."""
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.copy_stream):
            x = buf.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.copy_stream)
        compute.wait_event(done)
        x.record_stream(compute)  # allocated on the copy stream, used on the compute one
        return x, done

    def copy_out(self, tensor: torch.Tensor) -> torch.Tensor:
        """Start a copy of ``tensor`` into pinned memory, after the work that makes it."""
        host = self.pinned(tuple(tensor.shape), tensor.dtype)
        host.copy_(tensor, non_blocking=True)
        return host

    def event(self) -> Any:
        """An event after everything queued so far on the compute stream."""
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return event

    def synchronize(self) -> None:
        torch.cuda.current_stream(self.device).synchronize()


class Streamed(Inline):
    """Overlapped host and device work: uploads through ``slots`` pinned buffers on a copy
    stream, results copied back without waiting, device work waited for by events (see
    :class:`CudaOps`). Without ``ops`` on a non-CUDA device the same steps run
    synchronously, in the same order."""

    overlapped = True

    def __init__(self, device: torch.device, slots: int = 2, ops: Any = None) -> None:
        super().__init__(device)
        self.ops = ops if ops is not None or device.type != "cuda" else CudaOps(device)
        self.buffers: list[torch.Tensor | None] = [None] * slots
        self.copied: list[Any] = [None] * slots
        self.uploads = 0
        self.copies: list[tuple[int, torch.Tensor, np.ndarray]] = []
        self.queued = 0

    def upload(self, batch: np.ndarray) -> torch.Tensor:
        """Copy a host batch into a pinned slot and on to the device, without waiting."""
        if self.ops is None:
            return super().upload(batch)
        slot = self.uploads % len(self.buffers)
        self.uploads += 1
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()  # the slot's previous copy has left it
        buf = self.buffers[slot]
        dtype = torch.from_numpy(np.empty(0, batch.dtype)).dtype
        if buf is None or tuple(buf.shape) != batch.shape or buf.dtype != dtype:
            buf = self.buffers[slot] = self.ops.pinned(batch.shape, dtype)
        buf.numpy()[...] = batch
        x, self.copied[slot] = self.ops.copy_in(buf)
        return x

    def mark(self) -> Marker:
        return Marker(None if self.ops is None else self.ops.event(), self.queued)

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
        return tensor.cpu() if self.ops is None else self.ops.copy_out(tensor)

    def reset(self) -> None:
        self.copies, self.queued = [], 0

    def drain(self) -> None:
        """Wait for everything queued and write every pending copy."""
        if self.ops is not None:
            self.ops.synchronize()
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
