"""The forward pass of tiled inference: device transfer, precision, TTA, probabilities.

Also the inference copy of a model (batch norms folded into convolutions, channels-last),
cached until the model's weights change.
"""

from __future__ import annotations

import copy
import warnings
import weakref

import numpy as np
import torch

from ..device import autocast
from ..errors import is_device_failure

FLIPS = ((), (2,), (3,), (2, 3))
"""Test-time augmentation: the flips averaged (none, vertical, horizontal, both)."""


class OutOfMemory(Exception):
    """The device ran out of memory during a forward pass (the plan is retried smaller)."""


class Forward:
    """Runs the predictor on a batch: device transfer, precision, TTA, softmax."""

    def __init__(self, predictor, device: torch.device, mixed: bool, tta: bool) -> None:
        self.predictor, self.device, self.mixed, self.tta = predictor, device, mixed, tta
        self.channels_last = device.type in ("cpu", "cuda") and isinstance(
            predictor, (torch.nn.Module, Compiled)
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(B, C, TY, TX)`` float32 numpy in, ``(B, K, TY, TX)`` probabilities out."""
        return self.run(torch.from_numpy(batch)).cpu().numpy()

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """As :meth:`__call__` with tensors: float32 probabilities left on the device
        (asynchronous on CUDA: nothing waits for the result)."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            with torch.inference_mode(), autocast(self.device, self.mixed):
                probs = None
                for dims in FLIPS if self.tta else ((),):
                    inp = torch.flip(x, dims) if dims else x
                    p = _probabilities(self.predictor(inp))
                    p = torch.flip(p, dims) if dims else p
                    probs = p if probs is None else probs + p
                if self.tta:
                    probs /= len(FLIPS)
                return probs.float()
        except torch.cuda.OutOfMemoryError:
            raise OutOfMemory from None
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise OutOfMemory from None
            raise


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for one channel; softmax otherwise, keeping only foreground when binary."""
    if logits.ndim != 4:
        raise ValueError(
            f"the predictor must return (B, K, Y, X), got shape {tuple(logits.shape)}"
        )
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    probs = torch.softmax(logits, dim=1)
    return probs[:, 1:2] if probs.shape[1] == 2 else probs


_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inference_module(model: torch.nn.Module, device: torch.device, optimize: bool):
    """An inference copy of ``model`` on ``device`` (the model itself is left as it is):
    batch norms folded into the convolutions, channels-last memory. Cached until the
    model's weights change."""
    key = (str(device), optimize, sum(p._version for p in model.parameters()))
    cached = _INFERENCE_COPIES.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    was_training = model.training
    model.eval()
    try:
        module = _fused(model) if optimize else None
        module = module if module is not None else copy.deepcopy(model)
    finally:
        model.train(was_training)
    fmt = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    module = module.to(device=device, memory_format=fmt).eval()
    _INFERENCE_COPIES[model] = (key, module)
    return module


def _fused(model: torch.nn.Module) -> torch.nn.Module | None:
    """``model`` with batch norms folded into convolutions, or None if it cannot be traced."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model, inplace=False)
    except Exception:
        return None


COMPILE_BACKEND = "inductor"
"""The ``torch.compile`` backend of :class:`Compiled` (tests use ``"eager"``: no C compiler)."""

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Compiled:
    """``torch.compile`` of an inference module, compiled once per input shape (static
    shapes, so each tile shape gets its own kernels; torch caches them by shape). If
    compiling fails (no compiler, an unsupported layer) it warns once and runs eagerly.
    Off by default (``run_segmentation(..., compile_model=True)``): unmeasured on GPUs."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.compiled = torch.compile(module, dynamic=False, backend=COMPILE_BACKEND)
        self.shapes: set[tuple[int, ...]] = set()
        self.failed: str | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed is not None:
            return self.module(x)
        shape = tuple(x.shape)
        if shape in self.shapes:
            return self.compiled(x)
        try:
            out = self.compiled(x)
        except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
            if "out of memory" in str(exc).lower() or is_device_failure(exc):
                raise
            return self._eager(x, exc)
        except Exception as exc:  # torch._dynamo/inductor errors are not RuntimeErrors
            return self._eager(x, exc)
        self.shapes.add(shape)
        return out

    def _eager(self, x: torch.Tensor, exc: BaseException) -> torch.Tensor:
        self.failed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        warnings.warn(f"torch.compile failed, running uncompiled ({self.failed})", stacklevel=3)
        return self.module(x)


def compiled_module(module: torch.nn.Module) -> Compiled:
    """The :class:`Compiled` wrapper of ``module`` (one per module, kept while it lives)."""
    wrapper = _COMPILED.get(module)
    if wrapper is None:
        wrapper = _COMPILED[module] = Compiled(module)
    return wrapper
