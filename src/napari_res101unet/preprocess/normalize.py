"""Images as the network sees them: axes, channels and intensity normalisation.

Pure numpy; no torch. Every image is viewed as a stack of 2D slices ``(N, Y, X, C)``
(a view, not a copy) and normalised with statistics of the *whole* image, so tiles and
slices of one image are treated alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import CT_WINDOW, IMAGENET_MEAN, IMAGENET_STD, NORMALIZATIONS, PERCENTILES

AUTO = "auto"
_STAT_SAMPLES = 4_000_000


@dataclass
class StackView:
    """An image seen as 2D slices with channels last.

    Attributes
    ----------
    slices : (N, Y, X, C) ndarray
        A view of the input (no copy).
    spatial_shape : tuple of int
        Shape of the labels the image gets: the input's shape without the channel axis.
    slice_axis : int or None
        Position of the slice axis in ``spatial_shape`` (None for a 2D image).
    """

    slices: np.ndarray
    spatial_shape: tuple[int, ...]
    slice_axis: int | None
    nan_count: int = 0

    def restore(self, stack: np.ndarray) -> np.ndarray:
        """Put a ``(N, Y, X[, K])`` result back in the axis order of the input."""
        if self.slice_axis is None:
            return stack[0]
        return np.moveaxis(stack, 0, self.slice_axis)


def as_stack(
    image: Any, *, channel_axis: int | str | None = AUTO, axis: int = 0, allow_nan: bool = False
) -> StackView:
    """View ``image`` as a stack of channels-last 2D slices.

    Parameters
    ----------
    image : (Y, X), (Y, X, C), (Z, Y, X) or (Z, Y, X, C) array-like
        A trailing axis of length 1, 3 or 4 is taken as channels under ``"auto"``.
    channel_axis : int, None or "auto"
        Which axis holds channels (None: no channel axis).
    axis : int
        For 3D stacks: the axis (of the spatial axes) to slice along.
    allow_nan : bool
        Accept NaN pixels (counted in ``nan_count``; the normaliser maps them to the mean
        intensity). Infinite values are always refused.

    Raises
    ------
    ValueError
        For 1D or more than 4D input, an empty image, NaN (unless allowed)/inf values, or
        an image that holds only NaN (whose NaN could not be read as its mean).
    TypeError
        For non-numeric data.
    """
    arr = np.asarray(image)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype.kind not in "uif":
        raise TypeError(f"image must be numeric (integer or float), got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    if channel_axis == AUTO:
        channel_axis = (
            -1 if (arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4))) else None
        )
    if channel_axis is not None:
        if not -arr.ndim <= channel_axis < arr.ndim:
            raise ValueError(f"channel_axis {channel_axis} is out of range for shape {arr.shape}")
        arr = np.moveaxis(arr, channel_axis, -1)
    else:
        arr = arr[..., np.newaxis]
    spatial = arr.shape[:-1]
    if len(spatial) not in (2, 3):
        raise ValueError(
            "image must be 2D (Y, X), 2D with channels (Y, X, C) or a 3D stack "
            f"(Z, Y, X[, C]); got shape {np.shape(image)}"
        )
    nans = 0
    if arr.dtype.kind == "f":
        bad = np.count_nonzero(~np.isfinite(arr))
        nans = int(np.count_nonzero(np.isnan(arr))) if bad else 0
        if bad and not (allow_nan and bad == nans):
            what = "infinite" if allow_nan else "NaN or infinite"
            count = bad - nans if allow_nan else bad
            raise ValueError(f"image contains {count} {what} values; replace them first")
        if nans == arr.size:  # no intensity to read NaN as: nothing to segment
            raise ValueError(
                f"image holds only NaN values ({arr.size} of {arr.size}; shape "
                f"{np.shape(image)}): there is nothing to segment"
            )
    if len(spatial) == 2:
        return StackView(arr[np.newaxis], spatial, None, nans)
    if not -3 <= axis < 3:
        raise ValueError(f"axis must be 0, 1 or 2 for a 3D stack, got {axis}")
    axis %= 3
    return StackView(np.moveaxis(arr, axis, 0), spatial, axis, nans)


def adapt_channels(slices: np.ndarray, in_channels: int) -> tuple[np.ndarray, str]:
    """Match the channel count of ``(..., C)`` data to the model's ``in_channels``.

    Grayscale is replicated to 3 channels, RGBA drops alpha, RGB becomes luminance for a
    1-channel model. Returns the (possibly lazily indexed) data and a note of what was done.
    """
    c = slices.shape[-1]
    if c == in_channels:
        return slices, ""
    if c == 1:
        return np.broadcast_to(slices, (*slices.shape[:-1], in_channels)), "replicated gray"
    if c == 4 and in_channels == 3:
        return slices[..., :3], "dropped alpha"
    if c in (3, 4) and in_channels == 1:
        return slices[..., :3], "rgb to gray"
    raise ValueError(
        f"image has {c} channels but the model expects {in_channels}; "
        "choose a model trained for this channel count"
    )


@dataclass
class Normalizer:
    """Maps raw tiles to network input (float32, channels first).

    Attributes
    ----------
    mode : str
        The resolved mode (never ``auto``).
    low, high : (C,) ndarray
        Intensities mapped to 0 and 1.
    clip : bool
        Whether values outside ``[low, high]`` are clipped.
    to_gray : bool
        Whether RGB is averaged to one channel first.
    """

    mode: str
    low: np.ndarray
    high: np.ndarray
    clip: bool = False
    to_gray: bool = False
    fill_nan: bool = False
    mean: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        """``(..., Y, X, C)`` raw values to ``(..., C, Y, X)`` float32."""
        x = np.asarray(tiles, dtype=np.float32)
        if self.to_gray:
            x = x @ np.array([0.299, 0.587, 0.114], np.float32)[:, None]
        scale = 1.0 / np.maximum(self.high - self.low, 1e-12)
        x = (x - self.low) * scale
        if self.clip:
            np.clip(x, 0.0, 1.0, out=x)
        x -= self.mean
        x /= self.std
        if self.fill_nan:  # NaN pixels become the mean intensity (0 after standardising)
            np.nan_to_num(x, copy=False, nan=0.0)
        return np.moveaxis(x, -1, -3)

    def describe(self) -> str:
        lo, hi = (np.round(v, 3).tolist() for v in (self.low, self.high))
        return f"{self.mode} [{lo} .. {hi}]"


def resolve_mode(setting: dict, dtype: np.dtype, sample: np.ndarray) -> str:
    """The concrete mode for ``auto``: 8-bit → imagenet (0/1 masks-like 8-bit → minmax),
    CT in Hounsfield units → window, anything else → percentile.

    CT is int16 with values below -200 HU, or signed integer / float data (a rescaled or
    resampled CT) with values below -200 and a maximum between 100 and 32767 HU."""
    mode = setting.get("mode", AUTO)
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalization mode {mode!r} is not one of {', '.join(NORMALIZATIONS)}")
    if mode != AUTO:
        return mode
    if dtype == np.uint8:
        return "imagenet" if sample.size == 0 or sample.max() > 1 else "minmax"
    if dtype.kind not in "if" or sample.size == 0 or sample.min() >= -200:
        return "percentile"
    if dtype == np.int16 or 100 <= float(sample.max()) <= 32767:
        return "window"
    return "percentile"


def make_normalizer(slices: np.ndarray, setting: dict, in_channels: int) -> Normalizer:
    """Build the :class:`Normalizer` for ``(N, Y, X, C)`` data from its whole-image statistics.

    Parameters
    ----------
    slices : (N, Y, X, C) ndarray
        Raw data, channels already matched to the model.
    setting : dict
        The model spec's ``normalization`` (``mode`` and optional ``window``/``percentiles``).
    in_channels : int
        Channels the network takes (the output of the normalizer).
    """
    to_gray = slices.shape[-1] == 3 and in_channels == 1
    sample = _sample(slices)
    fill_nan = sample.dtype.kind == "f" and bool(np.isnan(sample).any())
    if fill_nan:  # statistics of the finite pixels only
        sample = sample[~np.isnan(sample).any(axis=1)]
        if sample.shape[0] == 0:  # nothing but NaN
            sample = np.zeros((1, slices.shape[-1]), slices.dtype)
    mode = resolve_mode(setting, slices.dtype, sample)
    c = sample.shape[-1]
    if mode == "imagenet":
        low, high = np.zeros(c), np.full(c, 255.0)
    elif mode == "window":
        low, high = (np.full(c, v, float) for v in setting.get("window", CT_WINDOW))
    elif mode == "minmax":
        low, high = sample.min(axis=0).astype(float), sample.max(axis=0).astype(float)
    elif mode == "percentile":
        lo_p, hi_p = setting.get("percentiles", PERCENTILES)
        low, high = np.percentile(sample, [lo_p, hi_p], axis=0)
        flat = high <= low
        high = np.where(flat, sample.max(axis=0), high)
        low = np.where(flat, sample.min(axis=0), low)
    else:  # none
        low, high = np.zeros(c), np.ones(c)
    if to_gray:
        low, high = low.mean(keepdims=True), high.mean(keepdims=True)
    norm = Normalizer(
        mode, low.astype(np.float32), high.astype(np.float32), mode == "window", to_gray, fill_nan
    )
    if mode != "none":
        if in_channels == 3:
            norm.mean, norm.std = (np.array(v, np.float32) for v in (IMAGENET_MEAN, IMAGENET_STD))
        else:
            norm.mean = np.full(in_channels, np.mean(IMAGENET_MEAN), np.float32)
            norm.std = np.full(in_channels, np.mean(IMAGENET_STD), np.float32)
    return norm


def _sample(slices: np.ndarray) -> np.ndarray:
    """Up to a few million pixels of ``(N, Y, X, C)``, evenly strided, as ``(P, C)``."""
    n, y, x, c = slices.shape
    zstep = max(1, -(-n // 64))
    per_slice = _STAT_SAMPLES / len(range(0, n, zstep))
    step = max(1, int(np.ceil(np.sqrt(y * x / per_slice))))
    return np.asarray(slices[::zstep, ::step, ::step]).reshape(-1, c)
