"""The frames of a multi-frame DICOM file: where each lies and how its values scale.

An enhanced CT/MR/PET file states each frame's position (``PlanePositionSequence``) and
may state each frame's ``RescaleSlope``/``RescaleIntercept``
(``PixelValueTransformationSequence``) in its per-frame functional groups; RT Dose
places its frames with ``GridFrameOffsetVector``. GDCM reads none of that frame by frame:
it scales every frame like the first and, when the frames are not stored in spatial
order, stacks them in file order with a spacing of 1. Here the frames' positions are
checked like a series' slices (:func:`frame_geometry`), the frames are put in spatial
order (:func:`place_frames`) and each frame gets its own scaling (:func:`frame_rescale`).
"""

from __future__ import annotations

import numpy as np

from ._dicom_geometry import StackGeometry, stack_geometry
from ._image import ImageData

_PVT = "PixelValueTransformationSequence"


def functional(ds, sequence: str, name: str, frame: int = 0):
    """An attribute from the dataset, else its shared functional group, else frame
    ``frame``'s per-frame functional group (None when stated nowhere)."""
    if name in ds:
        return ds.get(name)
    for groups, index in (("SharedFunctionalGroupsSequence", 0),
                          ("PerFrameFunctionalGroupsSequence", frame)):  # fmt: skip
        group = ds.get(groups)
        if group and len(group) > index and sequence in group[index]:
            items = group[index][sequence]
            if items and name in items[0]:
                return items[0].get(name)
    return None


def frame_count(ds) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def frame_geometry(ds, name: str) -> StackGeometry | None:
    """The checked geometry of a multi-frame file's frames; None for one frame or when
    the frames state no position.

    Uses the per-frame ``PlanePositionSequence`` (enhanced CT/MR/PET) or RT Dose's
    ``GridFrameOffsetVector``.

    Raises
    ------
    ValueError
        When the frames share positions, are gapped or tilted (see
        :func:`._dicom_geometry.stack_geometry`), naming ``name``.
    """
    frames = frame_count(ds)
    if frames < 2:
        return None
    iop = functional(ds, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = functional(ds, "PixelMeasuresSequence", "PixelSpacing")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) == frames:
        try:
            positions = [f.PlanePositionSequence[0].ImagePositionPatient for f in per_frame]
        except (AttributeError, IndexError):
            return None
    elif "GridFrameOffsetVector" in ds and "ImagePositionPatient" in ds and iop is not None:
        start = np.asarray(ds.ImagePositionPatient, float)
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        offsets = np.asarray(ds.GridFrameOffsetVector, float).reshape(-1)
        if len(offsets) != frames:
            return None
        # relative to the first frame (first element 0) or absolute z (first element the
        # first frame's z): either way the first frame lies at ImagePositionPatient
        positions = [start + (o - offsets[0]) * normal for o in offsets]
    else:
        return None
    if iop is None or spacing is None:
        return None
    return stack_geometry(positions, iop, spacing, f"{name} (multi-frame, {frames} frames)")


def place_frames(image: ImageData, geo: StackGeometry) -> None:
    """Put ``image``'s frames (file order) where ``geo`` says they lie.

    Frames stored in spatial order, ascending or descending along the slice normal, stay
    in file order (the direction's slice column follows them, as GDCM reads them);
    frames stored in any other order are sorted along the normal, like a series' slices.
    """
    n = len(geo.order)
    if image.data.shape[0] != n:
        return
    cols = np.reshape(geo.direction, (3, 3))
    if list(geo.order) == list(range(n - 1, -1, -1)):  # descending: keep file order
        normal = cols[:, 2]
        first = np.asarray(geo.origin[::-1]) + normal * geo.spacing[0] * (n - 1)
        cols = np.stack([cols[:, 0], cols[:, 1], -normal], axis=1)
        origin = tuple(float(v) for v in first[::-1])
    else:
        if list(geo.order) != list(range(n)):
            image.data = np.ascontiguousarray(image.data[list(geo.order)])
            image.metadata.setdefault("notes", []).append(
                "the file's frames are not stored in spatial order; they are sorted along "
                "the slice normal by their positions (PlanePositionSequence)"
            )
        origin = geo.origin
    image.spacing = (geo.spacing[0], *geo.spacing[1:])
    image.origin = origin
    image.direction = tuple(float(v) for v in cols.reshape(-1))


def frame_rescale(ds) -> tuple[np.ndarray, np.ndarray] | None:
    """Each frame's ``(slopes, intercepts)`` when they differ between frames, else None."""
    frames = frame_count(ds)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if frames < 2 or per_frame is None or len(per_frame) != frames:
        return None
    slopes = np.array([_num(functional(ds, _PVT, "RescaleSlope", k), 1.0)
                       for k in range(frames)])  # fmt: skip
    inters = np.array([_num(functional(ds, _PVT, "RescaleIntercept", k), 0.0)
                       for k in range(frames)])  # fmt: skip
    if np.all(slopes == slopes[0]) and np.all(inters == inters[0]):
        return None
    return slopes, inters


def rescale_frames(data: np.ndarray, ds, applied: tuple[float, float] | None) -> np.ndarray:
    """``data`` (file order, ``(frames, Y, X)``) with each frame's own rescale.

    ``applied`` is the ``(slope, intercept)`` the decoder already applied to every frame
    (GDCM: the first frame's), None when ``data`` holds stored values.

    Raises
    ------
    ValueError
        When the decoder's output cannot be turned back into stored values.
    """
    found = frame_rescale(ds)
    if found is None or data.shape[0] != len(found[0]):
        return data
    slopes, inters = found
    values = np.asarray(data, np.float64)
    if applied is not None:
        slope, inter = applied
        values = (values - inter) / (slope or 1.0)
        if not np.allclose(values, np.round(values), atol=1e-3):
            raise ValueError(
                "its frames have their own RescaleSlope/Intercept, and the decoded pixels "
                "cannot be turned back into stored values to apply them"
            )
        values = np.round(values)
    shape = (-1,) + (1,) * (values.ndim - 1)
    return values * slopes.reshape(shape) + inters.reshape(shape)


def first_rescale(ds) -> tuple[float, float]:
    """The ``(slope, intercept)`` GDCM applies to every frame: the top-level, shared or
    first frame's values."""
    return (
        _num(functional(ds, _PVT, "RescaleSlope"), 1.0),
        _num(functional(ds, _PVT, "RescaleIntercept"), 0.0),
    )


def _num(value, default: float) -> float:
    return default if value in (None, "") else float(value)
