"""Single DICOM objects: what they are, dose scaling, 16-bit colour, clear messages.

Uses the test files shipped inside pydicom (skipped when a file is absent); nothing is
downloaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from napari_res101unet._reader import get_reader
from napari_res101unet.io import read_image

FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def bundled(name: str) -> Path:
    path = FILES / name
    if not path.is_file():
        pytest.skip(f"pydicom's bundled {name} is absent")
    return path


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("rtplan.dcm", "an RT Plan"),
        ("rtstruct.dcm", "an RT Structure Set"),
        ("test-SR.dcm", "a Structured Report"),
        ("waveform_ecg.dcm", "a waveform"),
    ],
)
def test_non_image_objects_say_what_they_are_and_are_declined(name, what):
    path = bundled(name)
    assert get_reader(str(path)) is None  # declined from the header: no reader claims it
    with pytest.raises(ValueError, match=f"{what}.*no image to show") as err:
        read_image(path)
    assert "corrupt" not in str(err.value)


def test_rt_dose_is_scaled_by_dose_grid_scaling():
    path = bundled("rtdose.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    expected = ds.pixel_array * float(ds.DoseGridScaling)
    assert image.data.dtype == np.float32
    np.testing.assert_allclose(image.data, expected, rtol=1e-6)
    assert image.metadata["dose_grid_scaling"] == pytest.approx(float(ds.DoseGridScaling))
    offsets = np.diff([float(v) for v in ds.GridFrameOffsetVector])
    assert image.spacing[0] == pytest.approx(offsets[0])


def test_16_bit_rgb_keeps_pydicoms_colours_and_is_not_labels():
    path = bundled("SC_rgb_rle_16bit.dcm")
    data, kwargs, kind = get_reader(str(path))(str(path))[0]
    assert kind == "image" and kwargs["rgb"] is True
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(data[0], apply_modality_lut(ds.pixel_array, ds))
    assert kwargs["contrast_limits"] == [0, 65535]


def test_truncated_dicom_says_truncated_and_valid_files_do_not():
    with pytest.raises(ValueError, match="truncated"):
        read_image(bundled("MR_truncated.dcm"))
    with pytest.raises(ValueError) as err:
        read_image(bundled("rtplan.dcm"))
    assert "truncated" not in str(err.value)


def test_dicom_file_without_extension_is_read_alone(tmp_path):
    path = tmp_path / "IM0001"
    shutil.copy(bundled("CT_small.dcm"), path)
    reader = get_reader(str(path))
    assert reader is not None
    data, _, kind = reader(str(path))[0]
    assert kind == "image" and data.shape == (1, 128, 128)
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(data[0], apply_modality_lut(ds.pixel_array, ds))


def test_compressed_dicom_is_decoded_in_one_pass(monkeypatch):
    """GDCM's information pass parses (and for JPEG decodes) the whole file again."""
    import SimpleITK as sitk

    def second_pass(self):
        raise AssertionError("ReadImageInformation parses the file a second time")

    monkeypatch.setattr(sitk.ImageFileReader, "ReadImageInformation", second_pass)
    path = bundled("SC_rgb_jpeg_dcmtk.dcm")
    image = read_image(path)
    assert image.rgb and image.data.shape == (1, 100, 100, 3)
