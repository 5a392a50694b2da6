"""An image made ready for a model beyond channels: pixel spacing and intensities.

Called by :func:`~napari_res101unet.inference.segment.run_segmentation` between reading the
image as slices and normalising it; see :mod:`.spacing` and :mod:`.intensity`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .intensity import match_intensity
from .normalize import StackView, adapt_channels
from .spacing import Resampling, check_pixel_size, in_plane, plan_resampling

if TYPE_CHECKING:
    from ..model import ModelSpec


def adapt_input(
    view: StackView, spec: ModelSpec, *, spacing: Any = None, pixel_size: Any = None, axis=0
) -> tuple[np.ndarray, Resampling | None, list[str]]:
    """The slices the network sees, the resampling to undo afterwards, and notes.

    Parameters
    ----------
    view : StackView
        The image as ``(N, Y, X, C)`` slices.
    spec : ModelSpec
        The model's ``spacing``, ``intensity`` and ``in_channels`` are used.
    spacing : sequence of float, optional
        The image's spacing, one value per spatial axis (or the in-plane ``(y, x)``).
    pixel_size : float or (y, x), optional
        In-plane pixel size; wins over ``spacing`` (for PNG/JPEG, whose spacing is unknown).
    axis : int
        Slice axis of a 3D stack (its spacing is not in-plane).

    Returns
    -------
    data : (N, Y', X', C') ndarray
    resampling : Resampling or None
    notes : list of str
    """
    size = check_pixel_size(pixel_size)
    if size is None:
        size = in_plane(spacing, len(view.spatial_shape), axis)
    grid, spacing_note = plan_resampling(view.slices.shape[1:3], size, spec.spacing)
    slices = view.slices if grid is None else grid.image(view.slices)
    data, channel_note = adapt_channels(slices, spec.in_channels)
    data, intensity_note = match_intensity(data, getattr(spec, "intensity", None))
    notes = [channel_note, grid.note() if grid is not None else spacing_note, intensity_note]
    return data, grid, notes
