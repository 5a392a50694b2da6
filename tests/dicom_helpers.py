"""A small CT series written with pydicom (not by this package), for DICOM SEG tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

SPACING = (0.75, 0.6)  # PixelSpacing: row spacing (Y), column spacing (X), mm
THICKNESS = 2.5
ORIGIN = (-100.0, -80.0, 40.0)


def ct_series(folder: Path, slices: int = 4, rows: int = 24, cols: int = 20) -> np.ndarray:
    """A CT series written with pydicom, files in shuffled order; returns the HU volume."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir()
    rng = np.random.default_rng(0)
    hu = rng.integers(-200, 300, (slices, rows, cols)).astype(np.int16)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for i, z in enumerate(rng.permutation(slices)):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^CT", "42", "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Manufacturer = "", "pydicom"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, int(z) + 1
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + THICKNESS * int(z)]
        ds.PixelSpacing = list(SPACING)
        ds.SliceThickness = THICKNESS
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = (hu[z].astype(np.int32) + 1024).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice_{i:02d}.dcm", enforce_file_format=True)
    return hu
