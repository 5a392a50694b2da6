"""Synthetic DICOM files written with pydicom, with chosen geometry and rescale."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def dataset(sop_class: str, *, modality: str = "CT", series_uid: str | None = None) -> Dataset:
    """A minimal Part 10 dataset of ``sop_class`` with patient/study/series identity."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "Test^Geometry", "GEO1"
    ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    ds.StudyTime, ds.StudyID, ds.AccessionNumber = "120000", "1", "A1"
    ds.ReferringPhysicianName = "Ref^Doc"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.StudyDate, ds.SeriesNumber = "20240101", 1
    return ds


def image_slice(
    path: Path,
    pixels: np.ndarray,
    *,
    position: Sequence[float] | None,
    orientation: Sequence[float] = AXIAL,
    spacing: tuple[float, float] = (0.8, 0.7),
    series_uid: str,
    number: int = 1,
    slope: float = 1.0,
    intercept: float = -1024.0,
    modality: str = "CT",
    thickness: float = 2.5,
) -> Path:
    """One CT-like slice: stored uint16/int16 ``pixels`` (Y, X) at ``position`` (LPS mm)."""
    ds = dataset(CTImageStorage, modality=modality, series_uid=series_uid)
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = number
    if position is not None:  # None: a screenshot-like slice with no place in space
        ds.ImagePositionPatient = [f"{p:.4f}" for p in position]
        ds.ImageOrientationPatient = [f"{o:.6f}" for o in orientation]
    ds.PixelSpacing = [f"{s:g}" for s in spacing]
    ds.SliceThickness = f"{thickness:g}"
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def series(
    folder: Path,
    stored: np.ndarray,
    positions: Sequence[Sequence[float]],
    *,
    prefix: str = "s",
    series_uid: str | None = None,
    slopes: Sequence[float] | None = None,
    **kwargs,
) -> str:
    """Write ``stored`` (Z, Y, X) slice by slice at ``positions``; return the series UID."""
    uid = series_uid or generate_uid()
    for z, pos in enumerate(positions):
        slope = 1.0 if slopes is None else slopes[z]
        image_slice(
            folder / f"{prefix}{z:03d}.dcm",
            stored[z],
            position=pos,
            series_uid=uid,
            number=z + 1,
            slope=slope,
            **kwargs,
        )
    return uid


def axial_positions(n: int, step: float = 2.5, origin=(-100.0, -80.0, 30.0), tilt_deg=0.0):
    """Slice positions along z; ``tilt_deg`` shifts each slice in y (gantry tilt)."""
    shift = step * np.tan(np.radians(tilt_deg))
    return [(origin[0], origin[1] + k * shift, origin[2] + k * step) for k in range(n)]


def stored_ct(shape=(6, 16, 12), seed=0) -> np.ndarray:
    """uint16 stored values whose HU (intercept -1024) span air to bone."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, 24, np.uint16)  # -1000 HU
    vol[:, 3:-3, 3:-3] = rng.integers(924, 1224, (shape[0], shape[1] - 6, shape[2] - 6))
    return vol


def seg_for(folder: Path, out: Path, masks: dict[int, np.ndarray]) -> Path:
    """A DICOM SEG (highdicom) of the series in ``folder``: one binary mask per segment.

    ``masks`` maps segment numbers (1, 2...) to ``(Z, Y, X)`` bool arrays in the order
    of the slices sorted along the normal (positions increasing).
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    sources.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=f"organ {n}",
            segmented_property_category=codes.SCT.Organ,
            segmented_property_type=codes.SCT.Liver,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n in sorted(masks)
    ]
    stacked = np.stack([masks[n] for n in sorted(masks)], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stacked,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=99,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out


def enhanced(folder: Path, out: Path) -> Path:
    """The single-frame slices of ``folder`` converted to one Enhanced CT (highdicom)."""
    import highdicom as hd
    import pydicom

    sources = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    for ds in sources:
        ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions = "t", "t", "0"
        ds.ContentDate, ds.ContentTime = "20240101", "120000"
    converted = hd.legacy.LegacyConvertedEnhancedCTImage(
        sources,
        series_instance_uid=generate_uid(),
        series_number=5,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    converted.save_as(out)
    return out


def shuffle_frames(path: Path, order: Sequence[int]) -> Path:
    """Store the frames of an uncompressed multi-frame file in ``order`` (pixels and their
    per-frame functional groups move together), as some scanners and converters do."""
    import pydicom

    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    ds.PixelData = np.ascontiguousarray(frames[list(order)]).tobytes()
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = [groups[i] for i in order]
    ds.save_as(path)
    return path


def per_frame_reference(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pydicom's reading of an enhanced multi-frame file, frame by frame, in file order:
    ``(values, positions, iop)``: each frame's stored pixels times its own RescaleSlope
    plus its own RescaleIntercept (PixelValueTransformationSequence, per frame or shared),
    and its PlanePositionSequence position."""
    import pydicom

    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    values, positions = [], []
    for k, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pvt = frame.get("PixelValueTransformationSequence") or shared.get(
            "PixelValueTransformationSequence"
        )
        slope, inter = (1.0, 0.0)
        if pvt:
            slope, inter = float(pvt[0].RescaleSlope), float(pvt[0].RescaleIntercept)
        values.append(ds.pixel_array[k] * slope + inter)
        positions.append([float(v) for v in frame.PlanePositionSequence[0].ImagePositionPatient])
    iop = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    return np.stack(values), np.asarray(positions), iop
