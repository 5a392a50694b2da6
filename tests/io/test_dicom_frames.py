"""DICOM files that read wrong in silence (issue 24, items 1, 2, 3, 7, 10, 11, 18): per-frame
rescale, frames stored out of spatial order, big-endian pixels, Siemens mosaics,
truncated PixelData, declared sizes over the pixel limit, big-endian SEG.

Every expected value is pydicom's (or nibabel's, for mosaics) own reading of the file.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicom_factory import (
    axial_positions,
    enhanced,
    image_slice,
    per_frame_reference,
    series,
    shuffle_frames,
    stored_ct,
)
from pydicom.pixels import apply_modality_lut
from test_reader_limits import _SCRIPT  # read files in a process limited to 2 GiB

import napari_res101unet
from napari_res101unet.io import read_image

FILES = Path(pydicom.__file__).parent / "data" / "test_files"
NICOM = Path(nib.__file__).parent / "nicom" / "tests" / "data"
SRC = Path(napari_res101unet.__file__).resolve().parents[1]
SLOPES = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]


def bundled(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        pytest.skip(f"the bundled test file {name} is absent")
    return path


def _enhanced_ct(tmp_path: Path, slopes=None) -> Path:
    stored = stored_ct((6, 16, 12))
    series(tmp_path / "ct", stored, axial_positions(6), slopes=slopes)
    return enhanced(tmp_path / "ct", tmp_path / "enhanced.dcm")


def _sorted_reference(path: Path):
    """pydicom's values and positions, frames sorted along the slice normal."""
    values, positions, iop = per_frame_reference(path)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(positions @ normal)
    return values[order], positions[order], iop, normal


def test_per_frame_rescale_is_applied_frame_by_frame(tmp_path):
    path = _enhanced_ct(tmp_path, slopes=SLOPES)
    values, positions, _ = per_frame_reference(path)
    slopes = {
        float(f.PixelValueTransformationSequence[0].RescaleSlope)
        for f in pydicom.dcmread(path).PerFrameFunctionalGroupsSequence
    }
    assert len(slopes) > 1  # the file really holds per-frame scaling
    image = read_image(path)
    assert image.data.shape == values.shape
    assert np.allclose(image.data, values)  # frames stay in file order (monotonic)
    assert np.allclose(image.origin, positions[0][::-1])


def test_frames_stored_out_of_order_are_placed_by_their_positions(tmp_path):
    path = shuffle_frames(_enhanced_ct(tmp_path, slopes=SLOPES), [3, 0, 5, 1, 4, 2])
    values, positions, iop, normal = _sorted_reference(path)
    image = read_image(path)
    step = float(np.diff(positions @ normal)[0])
    assert np.allclose(image.data, values)
    assert np.allclose(image.spacing, (step, 0.8, 0.7))
    assert np.allclose(image.origin, positions[0][::-1])
    direction = np.stack([iop[:3], iop[3:], normal], axis=1).reshape(-1)
    assert np.allclose(image.direction, direction)
    corner = positions[-1] + 15 * 0.8 * iop[3:] + 11 * 0.7 * iop[:3]  # far corner, pydicom
    ours = np.asarray(image.origin[::-1]) + np.reshape(image.direction, (3, 3)) @ (
        np.asarray([11, 15, 5]) * np.asarray(image.spacing[::-1])
    )
    assert np.allclose(ours, corner, atol=1e-3)


def test_a_gapped_shuffled_multiframe_file_is_still_refused(tmp_path):
    stored = stored_ct((6, 16, 12))
    positions = axial_positions(6)
    positions[4] = (positions[4][0], positions[4][1], positions[4][2] + 2.5)
    del positions[5]
    series(tmp_path / "ct", stored[:5], positions)
    path = enhanced(tmp_path / "ct", tmp_path / "gap.dcm")
    shuffle_frames(path, [2, 0, 4, 1, 3])
    with pytest.raises(ValueError, match=r"gap\.dcm.*multi-frame, 5 frames.*not uniform"):
        read_image(path)


def test_big_endian_rt_dose_matches_pydicom():
    path = bundled(FILES, "rtdose_expb.dcm")
    ds = pydicom.dcmread(path)
    dose = ds.pixel_array * float(ds.DoseGridScaling)
    image = read_image(path)
    assert image.data.shape == dose.shape
    assert np.allclose(image.data, dose, rtol=1e-6)
    little = read_image(bundled(FILES, "rtdose.dcm"))
    assert np.allclose(image.data, little.data) and image.spacing == little.spacing
    assert np.allclose(image.origin, little.origin)


@pytest.mark.parametrize("name", ["MR_small_expb.dcm", "MR_small_bigendian.dcm"])
def test_big_endian_images_match_pydicom(name):
    path = bundled(FILES, name)
    ds = pydicom.dcmread(path)
    image = read_image(path)
    assert np.array_equal(image.data[0], ds.pixel_array)


def test_big_endian_seg_is_refused_with_our_message():
    path = bundled(FILES, "liver_expb_1frame.dcm")
    with pytest.raises(ValueError) as info:
        read_image(path)
    message = str(info.value)
    assert "liver_expb_1frame.dcm" in message and "big-endian" in message
    assert "little endian" in message and "Parsing of datasets" not in message


def _short_pixel_data(path: Path, keep: int) -> Path:
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData[:keep]
    ds.save_as(path)
    return path


def test_a_slice_with_short_pixel_data_is_refused_not_padded(tmp_path):
    path = image_slice(tmp_path / "short.dcm", stored_ct((1, 16, 12))[0], position=(0, 0, 0),
                       series_uid="1.2.3")  # fmt: skip
    _short_pixel_data(path, 200)
    with pytest.raises(ValueError, match=r"short\.dcm.*truncated.*200 of the 384 bytes"):
        read_image(path)


def test_a_series_with_one_short_slice_is_refused_naming_it(tmp_path):
    series(tmp_path / "ct", stored_ct(), axial_positions(6))
    victim = sorted((tmp_path / "ct").glob("*.dcm"))[2]
    _short_pixel_data(victim, 100)
    with pytest.raises(ValueError, match=rf"{victim.name}.*truncated.*100 of the 384 bytes"):
        read_image(tmp_path / "ct")


def test_compressed_and_implicit_files_still_read():
    for name in ("MR_small_RLE.dcm", "MR_small_implicit.dcm", "CT_small.dcm"):
        path = bundled(FILES, name)
        ds = pydicom.dcmread(path)
        assert np.array_equal(read_image(path).data[0], apply_modality_lut(ds.pixel_array, ds))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_dicom_sizes_are_checked_against_the_pixel_limit_before_reading(tmp_path):
    import json

    huge = image_slice(tmp_path / "huge.dcm", stored_ct((1, 16, 12))[0], position=(0, 0, 0),
                       series_uid="1.2.3")  # fmt: skip
    ds = pydicom.dcmread(huge)
    ds.Rows = ds.Columns = 60_000
    ds.save_as(huge)
    folder = tmp_path / "series"
    series(folder, stored_ct(), axial_positions(6))
    for f in folder.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.Rows = ds.Columns = 20_000  # 6 x 20,000^2 = 2.4e9 values: over 2**31
        ds.save_as(f)
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    env.pop("NAPARI_RES101UNET_MAX_PIXELS", None)
    run = subprocess.run([sys.executable, "-c", _SCRIPT, str(huge), str(folder)],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for path in (huge, folder):
        kind, message, seconds = results[str(path)]
        assert kind == "ValueError" and seconds < 2.0, (path.name, kind, message, seconds)
        assert path.name in message and "over the limit of 2,147,483,648" in message, message
    assert "60000 x 60000" in results[str(huge)][1]
    assert "6 slices" in results[str(folder)][1]


def test_the_dicom_limit_follows_max_pixels(tmp_path):
    folder = tmp_path / "series"
    series(folder, stored_ct(), axial_positions(6))
    assert read_image(folder, max_pixels=6 * 16 * 12).data.shape == (6, 16, 12)
    with pytest.raises(ValueError, match="over the limit of 1,151"):
        read_image(folder, max_pixels=6 * 16 * 12 - 1)
    one = sorted(folder.glob("*.dcm"))[0]
    with pytest.raises(ValueError, match="1 x 16 x 12 = 192 values, over the limit of 191"):
        read_image(one, max_pixels=191)


def _mosaic(tmp_path: Path) -> Path:
    path = tmp_path / "siemens_dwi_1000.dcm"
    path.write_bytes(gzip.decompress(bundled(NICOM, "siemens_dwi_1000.dcm.gz").read_bytes()))
    return path


def _nibabel_mosaic(path: Path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

    wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
    assert wrapper.is_mosaic
    return wrapper.get_data(), np.asarray(wrapper.affine, float)


def test_a_siemens_mosaic_opens_as_a_volume_placed_as_nibabel_places_it(tmp_path):
    path = _mosaic(tmp_path)
    data, affine = _nibabel_mosaic(path)  # (rows, cols, slices), LPS affine
    image = read_image(path)
    assert image.data.shape == (data.shape[2], data.shape[0], data.shape[1])
    assert np.array_equal(image.data, data.transpose(2, 0, 1))
    shape = np.asarray(data.shape)
    for corner in ([0, 0, 0], shape - 1, [shape[0] - 1, 0, shape[2] - 1]):
        want = affine @ [*corner, 1.0]
        z, y, x = corner[2], corner[0], corner[1]
        got = np.asarray(image.origin[::-1]) + np.reshape(image.direction, (3, 3)) @ (
            np.asarray([x, y, z]) * np.asarray(image.spacing[::-1])
        )
        assert np.allclose(got, want[:3], atol=1e-3), (corner, got, want)
    assert any("mosaic" in n for n in image.metadata.get("notes", []))


def test_rt_dose_with_absolute_frame_offsets_keeps_its_origin(tmp_path):
    path = tmp_path / "rtdose_absolute.dcm"
    ds = pydicom.dcmread(bundled(FILES, "rtdose.dcm"))
    z0 = float(ds.ImagePositionPatient[2])
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    assert offsets[0] == 0
    ds.GridFrameOffsetVector = [z0 + o for o in offsets]  # the absolute form (axial only)
    ds.save_as(path)
    relative, absolute = read_image(bundled(FILES, "rtdose.dcm")), read_image(path)
    assert np.allclose(absolute.origin, relative.origin)
    assert absolute.spacing == relative.spacing
    assert np.array_equal(absolute.data, relative.data)
