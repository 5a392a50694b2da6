"""Geometry of a stack of DICOM slices, checked before anything is stacked.

A series of single-frame slices is a regular volume only when all slices share one
orientation and size, and their positions (``ImagePositionPatient``) lie on one line
along the slice normal (``ImageOrientationPatient``'s row x column) at equal steps. Real
data breaks that: a gantry-tilted CT (positions sheared off the normal), a missing
slice (one step twice as long), two acquisitions at the same positions. Stacking those
as if regular puts voxels millimetres away from where they were acquired, so
:func:`stack_geometry` refuses them with a message that names the problem; nothing is
resampled (the grid would have to be invented).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STEP_RTOL = 0.01  # steps may differ by 1 % (positions are rounded in the headers)
STEP_ATOL = 0.01  # ... or by 0.01 mm
SHEAR_PIXELS = 0.1  # in-plane drift allowed over the stack, in pixels


@dataclass(frozen=True)
class StackGeometry:
    """Where a sorted stack of slices lies, in numpy order (Z, Y, X) and LPS millimetres.

    Attributes
    ----------
    order : tuple of int
        Indices of the input slices, sorted along the slice normal.
    spacing, origin : tuple of float
        ``(dz, dy, dx)`` and the position of the first voxel ``(z, y, x)`` (LPS).
    direction : tuple of float or None
        ITK direction cosines (row-major 3x3: columns are the row, column and normal
        directions); None for slices without a position in space.
    """

    order: tuple[int, ...]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...] | None


def orientation_name(iop) -> str:
    """``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"`` for an orientation."""
    normal = np.abs(_normal(iop))
    if normal.max() < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def stack_geometry(positions, iop, pixel_spacing, label: str) -> StackGeometry:
    """Sort slices along their normal and check that they form a regular volume.

    Parameters
    ----------
    positions : (N, 3) array-like
        ``ImagePositionPatient`` of each slice (LPS mm).
    iop : (6,) array-like
        The shared ``ImageOrientationPatient`` (row direction, then column direction).
    pixel_spacing : (2,) array-like
        ``PixelSpacing``: between rows (y), then between columns (x).
    label : str
        How the series is named in messages.

    Raises
    ------
    ValueError
        When slices share a position, are unevenly spaced (a gap) or sheared off the
        normal (gantry tilt); the message names the series and the problem.
    """
    pos = np.asarray(positions, float).reshape(-1, 3)
    iop = np.asarray(iop, float)
    normal = _normal(iop)
    along = pos @ normal
    order = np.argsort(along, kind="stable")
    pos, along = pos[order], along[order]
    dy, dx = (float(s) for s in pixel_spacing)
    step = 0.0
    if len(pos) > 1:
        steps = np.diff(along)
        _check_unique(steps, along, label)
        step = float(np.median(steps))
        _check_uniform(steps, along, step, label)
        _check_along_normal(pos, along, normal, min(dx, dy), label)
    spacing_z = step if step > 0 else 1.0
    columns = np.stack([iop[:3], iop[3:], normal], axis=1)
    return StackGeometry(
        tuple(int(i) for i in order),
        (spacing_z, dy, dx),
        tuple(float(v) for v in pos[0][::-1]),
        tuple(float(v) for v in columns.reshape(-1)),
    )


def _normal(iop) -> np.ndarray:
    iop = np.asarray(iop, float)
    normal = np.cross(iop[:3], iop[3:])
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise ValueError(f"ImageOrientationPatient {list(iop)} has parallel row and column")
    return normal / norm


def _check_unique(steps: np.ndarray, along: np.ndarray, label: str) -> None:
    same = int(np.sum(np.abs(steps) <= STEP_ATOL))
    if same:
        raise ValueError(
            f"DICOM series {label}: {same + 1} slices share a position (e.g. "
            f"{along[np.argmax(np.abs(steps) <= STEP_ATOL)]:.2f} mm along the normal): "
            "several acquisitions, echoes or time points in one series cannot be stacked "
            "into one volume; open the files of one acquisition"
        )


def _check_uniform(steps: np.ndarray, along: np.ndarray, step: float, label: str) -> None:
    off = np.abs(steps - step) > max(STEP_ATOL, STEP_RTOL * step)
    if not off.any():
        return
    k = int(np.argmax(off))
    missing = steps[k] / step - 1
    what = (
        f"about {missing:.0f} missing slice(s)"
        if missing >= 0.5 and abs(missing - round(missing)) < 0.1
        else "an irregular step"
    )
    raise ValueError(
        f"DICOM series {label}: slice spacing is not uniform (steps from "
        f"{steps.min():.3f} to {steps.max():.3f} mm; {what} between {along[k]:.2f} and "
        f"{along[k + 1]:.2f} mm along the normal). It is refused rather than stacked as "
        "if regular, which would misplace slices; resample it first (e.g. 3D Slicer) or "
        "open the contiguous part"
    )


def _check_along_normal(pos, along, normal, pixel: float, label: str) -> None:
    offsets = pos - pos[0]
    drift = offsets - np.outer(along - along[0], normal)
    worst = float(np.linalg.norm(drift, axis=1).max())
    if worst <= SHEAR_PIXELS * pixel:
        return
    span = float(along[-1] - along[0])
    angle = math.degrees(math.atan2(float(np.linalg.norm(drift[-1])), span))
    raise ValueError(
        f"DICOM series {label}: slice positions do not lie along the slice normal (they "
        f"drift {worst:.1f} mm sideways over {span:.1f} mm: a gantry tilt of about "
        f"{angle:.1f} degrees). Stacking it as a regular volume would misplace slices by "
        "up to that much, so it is refused; resample it first (e.g. dcm2niix or 3D "
        "Slicer's 'Acquisition geometry regularization')"
    )
