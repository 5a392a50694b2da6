"""NIfTI-1 and NIfTI-2 through nibabel, following nibabel's header rules.

* Geometry: nibabel's ``img.affine`` (the sform when its code is > 0, else the qform when
  its code is > 0, else the voxel sizes) is used, as nibabel, FSL, SPM and ANTs do. When
  sform and qform are both set and disagree, ``metadata["notes"]`` says so. A sheared
  sform is kept (the direction is then not orthonormal) and written back by nibabel.
* The affine (RAS) becomes ITK's convention (LPS): ``spacing`` (column norms),
  ``origin`` and ``direction`` (unit columns), reversed to numpy order ``(Z, Y, X)``.
  A 2D image stays ``(1, Y, X)`` so its slice position survives a round trip; a 4D image
  is ``(T, Z, Y, X)`` with a 3x3 spatial ``direction`` (so a 3D mask drawn on it is
  written with the source's orientation).
* Spatial units (``xyzt_units``) are converted to millimetres.
* ``scl_slope``/``scl_inter`` are applied; integral results that fit int16 (CT stored as
  uint16 with an intercept of -1024) become int16, as do integral float CT volumes, so
  CT keeps its Hounsfield window in display and in segmentation.
* ``metadata["nifti"]`` keeps the sform/qform codes, the qform and the time unit, which
  :func:`write_nifti` restores when the written image has the source's geometry (codes
  0/0 stay 0/0: ITK tools place such files otherwise than nibabel, image and mask alike).
  A 4D image's time step (TR) is written back in ``pixdim[4]``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._content import looks_like_hu, narrow_integers
from ._formats import suffix
from ._image import ImageData
from ._limits import gzip_size, nifti_header

LPS = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS (its own inverse)
_TO_MM = {"meter": 1000.0, "mm": 1.0, "micron": 0.001, "unknown": 1.0}
_TIME = {"sec": "s", "msec": "ms", "usec": "µs", "hz": "Hz", "ppm": "ppm", "rads": "rad/s"}


def read_nifti(path: Path) -> ImageData:
    """Read a ``.nii``/``.nii.gz`` (NIfTI-1 or NIfTI-2) with nibabel's geometry."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    _check_complete(path, nifti_header(path))  # before nibabel reads anything
    try:
        img = nib.load(str(path))
    except ImageFileError:
        raise ValueError("not a NIfTI file (no valid NIfTI-1 or NIfTI-2 header)") from None
    if not isinstance(img, nib.Nifti1Image):  # Nifti2Image subclasses Nifti1Image
        what = type(img).__name__
        if what.startswith("Cifti"):
            what += " (CIFTI: data on surfaces and grayordinates, not an image volume)"
        raise ValueError(f"it is a {what}, not a NIfTI image")
    hdr = img.header
    raw = np.asanyarray(img.dataobj)
    slope, inter = hdr.get_slope_inter()
    scaled = (slope not in (None, 1.0)) or (inter not in (None, 0.0))
    raw, rgb = _colour_last(raw)
    if raw.ndim == 2 + rgb:
        raw = raw[:, :, None]
    spatial = raw.ndim - rgb
    axes = tuple(range(spatial))[::-1] + ((spatial,) if rgb else ())
    data = np.ascontiguousarray(raw.transpose(axes))
    if not data.dtype.isnative:  # big-endian files: native order for napari and numpy ops
        data = data.astype(data.dtype.newbyteorder("="))
    if scaled or (data.dtype.kind == "f" and looks_like_hu(data)):
        data = narrow_integers(data)
    space_unit, time_unit = hdr.get_xyzt_units()
    to_mm = _TO_MM.get(space_unit, 1.0)
    spacing, origin, direction = affine_to_itk(img.affine, to_mm)
    zooms = hdr.get_zooms()
    extra = tuple(float(z) for z in zooms[3:spatial])[::-1]
    image = ImageData(
        data,
        extra + spacing,
        (0.0,) * len(extra) + origin,
        direction,
        rgb=rgb,
        metadata={"unit": "mm", "units": (_TIME.get(time_unit, ""),) * len(extra) + ("mm",) * 3},
    )
    image.metadata["nifti"] = _codes(img)
    _note_disagreement(img, image.metadata)
    if to_mm != 1.0:
        image.metadata.setdefault("notes", []).append(f"spacing converted from {space_unit} to mm")
    return image


def _colour_last(raw: np.ndarray) -> tuple[np.ndarray, bool]:
    """RGB(A) as a last axis: RGB24/RGBA32 records, or ITK's vector NIfTI (dim 5 = 3/4).

    Other vector data (displacement fields, tensors) is refused: it is not an image.
    """
    if raw.dtype.names:
        return np.stack([raw[name] for name in raw.dtype.names], axis=-1), True
    if raw.ndim == 5 and raw.shape[3] == 1:
        if raw.shape[4] in (3, 4) and raw.dtype == np.uint8:
            return raw[:, :, :, 0, :], True
        raise ValueError(
            f"it holds {raw.shape[4]} {raw.dtype} components per voxel (a vector field, "
            "e.g. a displacement field), not an image"
        )
    return raw, False


def affine_to_itk(affine, to_mm: float = 1.0):
    """``(spacing, origin, direction)`` in numpy order and ITK's LPS from a RAS affine."""
    lps = LPS @ np.asarray(affine, float)[:3, :4] * to_mm
    cols = lps[:, :3]
    spacing = np.linalg.norm(cols, axis=0)
    direction = cols / np.where(spacing > 0, spacing, 1.0)
    return (
        tuple(float(s) for s in spacing[::-1]),
        tuple(float(o) for o in lps[:, 3][::-1]),
        tuple(float(d) for d in direction.reshape(-1)),
    )


def itk_to_affine(spacing, origin, direction) -> np.ndarray:
    """The RAS affine of numpy-order ``spacing``/``origin`` and ITK ``direction``."""
    spacing = np.asarray(spacing, float)[::-1]
    origin = np.asarray(origin, float)[::-1]
    d = np.eye(3) if direction is None else np.asarray(direction, float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS @ (d * spacing)
    affine[:3, 3] = LPS @ origin
    return affine


def write_nifti(path: str, data: np.ndarray, spacing, origin, direction, nifti=None) -> None:
    """Write ``(Z, Y, X)`` (or ``(..., Z, Y, X)``) ``data`` with its affine and codes.

    ``nifti`` is the source's ``metadata["nifti"]``: its sform/qform codes are kept, and
    its qform too when the data has the source's affine (a mask drawn on the source).
    """
    import nibabel as nib

    nifti = nifti or {}
    spacing, origin = tuple(spacing), tuple(origin)
    if len(spacing) == 2:
        data, spacing, origin = data[None], (1.0, *spacing), (0.0, *origin)
        direction = _planar_direction(direction)
    affine = itk_to_affine(spacing[-3:], origin[-3:], direction)
    if data.dtype in (np.int64, np.uint64) and data.size and data.max() < 2**31:
        data = data.astype(np.int32) if data.min() >= -(2**31) else data
    arr = data.transpose(tuple(range(data.ndim))[::-1])
    img = nib.Nifti1Image(arr, affine)
    img.header.set_zooms([*spacing[::-1], *(1.0,) * (data.ndim - len(spacing))])
    img.header.set_xyzt_units("mm", nifti.get("time_unit") or "sec")
    sform_code = int(nifti.get("sform_code", 1))
    qform_code = int(nifti.get("qform_code", 1))
    if sform_code == qform_code == 0 and np.allclose(
        img.header.get_base_affine(), affine, atol=1e-4
    ):  # the source had no sform/qform: neither has the mask, so every tool (ITK's
        # identity, nibabel's base affine) places both alike
        img.set_sform(affine, code=0)
        img.set_qform(affine, code=0)
        nib.save(img, path)
        return
    img.set_sform(affine, code=sform_code or 1)
    source_q = nifti.get("qform")
    same = nifti.get("sform") is not None and np.allclose(
        np.reshape(nifti["sform"], (4, 4)), affine, atol=1e-4
    )
    if same and source_q is not None:
        img.set_qform(np.reshape(source_q, (4, 4)), code=qform_code)
    elif _orthonormal(affine):
        img.set_qform(affine, code=qform_code or 1)
    else:  # a qform cannot hold a shear: the sform alone carries it
        img.set_qform(None, code=0)
    nib.save(img, path)


def _planar_direction(direction):
    """A 2D image's 2x2 ITK direction as the 3x3 of its one-slice volume."""
    if direction is None or len(direction) != 4:
        return direction
    d = np.eye(3)
    d[:2, :2] = np.reshape(np.asarray(direction, float), (2, 2))
    return tuple(float(v) for v in d.reshape(-1))


def _orthonormal(affine: np.ndarray) -> bool:
    cols = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return bool(np.allclose(cols.T @ cols, np.eye(3), atol=1e-4))


def _codes(img) -> dict:
    sform, s_code = img.get_sform(coded=True)
    qform, q_code = img.get_qform(coded=True)
    return {
        "version": 2 if type(img).__name__ == "Nifti2Image" else 1,
        "time_unit": img.header.get_xyzt_units()[1],
        "sform_code": int(s_code),
        "qform_code": int(q_code),
        "sform": None if sform is None else [float(v) for v in sform.reshape(-1)],
        "qform": None if qform is None else [float(v) for v in qform.reshape(-1)],
    }


def _note_disagreement(img, metadata: dict) -> None:
    sform, s_code = img.get_sform(coded=True)
    qform, q_code = img.get_qform(coded=True)
    if not (s_code and q_code):
        return
    far = [*(n - 1 for n in img.shape[:3]), *(0,) * (3 - len(img.shape[:3]))]
    corners = np.array([[0, 0, 0, 1], [*far, 1]], float).T
    gap = float(np.abs((sform - qform) @ corners)[:3].max())
    if gap > 0.01:  # a qform's quaternion holds ~1e-6 relative precision only
        metadata.setdefault("notes", []).append(
            f"the NIfTI sform and qform disagree (by up to {gap:.2f} mm); the sform "
            f"(code {int(s_code)}) is used, as nibabel and most tools do"
        )


def _check_complete(path: Path, hdr) -> None:
    """A truncated file must be an error, not zeros or a deep library traceback."""
    itemsize = hdr.get_data_dtype().itemsize
    expected = int(hdr.get_data_offset()) + math.prod(hdr.get_data_shape()) * itemsize
    found = gzip_size(path, expected) if suffix(path) == ".nii.gz" else path.stat().st_size
    if found < expected:
        raise ValueError(f"the file is truncated: {found} of {expected} bytes of header + voxels")
