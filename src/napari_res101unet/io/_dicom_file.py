"""One DICOM file: single- or multi-frame image, RT Dose, 16-bit colour, mosaic, SEG.

* Pixels are decoded by GDCM (SimpleITK) in one pass (no separate information pass: it
  parsed compressed files twice); by pydicom for 16-bit colour (whose colours GDCM mixes
  up) and big-endian files (whose 32-bit values GDCM swaps wrongly); when GDCM fails,
  pydicom decodes the file or names the damage ("truncated").
* Native PixelData shorter than the header declares is refused (GDCM pads it).
* A multi-frame file's frame positions are checked like a series' slices (tilt, gaps);
  frames not stored in spatial order are sorted by their positions, and each frame gets
  its own RescaleSlope/Intercept (see :mod:`._dicom_frames`).
* A single slice's z spacing is ``SpacingBetweenSlices``, else ``SliceThickness``.
* RT Dose is multiplied by ``DoseGridScaling`` (float32; ``metadata["value_unit"]``).
* A Siemens mosaic opens as the volume it tiles (:mod:`._dicom_mosaic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._content import narrow_integers
from ._dicom_frames import (
    first_rescale,
    frame_geometry,
    frame_rescale,
    place_frames,
    rescale_frames,
)
from ._dicom_header import (
    RT_DOSE_SOP,
    SEG_SOP,
    big_endian,
    check_pixel_data,
    describe,
    header,
    modality_into,
    num,
    sop_class,
)
from ._image import ImageData


def read_dicom_file(path: Path, ds=None) -> ImageData:
    """One DICOM file (single- or multi-frame image, RT Dose, mosaic or SEG)."""
    ds = header(path) if ds is None else ds
    if ds is None:
        raise ValueError("not a DICOM file (no DICOM header could be parsed)")
    what = describe(ds)
    if what is not None:
        raise ValueError(f"it is {what}: no image to show")
    if sop_class(ds) == SEG_SOP:
        from ._dicom_segread import read_seg

        return read_seg(path)
    check_pixel_data(ds)
    from ._dicom_mosaic import is_mosaic, read_mosaic

    if is_mosaic(ds):
        image = read_mosaic(path)
        image.data = narrow_integers(image.data)
        modality_into(image, ds)
        return image
    geo = frame_geometry(ds, path.name)
    image = _decode(path, ds)
    if geo is not None:
        place_frames(image, geo)
    if int(ds.get("NumberOfFrames", 1) or 1) == 1 and len(image.spacing) == 3:
        dz = num(ds, "SpacingBetweenSlices", 0.0) or num(ds, "SliceThickness", 0.0)
        image.spacing = (dz or image.spacing[0], *image.spacing[1:])  # one slice's extent
    if sop_class(ds) == RT_DOSE_SOP and "DoseGridScaling" in ds:
        image.data = image.data.astype(np.float32) * np.float32(ds.DoseGridScaling)
        image.metadata["value_unit"] = {"GY": "Gy", "RELATIVE": "relative"}.get(
            str(ds.get("DoseUnits", "")).upper(), str(ds.get("DoseUnits", ""))
        )
        image.metadata["dose_grid_scaling"] = float(ds.DoseGridScaling)
    modality_into(image, ds)
    return image


def _decode(path: Path, ds) -> ImageData:
    """Pixels in file order with every frame's own rescale applied (grey images)."""
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    if colour and int(ds.get("BitsAllocated", 8) or 8) > 8:
        return _read_colour_pydicom(path)
    image = _read_pydicom(path) if big_endian(ds) else _read_sitk(path)
    if image.rgb or colour:
        return image
    if image.metadata.get("decoded_by") == "pydicom":  # stored values: rescale them all
        image.data = _modality(image.data, ds)
    else:  # GDCM applied the first frame's rescale to all frames
        image.data = rescale_frames(image.data, ds, first_rescale(ds))
    image.data = narrow_integers(image.data)
    if frame_rescale(ds) is not None:
        image.metadata["rescale"] = "per frame (RescaleSlope/Intercept differ between frames)"
        if image.data.dtype.kind == "f":
            image.data = image.data.astype(np.float32)
    return image


def _modality(stored: np.ndarray, ds) -> np.ndarray:
    """Stored values with the frames' (or the file's) RescaleSlope/Intercept applied."""
    scaled = rescale_frames(stored, ds, None)
    if scaled is not stored:
        return scaled
    slope, inter = first_rescale(ds)
    return stored * slope + inter if (slope, inter) != (1.0, 0.0) else stored


def _read_sitk(path: Path) -> ImageData:
    """GDCM decodes once (no separate information pass: that parsed the file twice)."""
    import SimpleITK as sitk

    from ._itk import from_sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        return from_sitk(reader.Execute())
    except RuntimeError:
        return _read_pydicom(path)  # GDCM failed: pydicom may decode it, or say why


def _read_colour_pydicom(path: Path) -> ImageData:
    """16-bit RGB: pydicom decodes the samples right (GDCM mixes their bytes)."""
    import pydicom

    ds = pydicom.dcmread(path)
    data = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    data = data.reshape((frames, *data.shape[-3:]))
    dy, dx = (float(v) for v in ds.get("PixelSpacing", (1.0, 1.0)))
    top = float(2 ** int(ds.get("BitsStored", ds.BitsAllocated)) - 1)
    return ImageData(
        data, (1.0, dy, dx), (0.0, 0.0, 0.0), None, rgb=True,
        metadata={"unit": "mm"}, window=(0.0, top),
    )  # fmt: skip


def _read_pydicom(path: Path) -> ImageData:
    """Stored values decoded by pydicom (big-endian files, or when GDCM fails), or the
    damage named; rescale is left to the caller."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:  # pydicom raises many kinds of errors on damaged files
        ds = None
    if ds is None or "Rows" not in ds or "PixelData" not in ds:
        raise ValueError("no DICOM image could be parsed (not a DICOM file, or a damaged one)")
    try:
        data = ds.pixel_array
    except ValueError as exc:
        if "less than expected" in str(exc):
            expected = str(exc).split("(")[-1].split(")")[0]
            raise ValueError(f"the file is truncated: pixel data {expected}") from None
        raise ValueError(f"pydicom cannot decode its pixels either: {exc}") from None
    except (RuntimeError, NotImplementedError) as exc:
        raise ValueError(f"neither GDCM nor pydicom can decode its pixels: {exc}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    data = data.reshape((frames, *data.shape[-3 if colour else -2 :]))
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    dy, dx = (float(v) for v in ds.get("PixelSpacing", (1.0, 1.0)))
    pos = [float(v) for v in ds.get("ImagePositionPatient", (0.0, 0.0, 0.0))]
    iop = ds.get("ImageOrientationPatient")
    direction = None
    if iop is not None:
        row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
        direction = tuple(np.stack([row, col, np.cross(row, col)], 1).reshape(-1).tolist())
    thickness = num(ds, "SliceThickness", 1.0) or 1.0
    return ImageData(
        data, (thickness, dy, dx), tuple(pos[::-1]), direction, rgb=colour,
        metadata={"unit": "mm", "decoded_by": "pydicom"},
    )  # fmt: skip
