"""One DICOM file: single- or multi-frame image, RT Dose, 16-bit colour, SEG.

* Pixels are decoded by GDCM (SimpleITK) in one pass (no separate information pass: it
  parsed compressed files twice); 16-bit colour by pydicom, whose colours are right;
  when GDCM fails, pydicom decodes the file or names the damage ("truncated").
* A multi-frame file's frame positions are checked like a series' slices (tilt, gaps).
* A single slice's z spacing is ``SpacingBetweenSlices``, else ``SliceThickness``.
* RT Dose is multiplied by ``DoseGridScaling`` (float32; ``metadata["value_unit"]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._content import narrow_integers
from ._dicom_geometry import stack_geometry
from ._dicom_header import RT_DOSE_SOP, SEG_SOP, describe, header, modality_into, num, sop_class
from ._image import ImageData


def read_dicom_file(path: Path, ds=None) -> ImageData:
    """One DICOM file (single- or multi-frame image, RT Dose, or SEG)."""
    ds = header(path) if ds is None else ds
    if ds is None:
        raise ValueError("not a DICOM file (no DICOM header could be parsed)")
    what = describe(ds)
    if what is not None:
        raise ValueError(f"it is {what}: no image to show")
    if sop_class(ds) == SEG_SOP:
        from ._dicom_segread import read_seg

        return read_seg(path)
    check_frames(ds, path.name)
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    if colour and int(ds.get("BitsAllocated", 8) or 8) > 8:
        image = _read_colour_pydicom(path)
    else:
        image = _read_sitk(path)
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


def check_frames(ds, name: str) -> None:
    """Multi-frame files: the frames' positions must form a regular volume too.

    Uses the per-frame ``PlanePositionSequence`` (enhanced CT/MR/PET) or RT Dose's
    ``GridFrameOffsetVector``; GDCM would stack a tilted or gapped file as if regular.
    """
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames < 2:
        return
    iop = _functional(ds, "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = _functional(ds, "PixelMeasuresSequence", "PixelSpacing")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) == frames:
        try:
            positions = [f.PlanePositionSequence[0].ImagePositionPatient for f in per_frame]
        except (AttributeError, IndexError):
            return
    elif "GridFrameOffsetVector" in ds and "ImagePositionPatient" in ds and iop is not None:
        start = np.asarray(ds.ImagePositionPatient, float)
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        positions = [start + float(o) * normal for o in ds.GridFrameOffsetVector]
    else:
        return
    if iop is None or spacing is None:
        return
    stack_geometry(positions, iop, spacing, f"{name} (multi-frame, {frames} frames)")


def _functional(ds, sequence: str, name: str):
    """An attribute from the dataset, or its shared or first per-frame functional group."""
    if name in ds:
        return ds.get(name)
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        group = ds.get(groups)
        if group and sequence in group[0] and name in group[0][sequence][0]:
            return group[0][sequence][0].get(name)
    return None


def _read_sitk(path: Path) -> ImageData:
    """GDCM decodes once (no separate information pass: that parsed the file twice)."""
    import SimpleITK as sitk

    from ._itk import from_sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        image = from_sitk(reader.Execute())
    except RuntimeError:
        image = _read_pydicom(path)  # GDCM failed: pydicom may decode it, or say why
    if not image.rgb:
        image.data = narrow_integers(image.data)
    return image


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
    """Fallback when GDCM cannot read a file: pydicom decodes it or names the damage."""
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
    check_frames(ds, path.name)
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    data = data.reshape((frames, *data.shape[-3 if colour else -2 :]))
    if not colour:
        slope, inter = num(ds, "RescaleSlope", 1.0), num(ds, "RescaleIntercept", 0.0)
        if (slope, inter) != (1.0, 0.0):
            data = data * slope + inter
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
