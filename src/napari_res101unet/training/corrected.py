"""Corrections as training data: what the user painted, what counts as confirmed, the
labels to train on. Numpy and scipy only (no torch): napari's process checks a refine
request with the same code as :func:`~napari_res101unet.training.refine.refine`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import CONFIRM_MODES, SPARSE_IGNORE, RefineSettings

CONFIRM = CONFIRM_MODES
REFINE_DEFAULTS = RefineSettings().as_dict()
NO_EDITS = (
    "no corrections to learn from: paint the fixes on the labels layer first (its edits "
    "are tracked), or pass edited= (a mask of the painted pixels or the slices corrected)"
)


def check_shapes(image: Any, labels: Any) -> tuple[np.ndarray, int | None]:
    """The labels as an array and the image's channel axis (-1 or None)."""
    img_shape = tuple(np.shape(image))
    lab = np.asarray(labels)
    if lab.dtype.kind not in "ui" and lab.dtype != bool:
        raise TypeError(f"labels must be integer class indices, got dtype {lab.dtype}")
    if lab.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or a 3D stack, got shape {lab.shape}")
    if img_shape == lab.shape:
        return lab, None
    if img_shape[:-1] == lab.shape and len(img_shape) == lab.ndim + 1:
        return lab, -1
    raise ValueError(
        f"the labels (shape {lab.shape}) are not of the image's shape {img_shape}: refine "
        "needs the labels layer segmented from this image (same spatial shape)"
    )


def edited_mask(edited: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """``(mask of the painted pixels, number of edits)`` from any ``edited`` form."""
    if edited is None:
        raise ValueError(NO_EDITS)
    edits = int(getattr(edited, "edits", 0))
    if hasattr(edited, "mask"):  # a Corrections record
        edited = edited.mask
    arr = np.asarray(edited)
    if arr.size == 0:
        raise ValueError(NO_EDITS)
    if arr.dtype == bool or arr.shape == shape:
        if arr.shape != shape:
            raise ValueError(
                f"the edits (shape {arr.shape}) were made on a layer of another shape than "
                f"these labels {shape}; segment this image and paint on its labels"
            )
        mask = arr.astype(bool)
    else:
        mask = _slice_mask(arr, shape)
    if not mask.any():
        raise ValueError(NO_EDITS)
    return mask, edits or 1


def _slice_mask(indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) != 3 or indices.ndim != 1 or indices.dtype.kind not in "ui":
        raise ValueError(
            "edited must be a boolean mask of the labels' shape "
            f"{shape}, or (for a stack) a list of slice indices; got {indices.dtype} "
            f"of shape {indices.shape}"
        )
    bad = [int(i) for i in indices if not 0 <= i < shape[0]]
    if bad:
        raise ValueError(f"edited slices {bad} are outside the stack's 0..{shape[0] - 1}")
    mask = np.zeros(shape, bool)
    mask[indices] = True
    return mask


def confirmed_area(
    mask: np.ndarray,
    confirm: str = REFINE_DEFAULTS["confirm"],
    margin: int = REFINE_DEFAULTS["margin"],
) -> np.ndarray:
    """The pixels trained on: whole painted slices, or painted regions plus ``margin``."""
    if confirm not in CONFIRM:
        raise ValueError(f"confirm must be one of {CONFIRM}, got {confirm!r}")
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise ValueError(f"margin must be an int >= 0, got {margin!r}")
    mode = ("slice" if mask.ndim == 3 else "region") if confirm == "auto" else confirm
    if mode == "slice":
        if mask.ndim == 2:
            return np.ones_like(mask) if mask.any() else mask.copy()
        painted = mask.reshape(len(mask), -1).any(axis=1)
        return np.broadcast_to(painted[:, None, None], mask.shape).copy()
    from scipy.ndimage import binary_dilation

    if margin == 0:
        return mask.copy()
    structure = np.ones((3, 3), bool)
    if mask.ndim == 3:
        structure = structure[None]
    return binary_dilation(mask, structure, iterations=margin)


def training_target(labels: np.ndarray, confirmed: np.ndarray) -> np.ndarray:
    """Training labels: the user's inside the confirmed area, ``SPARSE_IGNORE`` outside."""
    if labels.size and int(labels.max()) >= SPARSE_IGNORE:
        raise ValueError(
            f"labels use value {int(labels.max())}; refine supports class values below "
            f"{SPARSE_IGNORE}"
        )
    target = np.full(labels.shape, SPARSE_IGNORE, np.uint8)
    target[confirmed] = labels[confirmed]
    return target


def edited_slices(mask: np.ndarray) -> list[int]:
    if mask.ndim < 3:
        return []
    return [int(z) for z in np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))]
