"""A forged big-TIFF header (issue 24, item 12): is_large_source never raises and does not
send it down the blockwise path; open_source refuses it at once, naming the file; real
big TIFFs still open lazily."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tifffile
from test_reader_limits import huge_tiff

from napari_res101unet.io import large, read_image
from napari_res101unet.io.large import is_large_source, open_source


def test_a_forged_big_tiff_is_not_large_and_is_refused_quickly(tmp_path):
    path = huge_tiff(tmp_path / "forged.tif")  # 100,000^2 pixels in 130 bytes
    assert is_large_source(path) is False  # the plain reader answers for it
    started = time.perf_counter()
    with pytest.raises(ValueError) as info:
        open_source(path)
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert "forged.tif" in message and "100000 x 100000" in message
    assert f"beyond the end of the {path.stat().st_size}-byte file" in message
    with pytest.raises(ValueError, match="forged.tif.*over the limit"):
        read_image(path)


def test_a_truncated_uncompressed_tiff_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])
    monkeypatch.setattr(large, "TIFF_LARGE_BYTES", 1000)
    assert is_large_source(path) is False
    with pytest.raises(ValueError, match="cut.tif.*forged or truncated TIFF"):
        open_source(path)


@pytest.mark.parametrize("odd", [None, 3, "\0x.tif", "/proc/self/mem.tif", b"x.zarr"])
def test_is_large_source_never_raises(odd):
    assert is_large_source(odd) in (True, False)


def test_a_genuine_big_tiff_is_still_large(tmp_path, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (256, 192), dtype=np.uint8)
    for name, kwargs in (("tiled.tif", {"tile": (64, 64), "compression": "zlib"}),
                         ("strips.tif", {}), ("stack.tif", {})):  # fmt: skip
        data = np.stack([image, image[::-1]]) if name == "stack.tif" else image
        tifffile.imwrite(tmp_path / name, data, **kwargs)
        monkeypatch.setattr(large, "TIFF_LARGE_BYTES", 1000)
        assert is_large_source(tmp_path / name), name
        source = open_source(tmp_path / name)
        assert source.shape == data.shape
        np.testing.assert_array_equal(np.asarray(source.array()), data)
