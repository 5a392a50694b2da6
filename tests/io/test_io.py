"""Reader round trips: files written by SimpleITK/tifffile/Pillow, read by the plugin."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from io_helpers import (
    CT_ORIGIN,
    CT_SPACING,
    ct_volume,
    sitk_image,
    truncate,
    write_dicom_series,
)
from napari_res101unet._reader import get_reader
from napari_res101unet.io import read_image

FLIP_XY = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # how RAS-stored NIfTI looks in ITK


def read_one(path):
    reader = get_reader(str(path))
    assert reader is not None, path
    (layer,) = reader(str(path))
    return layer


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_itk_volume_round_trip_keeps_hu_spacing_origin_direction(tmp_path, ext):
    vol = ct_volume()
    path = tmp_path / f"abdomen{ext}"
    sitk.WriteImage(sitk_image(vol, CT_SPACING, CT_ORIGIN, FLIP_XY), str(path))

    data, kwargs, kind = read_one(path)

    assert kind == "image"
    assert data.dtype == np.int16
    np.testing.assert_array_equal(data, vol)
    assert kwargs["scale"] == pytest.approx(CT_SPACING[::-1])
    assert kwargs["translate"] == pytest.approx(CT_ORIGIN[::-1])
    assert kwargs["metadata"]["direction"] == pytest.approx(FLIP_XY)
    assert kwargs["contrast_limits"] == [-160, 240]  # looks like HU: soft-tissue window
    assert kwargs["name"] == "abdomen"


def test_mri_like_volume_gets_no_ct_window(tmp_path):
    vol = np.random.default_rng(1).integers(0, 900, (3, 16, 16)).astype(np.uint16)
    sitk.WriteImage(sitk.GetImageFromArray(vol), str(tmp_path / "t1.nii.gz"))
    data, kwargs, kind = read_one(tmp_path / "t1.nii.gz")
    assert kind == "image" and data.dtype == np.uint16
    assert "contrast_limits" not in kwargs


def test_dicom_series_folder(tmp_path):
    vol = ct_volume((5, 24, 20))
    folder = write_dicom_series(tmp_path / "series", vol)

    data, kwargs, kind = read_one(folder)

    assert kind == "image"
    assert data.dtype == np.int16
    np.testing.assert_array_equal(data, vol)
    assert kwargs["scale"] == pytest.approx(CT_SPACING[::-1])
    assert kwargs["translate"] == pytest.approx(CT_ORIGIN[::-1], abs=1e-3)
    assert kwargs["contrast_limits"] == [-160, 240]
    assert kwargs["metadata"]["modality"] == "CT"
    assert kwargs["metadata"]["series_count"] == 1
    assert kwargs["name"] == "series"


def test_dicom_folder_with_two_series_reads_the_largest(tmp_path):
    folder = tmp_path / "study"
    write_dicom_series(folder, ct_volume((2, 24, 20), seed=1), series_uid="1.2.3.4.5.111")
    write_dicom_series(folder, ct_volume((4, 24, 20), seed=2), series_uid="1.2.3.4.5.222")
    image = read_image(folder)
    assert image.data.shape == (4, 24, 20)
    assert image.metadata["series_count"] == 2
    assert image.metadata["series_id"] == "1.2.3.4.5.222"


def test_single_dicom_file_keeps_its_slice_geometry(tmp_path):
    vol = ct_volume((3, 24, 20))
    folder = write_dicom_series(tmp_path / "series", vol)
    data, kwargs, kind = read_one(sorted(folder.glob("*.dcm"))[1])
    assert kind == "image" and data.dtype == np.int16
    assert data.shape == (1, 24, 20)
    np.testing.assert_array_equal(data[0], vol[1])
    assert kwargs["scale"][1:] == pytest.approx(CT_SPACING[1::-1])
    assert kwargs["translate"][0] == pytest.approx(CT_ORIGIN[2] + CT_SPACING[2])


def test_plain_tiff_has_unit_spacing(tmp_path):
    img = np.random.default_rng(0).integers(0, 4000, (32, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", img, resolution=(300, 300))  # print dpi: ignored
    data, kwargs, kind = read_one(tmp_path / "cells.tif")
    assert kind == "image" and data.dtype == np.uint16
    np.testing.assert_array_equal(data, img)
    assert kwargs["scale"] == (1.0, 1.0)


def test_imagej_tiff_spacing(tmp_path):
    img = np.random.default_rng(0).integers(0, 4000, (3, 32, 40)).astype(np.uint16)
    meta = {"axes": "ZYX", "spacing": 2.0, "unit": "micron"}
    tifffile.imwrite(tmp_path / "stack.tif", img, imagej=True, resolution=(4, 2), metadata=meta)
    data, kwargs, _ = read_one(tmp_path / "stack.tif")
    np.testing.assert_array_equal(data, img)
    assert kwargs["scale"] == pytest.approx((2.0, 0.5, 0.25))
    assert kwargs["metadata"]["unit"] == "µm"


def test_ome_tiff_physical_sizes(tmp_path):
    img = np.random.default_rng(0).random((2, 16, 24), dtype=np.float32)
    meta = {"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.5}
    tifffile.imwrite(tmp_path / "scan.ome.tif", img, ome=True, metadata=meta)
    data, kwargs, kind = read_one(tmp_path / "scan.ome.tif")
    assert kind == "image" and data.dtype == np.float32
    np.testing.assert_array_equal(data, img)
    assert kwargs["scale"] == pytest.approx((1.5, 0.2, 0.1))
    assert kwargs["name"] == "scan"


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_gray_png_bmp_round_trip(tmp_path, ext):
    img = np.random.default_rng(0).integers(0, 256, (30, 40)).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(img), str(tmp_path / f"photo{ext}"))
    data, kwargs, kind = read_one(tmp_path / f"photo{ext}")
    assert kind == "image" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, img)
    assert kwargs["scale"] == (1.0, 1.0) and kwargs["translate"] == (0.0, 0.0)


def test_16bit_png_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 60000, (30, 40)).astype(np.uint16)
    Image.fromarray(img).save(tmp_path / "scan.png")
    data, _, kind = read_one(tmp_path / "scan.png")
    assert kind == "image" and data.dtype == np.uint16
    np.testing.assert_array_equal(data, img)


def test_colour_png_stays_rgb_and_rgb_encoded_gray_becomes_one_channel(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    gray = rng.integers(0, 256, (20, 30)).astype(np.uint8)
    Image.fromarray(colour).save(tmp_path / "he.png")
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "ct_slice.png")

    data, kwargs, _ = read_one(tmp_path / "he.png")
    assert kwargs["rgb"] is True and data.shape == (20, 30, 3)
    data, kwargs, _ = read_one(tmp_path / "ct_slice.png")
    assert "rgb" not in kwargs
    np.testing.assert_array_equal(data, gray)
    assert kwargs["metadata"]["rgb_encoded_gray"] is True


def test_rgb_encoded_gray_jpeg_opens_as_grayscale(tmp_path):
    gray = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "slice.jpg", quality=95)
    data, _, kind = read_one(tmp_path / "slice.jpg")
    assert kind == "image" and data.shape == (48, 64) and data.dtype == np.uint8
    assert np.abs(data.astype(int) - gray).max() <= 4  # lossy


@pytest.mark.parametrize(
    "name", ["notes.txt", "table.csv", "archive.zip", "noext", "image.nii.bak"]
)
def test_foreign_files_get_none(tmp_path, name):
    (tmp_path / name).write_text("a,b\n1,2\n")
    assert get_reader(str(tmp_path / name)) is None


def test_folders_without_dicom_and_missing_paths_get_none(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    assert get_reader(str(tmp_path)) is None
    assert get_reader(str(tmp_path / "sub")) is None
    assert get_reader(str(tmp_path / "missing.nii.gz")) is None
    assert get_reader([str(tmp_path / "a.txt")]) is None
    assert get_reader([]) is None


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".png", ".jpg", ".tif", ".mha", ".bmp"])
def test_truncated_file_error_names_the_file(tmp_path, ext):
    path = tmp_path / f"broken{ext}"
    img = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    if ext == ".tif":
        tifffile.imwrite(path, np.stack([img] * 6), compression="zlib")
    elif ext in (".nii", ".nii.gz", ".mha"):
        sitk.WriteImage(sitk.GetImageFromArray(np.stack([img] * 6)), str(path))
    else:
        sitk.WriteImage(sitk.GetImageFromArray(img), str(path))
    truncate(path)
    reader = get_reader(str(path))  # answering None or a reader never raises
    assert reader is not None
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
        reader(str(path))


def test_garbage_with_a_known_suffix_is_a_clear_error(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"this is not a NIfTI file" * 10)
    with pytest.raises(ValueError, match=r"scan\.nii\.gz.*NIfTI"):
        read_image(path)


def test_missing_file_and_unsupported_suffix(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.nii")
    (tmp_path / "x.csv").write_text("1")
    with pytest.raises(ValueError, match=r"x\.csv: unsupported format '\.csv'"):
        read_image(tmp_path / "x.csv")
