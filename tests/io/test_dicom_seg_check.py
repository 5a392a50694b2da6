"""A DICOM SEG is checked before any segmentation (issue 24, item 15, the checking half):
a series without what highdicom copies into a SEG (PatientBirthDate...) is refused with
a message naming the series, a file and every missing attribute."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import axial_positions, series, stored_ct

from napari_res101unet.io import check_seg_source, write_dicom_seg
from napari_res101unet.io._dicom_seg import SEG_COPIED, SEG_NEEDED

pytest.importorskip("highdicom")


def _series(folder: Path, drop: tuple[str, ...] = (), empty: tuple[str, ...] = ()) -> Path:
    series(folder, stored_ct((3, 16, 12)), axial_positions(3))
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for name in drop:
            delattr(ds, name)
        for name in empty:
            setattr(ds, name, None)
        ds.save_as(path)
    return folder


def _write(folder: Path, out: Path) -> Path:
    labels = np.zeros((3, 16, 12), np.uint8)
    labels[1, 4:8, 4:8] = 1
    return write_dicom_seg(out, labels, folder, class_names=["background", "organ"],
                           algorithm_name="test", algorithm_version="1")  # fmt: skip


def test_a_series_without_patient_birth_date_is_refused_before_segmenting(tmp_path):
    folder = _series(tmp_path / "anon", drop=("PatientBirthDate",))
    with pytest.raises(ValueError) as info:
        check_seg_source(folder)
    message = str(info.value)
    assert str(folder) in message and "PatientBirthDate" in message
    assert ".dcm" in message and "NIfTI" in message
    with pytest.raises(ValueError, match="lack PatientBirthDate"):  # not an AttributeError
        _write(folder, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_every_missing_attribute_is_named_at_once(tmp_path):
    folder = _series(tmp_path / "stripped", drop=("PatientBirthDate", "StudyID",
                     "FrameOfReferenceUID"), empty=("PixelSpacing",))  # fmt: skip
    with pytest.raises(ValueError) as info:
        check_seg_source(sorted(folder.glob("*.dcm")))
    for name in ("PatientBirthDate", "StudyID", "FrameOfReferenceUID", "PixelSpacing"):
        assert name in str(info.value)


def test_a_complete_series_passes_and_empty_type_2_values_are_fine(tmp_path):
    folder = _series(tmp_path / "ct", empty=("PatientBirthDate", "PatientSex", "StudyID"))
    assert len(check_seg_source(folder)) == 3
    assert _write(folder, tmp_path / "seg.dcm").is_file()


def test_the_check_knows_every_attribute_highdicom_needs(tmp_path):
    """For each attribute of the slices: the check passes exactly when highdicom writes."""
    base = _series(tmp_path / "base")
    names = [e.keyword for e in pydicom.dcmread(next(base.glob("*.dcm"))) if e.keyword]
    assert {"PatientBirthDate", "StudyID"} <= set(names)
    disagree = []
    for name in names:
        if name == "PixelData":
            continue
        folder = tmp_path / name
        shutil.copytree(base, folder)
        for path in folder.glob("*.dcm"):
            ds = pydicom.dcmread(path)
            delattr(ds, name)
            ds.save_as(path)
        try:
            check_seg_source(folder)
            checked = True
        except ValueError:
            checked = False
        try:
            _write(folder, tmp_path / f"{name}.dcm")
            written = True
        except Exception:  # highdicom's own failure
            written = False
        if checked != written:
            disagree.append((name, checked, written))
    assert not disagree, disagree
    assert {"PatientBirthDate", "FrameOfReferenceUID"} <= set(SEG_COPIED)
    assert "PixelSpacing" in SEG_NEEDED
