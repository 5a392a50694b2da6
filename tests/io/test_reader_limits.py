"""Readers check the declared size before allocating (issue 14, item 5): forged headers
are refused within a second in a process limited to 2 GiB of address space; gzip is
inflated with a bound; Pillow's bomb error is a ValueError naming the file."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import napari_res101unet
from napari_res101unet.io import read_image

SRC = Path(napari_res101unet.__file__).resolve().parents[1]  # the package under test


def forged_nifti_gz(path: Path, shape: tuple[int, ...], dtype=np.int16) -> Path:
    """A few dozen bytes: a NIfTI header declaring ``shape`` and a gzip size trailer that
    matches it (so a trailer-only size check passes)."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\0" * 4 + b"\0" * 16
    data = bytearray(gzip.compress(raw))
    expected = 352 + int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    data[-4:] = (expected % (1 << 32)).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(path: Path, side: int = 100_000, color_type: int = 0) -> Path:
    """A valid PNG header declaring ``side x side`` pixels and almost no data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, color_type, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr)
    if color_type == 3:
        body += _chunk(b"PLTE", bytes([0, 0, 0, 255, 255, 255]))
    body += _chunk(b"IDAT", zlib.compress(b"\0" * (side + 1)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b""))
    return path


def huge_tiff(path: Path, side: int = 100_000) -> Path:
    """A little-endian TIFF whose one strip claims ``side x side`` 8-bit pixels."""
    entries = [
        (256, 4, 1, side),  # ImageWidth
        (257, 4, 1, side),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, side),  # RowsPerStrip
        (279, 4, 1, side * side % (1 << 32)),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<H", value) + b"\0\0" if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", 16) + b"\0" * 8 + ifd)
    return path


_SCRIPT = """
import json, resource, sys, time
from napari_res101unet.io import read_image
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
out = {}
for path in sys.argv[1:]:
    started = time.perf_counter()
    try:
        read_image(path)
        out[path] = ["read", "", 0.0]
    except Exception as exc:
        out[path] = [type(exc).__name__, str(exc), time.perf_counter() - started]
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_forged_sizes_are_refused_within_a_second_in_2_gib(tmp_path):
    files = [
        forged_nifti_gz(tmp_path / "forged.nii.gz", (32767, 32767, 32767)),
        forged_nifti_gz(tmp_path / "under_limit.nii.gz", (1024, 1024, 1024), np.uint8),
        huge_png(tmp_path / "huge.png"),
        huge_png(tmp_path / "huge_palette.png", color_type=3),
        huge_tiff(tmp_path / "huge.tif"),
    ]
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    env.pop("NAPARI_RES101UNET_MAX_PIXELS", None)
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *map(str, files)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for path in files:
        kind, message, seconds = results[str(path)]
        assert kind == "ValueError", (path.name, kind, message)
        assert path.name in message and seconds < 1.0, (path.name, message, seconds)
    for name in ("forged.nii.gz", "huge.png", "huge_palette.png", "huge.tif"):
        message = results[str(tmp_path / name)][1]
        assert "over the limit of 2,147,483,648" in message, message
        assert "NAPARI_RES101UNET_MAX_PIXELS" in message and "max_pixels=" in message
    assert "truncated" in results[str(tmp_path / "under_limit.nii.gz")][1]  # not allocated


def test_the_limit_is_configurable_by_argument_and_environment(tmp_path, monkeypatch):
    import nibabel as nib

    path = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.int16), np.eye(4)), path)
    assert read_image(path).data.shape == (10, 10, 10)
    with pytest.raises(ValueError, match="10 x 10 x 10 = 1,000 values, over the limit of 999"):
        read_image(path, max_pixels=999)
    monkeypatch.setenv("NAPARI_RES101UNET_MAX_PIXELS", "500")
    with pytest.raises(ValueError, match="over the limit of 500"):
        read_image(path)
    assert read_image(path, max_pixels=1000).data.shape == (10, 10, 10)
    monkeypatch.setenv("NAPARI_RES101UNET_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="NAPARI_RES101UNET_MAX_PIXELS='lots' is not a positive"):
        read_image(path)
    with pytest.raises(ValueError, match="max_pixels must be a positive int"):
        read_image(path, max_pixels=0)


def test_gzip_is_inflated_with_a_bound(tmp_path):
    from napari_res101unet.io._limits import gzip_size

    bomb = tmp_path / "bomb.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        for _ in range(64):
            fh.write(b"\0" * (1 << 22))  # 256 MiB of zeros in ~250 KiB
    assert bomb.stat().st_size < 1 << 20
    assert gzip_size(bomb, 1000) < 1 << 23  # stops soon after 1000 bytes, not at 256 MiB
    data = bytearray(bomb.read_bytes())
    data[-4:] = (1 << 31).to_bytes(4, "little")  # a trailer too large for the file
    bomb.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="gzip stream is damaged or truncated"):
        gzip_size(bomb, 1 << 31)  # inflated (bounded by the file), the trailer found forged


def test_pillow_bomb_error_is_a_value_error_naming_the_file(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "palette_labels.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) % 3, mode="P").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow's own guard, made small
    with pytest.raises(ValueError, match="palette_labels.png.*decompression bomb"):
        read_image(path)
