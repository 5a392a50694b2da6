"""The image a bioimage.io package's test input is made from."""

from __future__ import annotations

import numpy as np

from ..config import CT_WINDOW, NETWORK_MULTIPLE

MAX_SIDE = 256


def prepare_sample(sample: np.ndarray, in_channels: int) -> np.ndarray:
    """``(C, Y, X)`` raw values (dtype kept) from a ``(Y, X[, C])`` image.

    The centre is cropped to sides that are multiples of 32 (at most 256); grayscale is
    replicated to the model's channels and RGB(A) becomes luminance for a 1-channel model.

    Raises
    ------
    ValueError
        For an image that is not 2D, is smaller than 32 x 32, or has channels the model
        cannot take.
    """
    arr = np.asarray(sample)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] > 16:
        raise ValueError(
            f"sample must be a 2D image (Y, X) or (Y, X, C), got shape {np.shape(sample)}"
        )
    sides = [min(MAX_SIDE, s - s % NETWORK_MULTIPLE) for s in arr.shape[:2]]
    if min(sides) < NETWORK_MULTIPLE:
        raise ValueError(f"sample {arr.shape[:2]} is smaller than 32 x 32 pixels")
    y0, x0 = ((s - t) // 2 for s, t in zip(arr.shape[:2], sides))
    arr = arr[y0 : y0 + sides[0], x0 : x0 + sides[1]]
    c = arr.shape[-1]
    if c != in_channels:
        if c == 1:
            arr = np.repeat(arr, in_channels, axis=-1)
        elif c in (3, 4) and in_channels == 1:
            lum = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            arr = lum[..., None].astype(arr.dtype) if arr.dtype == np.uint8 else lum[..., None]
        elif c == 4 and in_channels == 3:
            arr = arr[..., :3]
        else:
            raise ValueError(f"sample has {c} channels; the model takes {in_channels}")
    return np.ascontiguousarray(np.moveaxis(arr, -1, 0))


def synthetic_sample(in_channels: int, mode: str, side: int = 128) -> np.ndarray:
    """A deterministic ``(C, side, side)`` image of smooth blobs in the value range that
    ``mode`` expects (uint8 for ``imagenet``, Hounsfield units for ``window``)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    img = np.zeros((side, side), np.float32)
    for cy, cx, r in rng.uniform([0, 0, 8], [side, side, side / 5], size=(6, 3)):
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img = img / img.max() + 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    chans = np.stack([img * (1.0 - 0.25 * (i % 3)) for i in range(in_channels)])
    if mode == "imagenet":
        return (chans.clip(0, 1) * 255).astype(np.uint8)
    if mode == "window":
        lo, hi = CT_WINDOW
        return (lo - 200 + chans * (hi - lo + 300)).astype(np.int16)
    return chans.astype(np.float32)
