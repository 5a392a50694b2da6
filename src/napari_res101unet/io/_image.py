"""The in-memory result of reading a file: pixels plus geometry and what they are."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ImageData:
    """Pixels plus their physical geometry, in numpy axis order (Z, Y, X).

    Attributes
    ----------
    data : ndarray
        ``(Y, X)``, ``(Y, X, C)``, ``(Z, Y, X)`` or ``(Z, Y, X, C)`` (``C`` only when
        ``rgb``). Medical volumes are in ITK's index order reversed, never resampled.
    spacing, origin : tuple of float
        One per axis of ``data`` except an RGB axis, in the same order as those axes
        (``spacing`` is napari's ``scale``, ``origin`` its ``translate``). Millimetres
        for ITK formats; see ``metadata["unit"]``.
    direction : tuple of float or None
        ITK direction cosines, row-major in ITK's (x, y, z) order, when the file has
        them. Not applied to the pixels; kept so that a writer can restore it.
    rgb : bool
        Whether the last axis holds RGB(A) colour.
    is_labels : bool
        Whether ``data`` is a label map (see :mod:`napari_res101unet.io`).
    window : (float, float) or None
        Suggested display range (e.g. a soft-tissue window for CT in Hounsfield units).
    metadata : dict
        ``name``, ``source``, ``format`` and what the format adds (``unit``,
        ``modality``, ``series_id``...).
    """

    data: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...] | None = None
    rgb: bool = False
    metadata: dict = field(default_factory=dict)
    is_labels: bool = False
    window: tuple[float, float] | None = None

    @property
    def spatial_ndim(self) -> int:
        """Number of axes of ``data`` that are not colour."""
        return self.data.ndim - 1 if self.rgb else self.data.ndim

    @property
    def known_spacing(self) -> list[float] | None:
        """The spacing per spatial axis, or None when the file gives no unit (PNG/JPEG/BMP:
        their 1s are not a physical size)."""
        from ._units import UNITLESS

        return list(self.spacing) if self.metadata.get("unit") not in UNITLESS else None


def unit_spacing(data: np.ndarray, rgb: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(spacing, origin)`` of 1s and 0s for ``data``'s spatial axes."""
    ndim = data.ndim - 1 if rgb else data.ndim
    return (1.0,) * ndim, (0.0,) * ndim
