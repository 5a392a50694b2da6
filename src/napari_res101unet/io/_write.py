"""``write_image`` and ``write_labels``: atomic writes that keep the geometry."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._content import smallest_int_dtype
from ._formats import ITK_VOLUMES, LABEL_WRITABLE, NIFTI, TIFF, WRITABLE, format_name, suffix
from ._units import to_mm
from .files import atomic_target

_PLAIN_DTYPES = {".png": (np.uint8, np.uint16), ".bmp": (np.uint8,)}


def write_image(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    rgb: bool = False,
    unit: str | None = None,
    nifti: dict | None = None,
) -> Path:
    """Write ``data`` in the format of ``path``'s suffix, atomically.

    The pixels go to a temporary file in the same folder, which then replaces ``path``
    (``os.replace``): a failure leaves any previous ``path`` untouched and no temporary
    file behind.

    Parameters
    ----------
    path : str or PathLike
        ``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ``.tif``/``.tiff`` (ImageJ
        hyperstack, or OME-TIFF for ``.ome.tif`` and dtypes ImageJ lacks), ``.png``
        (uint8/uint16) or ``.bmp`` (uint8), the last two 2D only.
    data : (Y, X[, C]) or ([K,] Z, Y, X[, C]) ndarray
        A leading ``K`` axis (e.g. class probabilities) is allowed beyond ``spacing``.
    spacing, origin : sequence of float, optional
        Per spatial axis in numpy order (napari's ``scale`` and ``translate``). A fourth,
        leading value is the step of a leading axis (a 4D image's time step, TR): NIfTI
        stores it (``pixdim[4]``, with the source's time unit), NRRD and MetaImage refuse
        a step other than 1, TIFF drops it.
    direction : sequence of float, optional
        ITK direction cosines (row-major, x/y/z) for NIfTI/NRRD/MHA: 9 values (or 16 from
        a 4D source, whose spatial 3x3 block is used for 3D data).
    rgb : bool
        The last axis is colour.
    unit : str, optional
        Unit of ``spacing``/``origin``. TIFF stores it; NIfTI, NRRD and MetaImage store
        millimetres, so other lengths (``"µm"``, ``"nm"``, ``"cm"``...) are converted and
        unknown ones refused.
    nifti : dict, optional
        The source's ``metadata["nifti"]`` (sform/qform codes and qform) to keep.

    Raises
    ------
    ValueError
        For a format, dtype or shape the target format cannot hold.
    """
    path = Path(path)
    ext = suffix(path)
    if ext not in WRITABLE:
        raise ValueError(f"{path}: cannot write {ext or 'no suffix'!r}; writable: {WRITABLE}")
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    nspatial = data.ndim - (1 if rgb else 0)
    spacing = _per_axis(spacing, 1.0, nspatial, "spacing")
    origin = _per_axis(origin, 0.0, len(spacing), "origin")
    if ext in _PLAIN_DTYPES:
        data = _plain_ready(path, data, rgb, _PLAIN_DTYPES[ext])
        spacing, origin = spacing[-2:], origin[-2:]
    if ext in TIFF:  # a leading axis (channels, time) is stored without a step
        spacing, origin = spacing[-3:], origin[-3:]
    if ext in ITK_VOLUMES:
        lead = max(0, len(spacing) - 3)  # steps of leading non-spatial axes (TR): not lengths
        spacing, origin = (
            v[:lead] + to_mm(v[lead:], unit, format_name(path)) for v in (spacing, origin)
        )
        _check_leading_steps(path, ext, spacing[:lead])
        direction = _spatial_direction(direction, min(len(spacing), 3), ext)
    with atomic_target(path, suffix=ext) as tmp:
        _write_any(str(tmp), ext, data, spacing, origin, direction, rgb, unit, nifti)
    return path


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    spacing: Sequence[float] | None = None,
    origin: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    unit: str | None = None,
    nifti: dict | None = None,
) -> Path:
    """Write a label map losslessly in the smallest unsigned dtype that holds it.

    Same as :func:`write_image` (atomic, geometry kept) for integer or bool ``labels``
    of shape ``(Y, X)`` or ``(Z, Y, X)``; JPEG and BMP are refused.
    """
    path = Path(path)
    ext = suffix(path)
    if ext not in LABEL_WRITABLE:
        raise ValueError(f"{path}: labels are written as {', '.join(LABEL_WRITABLE)}; not {ext!r}")
    labels = np.asarray(labels)
    if labels.dtype != bool and labels.dtype.kind not in "ui":
        raise ValueError(f"labels must be integers or bool, not {labels.dtype}")
    if labels.dtype != bool:
        labels = labels.astype(smallest_int_dtype(labels), copy=False)
    return write_image(
        path, labels, spacing=spacing, origin=origin, direction=direction, unit=unit, nifti=nifti
    )


def _write_any(tmp, ext, data, spacing, origin, direction, rgb, unit, nifti) -> None:
    if ext in NIFTI and not rgb:
        from ._nifti import write_nifti

        write_nifti(tmp, data, spacing, origin, direction, nifti)
        return
    if ext in TIFF:
        from ._tiff import write_tiff

        write_tiff(tmp, data, spacing=spacing, unit=unit, rgb=rgb, ome=ext.startswith(".ome"))
        return
    from ._itk import write_itk

    extra = data.ndim - len(spacing) - (1 if rgb else 0)
    if extra:  # leading non-spatial axes become extra ITK dimensions with unit spacing
        spacing, origin = (1.0,) * extra + spacing, (0.0,) * extra + origin
    if direction is not None and len(spacing) > math.isqrt(len(direction)):
        direction = _with_leading_axes(direction, len(spacing))
    compress = ext in ITK_VOLUMES
    write_itk(
        tmp, data, spacing=spacing, origin=origin, direction=direction, rgb=rgb, compress=compress
    )


def _with_leading_axes(direction, ndim: int) -> tuple[float, ...]:
    """An ITK direction for ``ndim`` axes: the spatial block, then identity for the
    leading numpy axes (ITK's last ones)."""
    d = np.asarray(direction, float).reshape(-1)
    n = math.isqrt(d.size)
    full = np.eye(ndim)
    full[:n, :n] = d.reshape(n, n)
    return tuple(float(v) for v in full.reshape(-1))


def _check_leading_steps(path: Path, ext: str, steps: tuple[float, ...]) -> None:
    """NRRD and MetaImage keep no unit for a time step (TR): refuse rather than have it
    read back as millimetres."""
    if ext in NIFTI or all(s == 1.0 for s in steps):
        return
    raise ValueError(
        f"{path}: this {len(steps) + 3}D layer has a step of {steps[0]:g} along its first "
        f"axis (a time step, TR), which {format_name(path)} cannot store with its unit (it "
        "would read back as millimetres, and ITK writes a 4D space without its patient "
        "orientation); write NIfTI (.nii.gz), which keeps the time step, its unit and the "
        "spatial direction"
    )


def _spatial_direction(direction, nspatial: int, ext: str) -> tuple[float, ...] | None:
    """ITK cosines for ``nspatial`` axes: a 4D source's 3x3 block for 3D data; refused
    when NRRD/MetaImage cannot hold them (not orthonormal: a sheared NIfTI sform)."""
    if direction is None:
        return None
    d = np.asarray(direction, float).reshape(-1)
    n = round(math.sqrt(d.size))
    if n * n != d.size or n < nspatial:
        return None
    block = d.reshape(n, n)[:nspatial, :nspatial] if n > nspatial else d.reshape(n, n)
    if ext not in NIFTI and not np.allclose(block.T @ block, np.eye(len(block)), atol=1e-4):
        raise ValueError(
            f"the direction {block.round(4).tolist()} is not orthonormal (a sheared "
            f"geometry); {ext} cannot hold it: write NIfTI (.nii.gz), whose sform can"
        )
    return tuple(float(v) for v in block.reshape(-1))


def _per_axis(values, default: float, n: int, what: str) -> tuple[float, ...]:
    if values is None:
        return (default,) * min(n, 3)
    values = tuple(float(v) for v in values)
    if not 1 <= len(values) <= n:
        raise ValueError(f"{what} {values} has {len(values)} values for {n} spatial axes")
    return values


def _plain_ready(path: Path, data: np.ndarray, rgb: bool, dtypes: tuple) -> np.ndarray:
    """PNG/BMP hold one 2D image: drop leading length-1 axes and check the dtype."""
    while data.ndim > (3 if rgb else 2) and data.shape[0] == 1:
        data = data[0]
    if data.ndim != (3 if rgb else 2):
        raise ValueError(
            f"{path.name} holds one 2D image; got shape {data.shape} (use .tif or .nii.gz)"
        )
    if data.dtype not in dtypes and data.dtype.kind in "ui" and data.size and data.min() >= 0:
        top, hi = np.iinfo(dtypes[-1]).max, int(data.max())
        if hi <= top:  # integers that fit are stored exactly
            return data.astype(dtypes[-1])
        raise ValueError(
            f"{path.name}: values up to {hi:,} (objects or labels) do not fit a "
            f"{path.suffix.lstrip('.').upper()} ({np.dtype(dtypes[-1]).name}, at most "
            f"{top:,}); write .tif or .nii.gz instead"
        )
    if data.dtype not in dtypes:
        allowed = ", ".join(np.dtype(d).name for d in dtypes)
        raise ValueError(f"{path.name}: {data.dtype} cannot be stored losslessly; use {allowed}")
    return data
