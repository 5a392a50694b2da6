"""TIFF, OME-TIFF and ImageJ hyperstacks through tifffile.

Spacing comes from OME-XML (``PhysicalSizeX/Y/Z`` and their units) or from ImageJ
metadata (``XResolution``/``YResolution`` tags as pixels per unit, ``spacing`` for Z,
``unit``). Resolution tags of other TIFFs are print resolutions (often a default
72 dpi), not pixel sizes, and are ignored: spacing is then 1. The first series is read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._image import ImageData
from ._units import UNITLESS, canonical, common_unit

_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)
_BROKEN = ("invalid page offset", "failed to read", "truncat", "corrupt", "failed to reshape")


def read_tiff(path: Path) -> ImageData:
    """Read the first series of a TIFF with its spacing (see the module notes)."""
    import tifffile

    with _fail_on_damage(path), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        data = series.asarray()
        axes = series.axes
        sizes, units = _ome_sizes(tif) if tif.is_ome else _imagej_sizes(tif)
    rgb = axes.endswith("S") and data.shape[-1] in (3, 4)
    spatial = axes[:-1] if rgb else axes
    order = [ax for ax in "XYZ" if ax in sizes]
    unit, factors = common_unit([units.get(ax) for ax in order])
    scaled = {ax: sizes[ax] * f for ax, f in zip(order, factors)}
    spacing = tuple(float(scaled.get(ax, 1.0)) for ax in spatial)
    metadata = {"axes": axes}
    if unit not in UNITLESS:
        metadata["unit"] = canonical(unit)
        metadata["units"] = tuple(metadata["unit"] if ax in "XYZ" else "" for ax in spatial)
    if len({units.get(ax) for ax in order}) > 1:
        metadata.setdefault("notes", []).append(
            "the axes had different units ("
            + ", ".join(f"{ax}: {units.get(ax)}" for ax in order)
            + f"); all are converted to {metadata.get('unit', unit)}"
        )
    return ImageData(data, spacing, (0.0,) * len(spatial), rgb=rgb, metadata=metadata)


def write_tiff(
    path: str,
    data: np.ndarray,
    *,
    spacing: tuple[float, ...],
    unit: str | None,
    rgb: bool,
    ome: bool,
) -> None:
    """Write an ImageJ hyperstack (or OME-TIFF) with zlib compression and the spacing.

    ImageJ holds uint8, uint16, int16 and float32 with axes ``(Z)YX(S)`` or ``CYX``;
    other dtypes and axes, and ``ome=True``, give an OME-TIFF with ``PhysicalSize*``.

    Parameters
    ----------
    data : (Y, X[, S]), (Z, Y, X[, S]) or (C, [Z,] Y, X) ndarray
    spacing : tuple of float
        One per trailing spatial axis (2 or 3), in numpy order.
    """
    import tifffile

    nspatial = len(spacing)
    extra = data.ndim - nspatial - (1 if rgb else 0)
    if nspatial not in (2, 3) or extra not in (0, 1):
        raise ValueError(
            f"TIFF writer takes 2D or 3D data with an optional leading channel axis; got "
            f"shape {data.shape} with {nspatial} spatial axes"
        )
    axes = "C" * extra + "ZYX"[3 - nspatial :] + ("S" if rgb else "")
    imagej = not ome and data.dtype in _IMAGEJ_DTYPES and axes in ("YX", "ZYX", "CYX", "YXS")
    imagej = imagej or (not ome and axes == "ZYXS" and data.dtype == np.uint8)
    kwargs = {"compression": "zlib", "photometric": "rgb" if rgb else "minisblack"}
    sy, sx = spacing[-2:]
    if imagej:
        meta = {"axes": axes}
        if nspatial == 3:
            meta["spacing"] = float(spacing[0])
        if unit:
            meta["unit"] = "micron" if unit == "µm" else unit
        tifffile.imwrite(
            path, data, imagej=True, resolution=(1 / sx, 1 / sy), metadata=meta, **kwargs
        )
        return
    meta = {"axes": axes, "PhysicalSizeX": float(sx), "PhysicalSizeY": float(sy)}
    if nspatial == 3:
        meta["PhysicalSizeZ"] = float(spacing[0])
    if unit:
        meta.update({f"PhysicalSize{a}Unit": unit for a in "XYZ"[:nspatial]})
    tifffile.imwrite(path, data, ome=True, metadata=meta, **kwargs)


def _ome_sizes(tif) -> tuple[dict[str, float], dict[str, str]]:
    import tifffile

    try:
        image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
        pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
    except (KeyError, IndexError, TypeError, ValueError):
        return {}, {}
    sizes = {
        ax: float(pixels[f"PhysicalSize{ax}"]) for ax in "XYZ" if f"PhysicalSize{ax}" in pixels
    }
    return sizes, {ax: str(pixels.get(f"PhysicalSize{ax}Unit", "µm")) for ax in sizes}


def _imagej_sizes(tif) -> tuple[dict[str, float], dict[str, str]]:
    meta = tif.imagej_metadata
    if not meta:
        return {}, {}
    sizes = {}
    tags = tif.pages.first.tags
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in tags:
            num, den = tags[tag].value
            if num and den:
                sizes[ax] = den / num
    if meta.get("spacing"):
        sizes["Z"] = float(meta["spacing"])
    unit = meta.get("unit")
    return sizes, ({ax: unit for ax in sizes} if unit else {})


@contextlib.contextmanager
def _fail_on_damage(path: Path) -> Iterator[None]:
    """tifffile logs (and skips) broken pages of a truncated file; make that an error."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("tifffile")
    handler = Collect(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    damage = [r.getMessage() for r in records if any(b in r.getMessage() for b in _BROKEN)]
    if damage:
        raise ValueError(f"the TIFF is damaged ({damage[0].strip()})")
