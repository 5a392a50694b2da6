"""Which files the napari reader claims, and how fast it declines the rest.

napari asks ``get_reader`` about every file or folder a user drops; for anything that is
not ours it must answer ``None`` at once, without decoding, and never raise.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManifest

import napari_res101unet
from napari_res101unet._reader import get_reader, read_layers, read_lazy_layers

MANIFEST = Path(napari_res101unet.__file__).with_name("napari.yaml")
MEDICAL = {"*.nii", "*.nii.gz", "*.dcm", "*.nrrd", "*.nhdr", "*.mha", "*.mhd"}
# Claimed for a reason napari's builtin reader does not meet: TIFF keeps its ImageJ/OME
# physical spacing as the layer scale, and masks (by name or content) open as Labels,
# which the Train widget needs; see "Which files the reader claims" in docs/getting-started.md.
TIFF_AND_PLAIN = {"*.tif", "*.tiff", "*.png", "*.jpg", "*.jpeg", "*.bmp"}
DECLINE_WITHIN_S = 0.25  # generous for a busy 2-core machine; a decline takes about 1 ms


def _reader_patterns() -> set[str]:
    (reader,) = PluginManifest.from_file(MANIFEST).contributions.readers
    return set(reader.filename_patterns)


def _zarr_store(root: Path) -> Path:
    store = root / "cells.ome.zarr"
    (store / "0").mkdir(parents=True)
    (store / ".zgroup").write_text('{"zarr_format": 2}')
    (store / "0" / ".zarray").write_text("{}")
    rng = np.random.default_rng(0)
    for i in range(300):
        (store / "0" / f"0.{i}").write_bytes(rng.bytes(2048))
        (store / f"{i}.0").write_bytes(rng.bytes(256))
    return store


def _png_folder(root: Path) -> Path:
    folder = root / "tiles"
    folder.mkdir()
    for i in range(300):
        (folder / f"tile_{i:03d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    return folder


@pytest.fixture
def not_ours(tmp_path) -> dict[str, object]:
    (tmp_path / "table.csv").write_text("label,area\n1,20\n")
    np.save(tmp_path / "array.npy", np.zeros((4, 4)))
    nifti = tmp_path / "scan.nii.gz"
    nifti.write_bytes(b"not decoded at this step")
    return {
        "csv": tmp_path / "table.csv",
        "npy": tmp_path / "array.npy",
        "folder of PNGs (not DICOM)": _png_folder(tmp_path),
        "empty folder": _mkdir(tmp_path / "empty"),
        "missing file": tmp_path / "gone.nii.gz",
        "URL": "https://example.org/scan.nii.gz",
        "list with one foreign file": [nifti, tmp_path / "table.csv"],
        "empty list": [],
        "not a path": 42,
    }


def test_declines_what_it_does_not_own_at_once(not_ours):
    for what, path in not_ours.items():
        start = time.perf_counter()
        answer = get_reader(path)
        took = time.perf_counter() - start
        assert answer is None, what
        assert took < DECLINE_WITHIN_S, f"{what}: {took:.3f} s"


def test_claims_by_name_without_decoding(tmp_path):
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"garbage: read only when napari reads it" * 1000)
    start = time.perf_counter()
    assert get_reader(str(scan)) is read_layers
    assert time.perf_counter() - start < DECLINE_WITHIN_S
    with pytest.raises(ValueError, match=r"scan\.nii\.gz"):
        read_layers(str(scan))


def test_manifest_claims_the_documented_formats_only():
    patterns = _reader_patterns()
    assert patterns == MEDICAL | TIFF_AND_PLAIN | {"*.zarr"}  # zarr: opened lazily
    assert not {"*", "*.*", "*.csv", "*.npy", "*.h5"} & patterns


def test_zarr_stores_are_claimed_for_lazy_reading_at_once(tmp_path):
    store = _zarr_store(tmp_path)
    start = time.perf_counter()
    assert get_reader(store) is read_lazy_layers
    assert time.perf_counter() - start < DECLINE_WITHIN_S


def test_every_claimed_pattern_is_one_get_reader_accepts(tmp_path):
    for pattern in sorted(_reader_patterns() - {"*.zarr"}):  # zarr: the test above
        path = tmp_path / f"image{pattern[1:].upper()}"  # napari matches case-insensitively
        path.write_bytes(b"\0" * 16)
        assert get_reader(str(path)) is read_layers, pattern


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
