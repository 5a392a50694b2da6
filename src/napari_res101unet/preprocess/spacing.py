"""In-plane resampling to the pixel spacing a model was trained at, and back.

A model records the pixel spacing ``(Y, X)`` of its training data (``spec.spacing``; None
when unknown, e.g. PNG/JPEG without a ``pixel_size``). When an image's in-plane spacing
differs from it by more than :data:`SPACING_TOLERANCE` (relative, on either axis), the
slices are resampled to the model's spacing (linear, antialiased when shrinking), the
network runs there, and the results come back to the input grid: labels with nearest
neighbour, probabilities linearly. Nothing is resampled along the slice axis.

Numbers are compared as they are, in the reader's unit (millimetres for the medical
formats; the unit of a TIFF's metadata; whatever a ``pixel_size`` is given in).

Library: torch's ``F.interpolate`` (bilinear, ``align_corners=False``, ``antialias`` when
shrinking). The engine already holds torch; it resamples a batch of slices in one call,
many times faster than ``scipy.ndimage.zoom`` on the CPU, and its half-pixel geometry is
the one the training patches use (:func:`~napari_res101unet.training.patches._resize`), so
a pixel centre maps to the same physical place in both directions. Labels never go
through interpolation: nearest neighbour is an index lookup with that same geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SPACING_TOLERANCE = 0.1
"""Relative spacing difference (either axis) above which an image is resampled."""
_CHUNK_BYTES = 256 << 20


def check_pixel_size(value: Any, name: str = "pixel_size") -> tuple[float, float] | None:
    """``(y, x)`` from a number or a pair; None stays None.

    Raises
    ------
    ValueError
        For 0, negative, NaN or infinite sizes, or more than two values.
    TypeError
        For something that is not a number or a sequence of numbers.
    """
    if value is None:
        return None
    values = [value, value] if np.isscalar(value) else list(np.asarray(value).ravel())
    if len(values) != 2:
        raise ValueError(f"{name} must be one number or (y, x), got {value!r}")
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise TypeError(f"{name} must be a number or (y, x) numbers, got {value!r}")
        if not math.isfinite(float(v)) or float(v) <= 0:
            raise ValueError(
                f"{name} must be a positive, finite length per pixel (e.g. 0.5), got {value!r}"
            )
        out.append(float(v))
    return out[0], out[1]


def in_plane(spacing: Any, spatial_ndim: int, axis: int = 0) -> tuple[float, float] | None:
    """The in-plane ``(y, x)`` spacing of an image whose spatial axes have ``spacing``
    (one value per spatial axis; for a 3D stack the axes other than ``axis``)."""
    if spacing is None:
        return None
    values = list(np.asarray(spacing, dtype=object).ravel())
    if len(values) != spatial_ndim:
        if len(values) == 2:
            return check_pixel_size(values, "spacing")
        raise ValueError(
            f"spacing must have one value per spatial axis ({spatial_ndim}), got {spacing!r}"
        )
    if spatial_ndim == 3:
        values = [v for i, v in enumerate(values) if i != axis % 3]
    return check_pixel_size(values, "spacing")


@dataclass(frozen=True)
class Resampling:
    """Slices of ``shape`` at ``spacing`` to the ``model_shape`` grid of the model."""

    shape: tuple[int, int]
    model_shape: tuple[int, int]
    spacing: tuple[float, float]
    model_spacing: tuple[float, float]

    def note(self) -> str:
        sy, sx = self.spacing
        my, mx = self.model_spacing
        return (
            f"resampled {self.shape[0]}x{self.shape[1]} at {sy:g}x{sx:g} to "
            f"{self.model_shape[0]}x{self.model_shape[1]} at the model's {my:g}x{mx:g}"
        )

    def image(self, slices: np.ndarray) -> np.ndarray:
        """``(N, Y, X, C)`` to the model grid (linear; same dtype)."""
        return resize_slices(slices, self.model_shape)

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """``(N, Y', X')`` labels back to the input grid (nearest neighbour)."""
        return nearest(labels, self.shape)

    def probabilities(self, probs: np.ndarray) -> np.ndarray:
        """``(N, Y', X'[, K])`` probabilities back to the input grid (linear)."""
        squeeze = probs.ndim == 3
        out = resize_slices(probs[..., None] if squeeze else probs, self.shape)
        return out[..., 0] if squeeze else out


def plan_resampling(
    shape: tuple[int, int],
    spacing: tuple[float, float] | None,
    model_spacing: Sequence[float] | None,
) -> tuple[Resampling | None, str]:
    """The resampling an image of in-plane ``shape``/``spacing`` needs, and a note.

    No resampling (and a note saying why, where it matters) when the model has no
    spacing, the image's spacing is unknown, or they agree within the tolerance.
    """
    if model_spacing is None:
        if spacing is None:
            return None, ""
        return None, "the model records no pixel spacing: the image was not resampled"
    my, mx = (float(v) for v in list(model_spacing)[-2:])
    if not (math.isfinite(my) and math.isfinite(mx) and my > 0 and mx > 0):
        return None, f"the model's spacing {list(model_spacing)} is unusable: not resampled"
    if spacing is None:
        return None, (
            f"image spacing unknown: not resampled to the model's {my:g}x{mx:g} "
            "(give a pixel size to resample)"
        )
    sy, sx = spacing
    if max(abs(sy / my - 1), abs(sx / mx - 1)) <= SPACING_TOLERANCE:
        return None, ""
    target = (max(1, round(shape[0] * sy / my)), max(1, round(shape[1] * sx / mx)))
    return Resampling(tuple(shape), target, (sy, sx), (my, mx)), ""


def resize_slices(slices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(N, Y, X, C)`` to ``(N, *size, C)``, bilinear (antialiased when shrinking), the
    dtype kept (integers rounded and clipped)."""
    import torch
    import torch.nn.functional as F

    n, y, x, c = slices.shape
    shrink = size[0] < y or size[1] < x
    per_slice = 4 * c * (y * x + size[0] * size[1])
    chunk = max(1, _CHUNK_BYTES // max(per_slice, 1))
    out = np.empty((n, *size, c), slices.dtype)
    for start in range(0, n, chunk):
        part = np.asarray(slices[start : start + chunk], np.float32)
        t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(part, -1, 1)))
        r = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrink)
        out[start : start + chunk] = _cast(np.moveaxis(r.numpy(), 1, -1), slices.dtype)
    return out


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return values >= 0.5
    return values.astype(dtype, copy=False)


def nearest(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(N, Y, X[, ...])`` to ``(N, *size[, ...])`` by nearest neighbour (half-pixel
    centres, as ``align_corners=False``)."""
    y, x = labels.shape[1:3]
    iy = np.minimum(((np.arange(size[0]) + 0.5) * y / size[0]).astype(np.intp), y - 1)
    ix = np.minimum(((np.arange(size[1]) + 0.5) * x / size[1]).astype(np.intp), x - 1)
    return labels[:, iy][:, :, ix]
