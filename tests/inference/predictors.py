"""Injected predictors for the inference tests: any callable from a ``(B, C, Y, X)``
tensor to ``(B, K, Y, X)`` logits stands in for the network."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def per_pixel(x: torch.Tensor) -> torch.Tensor:
    """Two-class logits from the first channel: foreground where the input is bright."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] * 3 - 1], dim=1)


def three_class(x: torch.Tensor) -> torch.Tensor:
    v = x[:, :1]
    return torch.cat([-v, torch.sin(6 * v), v - 0.5], dim=1)


def blur(x: torch.Tensor) -> torch.Tensor:
    """A non-local predictor (9x9 mean filter): tiles see different context, so blending
    matters. Runs on the input's device."""
    k = torch.ones(1, 1, 9, 9, device=x.device) / 81
    return per_pixel(F.conv2d(x[:, :1], k, padding=4))


def slow_blur(x: torch.Tensor) -> torch.Tensor:
    """:func:`blur`, taking 0.1 s per batch (to kill a dask worker while it runs)."""
    import time

    time.sleep(0.1)
    return blur(x)
