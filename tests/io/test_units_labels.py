"""Units carried into the formats that fix them, and what opens as a label map."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from napari_res101unet import _writer
from napari_res101unet._reader import get_reader
from napari_res101unet.io import read_image, write_labels


def layer(path):
    return get_reader(str(path))(str(path))[0]


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_micron_tiff_mask_is_written_in_millimetres(tmp_path, ext):
    cells = np.random.default_rng(0).integers(0, 4000, (3, 20, 24)).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "cells.tif", cells, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"},
    )  # fmt: skip
    data, kwargs, _ = layer(tmp_path / "cells.tif")
    assert kwargs["metadata"]["unit"] == "µm"
    assert kwargs["metadata"]["units"] == ("µm", "µm", "µm")
    meta = {k: kwargs[k] for k in ("scale", "translate", "metadata")}
    out = tmp_path / f"cells_mask{ext}"
    _writer.write_labels(str(out), (data > 2000).astype(np.uint8), meta)
    back = sitk.ReadImage(str(out))
    assert back.GetSpacing() == pytest.approx((0.00025, 0.00025, 0.002))


def test_ome_tiff_with_mixed_units_is_converted_to_one(tmp_path):
    img = np.zeros((4, 10, 12), np.uint16)
    tifffile.imwrite(
        tmp_path / "stack.ome.tif", img, ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeZ": 500.0, "PhysicalSizeZUnit": "nm",
                  "PhysicalSizeX": 0.1, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": 0.1, "PhysicalSizeYUnit": "µm"},
    )  # fmt: skip
    image = read_image(tmp_path / "stack.ome.tif")
    assert image.spacing == pytest.approx((0.5, 0.1, 0.1))
    assert image.metadata["unit"] == "µm"
    assert "converted" in image.metadata["notes"][0]


def test_unknown_unit_is_refused_by_millimetre_formats(tmp_path):
    with pytest.raises(ValueError, match="stores millimetres.*'furlong'"):
        write_labels(tmp_path / "m.nrrd", np.zeros((2, 4, 4), np.uint8), unit="furlong")


def test_twelve_grey_levels_stay_an_image(tmp_path):
    ramp = (np.arange(120)[None, :] // 10 * 23).astype(np.uint8)  # 12 levels 0..253
    tifffile.imwrite(tmp_path / "posterised.tif", np.repeat(ramp, 40, axis=0))
    assert layer(tmp_path / "posterised.tif")[2] == "image"


def test_all_zero_volume_stays_an_image(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 4), np.int16), np.eye(4)), tmp_path / "anon.nii")
    assert layer(tmp_path / "anon.nii")[2] == "image"


def test_ct_named_gt_stays_an_image(tmp_path):
    ct = np.random.default_rng(0).integers(-1000, 1258, (16, 16, 4)).astype(np.int16)
    nib.save(nib.Nifti1Image(ct, np.eye(4)), tmp_path / "case3_gt.nii.gz")
    data, _, kind = layer(tmp_path / "case3_gt.nii.gz")
    assert kind == "image" and data.min() < 0


def test_float_mask_named_as_one_opens_as_labels(tmp_path):
    mask = np.zeros((16, 16, 4), np.float32)
    mask[4:9, 5:11] = 1.0
    nib.save(nib.Nifti1Image(mask, np.eye(4)), tmp_path / "liver_mask.nii.gz")
    data, _, kind = layer(tmp_path / "liver_mask.nii.gz")
    assert kind == "labels" and data.dtype == np.uint8
    assert data.sum() == mask.sum()


def test_map_with_forty_regions_opens_as_labels_by_content(tmp_path):
    regions = np.zeros((160, 160), np.uint16)  # 40 nuclei on background
    for k in range(40):
        y, x = divmod(k, 8)
        regions[y * 30 + 5 : y * 30 + 17, x * 20 + 4 : x * 20 + 14] = k + 1
    tifffile.imwrite(tmp_path / "tile07.tif", regions)
    data, _, kind = layer(tmp_path / "tile07.tif")
    assert kind == "labels"
    np.testing.assert_array_equal(data, regions)
