"""The reader opens OME-Zarr stores and big TIFFs lazily (dask, multiscale by levels)."""

from __future__ import annotations

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")
tifffile = pytest.importorskip("tifffile")

from napari_res101unet import _reader  # noqa: E402
from napari_res101unet.io import large as sources  # noqa: E402


def _ome_zarr(path, image):
    group = zarr.open_group(str(path), mode="w")
    datasets = []
    for level, step in enumerate((1, 2)):
        data = np.moveaxis(image[::step, ::step], -1, 0)
        arr = group.create_array(str(level), shape=data.shape, chunks=(3, 32, 32), dtype="u1")
        arr[:] = data
        scale = [1.0, 0.5 * step, 0.5 * step]
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": scale}]})  # fmt: skip
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]  # fmt: skip
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets}]}
    return path


def test_ome_zarr_opens_as_a_lazy_multiscale_rgb_layer(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    store = _ome_zarr(tmp_path / "slide.ome.zarr", image)
    reader = _reader.get_reader(str(store))
    assert reader is _reader.read_lazy_layers
    ((levels, kwargs, kind),) = reader(str(store))
    assert kind == "image" and kwargs["multiscale"] and kwargs["rgb"]
    assert all(isinstance(level, da.Array) for level in levels)
    assert [lv.shape for lv in levels] == [(64, 96, 3), (32, 48, 3)]
    assert kwargs["scale"] == [0.5, 0.5]
    np.testing.assert_array_equal(levels[1].compute(), image[::2, ::2])


def test_big_tiff_opens_lazily_and_small_ones_as_before(tmp_path, monkeypatch):
    image = np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8)
    path = tmp_path / "scan.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(64, 64), subifds=1)
        tif.write(image[::2, ::2], tile=(64, 64), subfiletype=1)
    assert _reader.get_reader(str(path)) is _reader.read_layers  # small: read whole
    monkeypatch.setattr(sources, "TIFF_LARGE_BYTES", 1000)
    assert _reader.get_reader(str(path)) is _reader.read_lazy_layers
    ((levels, kwargs, _),) = _reader.read_lazy_layers(str(path))
    assert kwargs["multiscale"] and [lv.shape for lv in levels] == [(128, 128), (64, 64)]
    np.testing.assert_array_equal(np.asarray(levels[0]), image)


def test_store_with_foreign_axes_is_a_clear_error(tmp_path):
    group = zarr.open_group(str(tmp_path / "odd.zarr"), mode="w")
    group.create_array("0", shape=(4, 8, 8), dtype="u1")
    group.attrs["multiscales"] = [{"version": "0.4", "axes": ["q", "y", "x"],
                                   "datasets": [{"path": "0"}]}]  # fmt: skip
    with pytest.raises(ValueError, match="axes 'qyx'"):
        _reader.read_lazy_layers(str(tmp_path / "odd.zarr"))
