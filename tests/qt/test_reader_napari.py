"""The reader, writer and samples through napari itself (Qt, run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from io_helpers import CT_ORIGIN, CT_SPACING, ct_volume, sitk_image, truncate, write_dicom_series

PLUGIN = "napari-res101unet"
pytestmark = pytest.mark.qt


@pytest.fixture
def ct_and_mask(tmp_path):
    vol = ct_volume()
    mask = np.zeros(vol.shape, np.uint8)
    mask[:, 5:15, 4:12] = 1
    img_path, mask_path = tmp_path / "liver_0.nii.gz", tmp_path / "liver_0_seg.nii.gz"
    sitk.WriteImage(sitk_image(vol, CT_SPACING, CT_ORIGIN), str(img_path))
    sitk.WriteImage(sitk_image(mask, CT_SPACING, CT_ORIGIN), str(mask_path))
    return img_path, mask_path


def test_open_ct_and_its_mask_together(make_napari_viewer, ct_and_mask):
    viewer = make_napari_viewer()
    layers = viewer.open([str(p) for p in ct_and_mask], plugin=PLUGIN)
    image, labels = layers
    assert image._type_string == "image" and labels._type_string == "labels"
    assert image.name == "liver_0" and labels.name == "liver_0_seg"
    np.testing.assert_allclose(image.scale, CT_SPACING[::-1])
    np.testing.assert_allclose(labels.scale, CT_SPACING[::-1])
    np.testing.assert_allclose(image.translate, CT_ORIGIN[::-1])
    assert tuple(image.contrast_limits) == (-160, 240)
    assert image.data.dtype == np.int16
    assert image.metadata["direction"] == pytest.approx(np.eye(3).ravel())


def test_open_dicom_folder(make_napari_viewer, tmp_path):
    folder = write_dicom_series(tmp_path / "CT_series", ct_volume((3, 24, 20)))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(folder), plugin=PLUGIN)
    assert layer._type_string == "image" and layer.data.shape == (3, 24, 20)
    np.testing.assert_allclose(layer.scale, CT_SPACING[::-1])


def test_png_mask_opens_as_labels(make_napari_viewer, tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    Image.fromarray(mask).save(tmp_path / "cells_mask.png")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(tmp_path / "cells_mask.png"), plugin=PLUGIN)
    assert layer._type_string == "labels"
    assert set(np.unique(layer.data)) == {0, 1}


def test_truncated_file_reports_its_name(make_napari_viewer, tmp_path):
    path = tmp_path / "broken_scan.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(ct_volume((6, 64, 64))), str(path))
    truncate(path)
    viewer = make_napari_viewer()
    with pytest.raises(ValueError) as info:  # napari's ReaderPluginError wraps ours
        viewer.open(str(path), plugin=PLUGIN)
    assert "broken_scan.nii.gz" in f"{info.value} {info.value.__cause__}"
    assert len(viewer.layers) == 0


def test_save_labels_layer_keeps_geometry(make_napari_viewer, ct_and_mask, tmp_path):
    viewer = make_napari_viewer()
    _, labels = viewer.open([str(p) for p in ct_and_mask], plugin=PLUGIN)
    target = tmp_path / "edited_labels.nii.gz"
    labels.save(str(target), plugin=PLUGIN)
    out = sitk.ReadImage(str(target))
    assert out.GetSpacing() == pytest.approx(CT_SPACING)
    assert out.GetOrigin() == pytest.approx(CT_ORIGIN)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), labels.data)


@pytest.mark.parametrize(("key", "shape"), [("liver_ct", (42, 256, 256)), ("nuclei", (512, 512))])
def test_sample_menu_loads_image_and_labels(make_napari_viewer, key, shape):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, key)
    kinds = [layer._type_string for layer in viewer.layers]
    assert kinds == ["image", "labels"]
    assert all(layer.data.shape == shape for layer in viewer.layers)
    assert viewer.layers[1].data.max() >= 1
