"""Blockwise segmentation of stores on disk equals the in-memory segment()."""

from __future__ import annotations

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

from predictors import blur, three_class  # noqa: E402

from napari_res101unet.inference.blockwise import BlocksFailed, segment_blocks  # noqa: E402
from napari_res101unet.inference.segment import segment  # noqa: E402
from napari_res101unet.io.label_store import open_labels  # noqa: E402

OPTS = {"tile_size": 96, "overlap": 0.25, "device": "cpu", "normalization": "percentile"}


def _image(rng, shape=(300, 420, 3)) -> np.ndarray:
    smooth = rng.random(shape).cumsum(axis=0).cumsum(axis=1)
    return (255 * smooth / smooth.max()).astype(np.uint8)


def _store(path, image, chunks=(64, 64, 3)):
    arr = zarr.create_array(str(path), shape=image.shape, chunks=chunks, dtype=image.dtype)
    arr[:] = image
    return arr


def test_zarr_blocks_equal_in_memory_labels(tmp_path, rng):
    image = _image(rng)
    _store(tmp_path / "img.zarr", image)
    expected = segment(image, blur, batch_size=3, **OPTS)
    done = []
    result = segment_blocks(
        tmp_path / "img.zarr", blur, tmp_path / "labels.zarr", block_size=100,
        batch_size=2, progress=lambda d, t: done.append((d, t)), **OPTS,
    )  # fmt: skip
    labels = open_labels(result.path)
    assert labels.chunks == (100, 100)
    np.testing.assert_array_equal(labels[:], expected)
    assert 0 < expected.mean() < 1
    assert done[-1] == (result.blocks, result.blocks) == (15, 15)
    assert result.plan.total_tiles == 4 * 6 and result.tile_overhead > 1  # edge tiles rerun
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dask_stack_and_tile_wider_than_the_image(tmp_path, rng):
    """A (Z, Y, X) dask array, multi-class, tiles taller than the image (reflect padding)."""
    stack = _image(rng, (2, 80, 260)).astype(np.float32)
    opts = {**OPTS, "tile_size": 128}
    expected = segment(stack, three_class, batch_size=4, **opts)
    lazy = da.from_array(stack, chunks=(1, 40, 70))
    result = segment_blocks(lazy, three_class, tmp_path / "l.zarr", block_size=64, **opts)
    labels = open_labels(result.path)
    assert labels.shape == stack.shape and labels.chunks == (1, 64, 64)
    np.testing.assert_array_equal(labels[:], expected)
    assert len(np.unique(expected)) > 1


def test_ome_zarr_labels_group_keeps_axes_and_scale(tmp_path, rng):
    image = _image(rng, (120, 150, 3))
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    arr = group.create_array("0", shape=(3, 120, 150), chunks=(3, 64, 64), dtype="uint8")
    arr[:] = np.moveaxis(image, -1, 0)
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]  # fmt: skip
    scale = [{"type": "scale", "scale": [1.0, 0.5, 0.25]}]
    level = {"path": "0", "coordinateTransformations": scale}
    group.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [level]}]}
    expected = segment(image, blur, batch_size=2, **OPTS)
    out = tmp_path / "img.ome.zarr"
    segment_blocks(out, blur, out, label_name="cells", block_size=64, **OPTS)
    labels = zarr.open_group(str(out / "labels" / "cells"))
    np.testing.assert_array_equal(labels["0"][:], expected)
    ms = labels.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["y", "x"]
    assert ms["axes"][0]["unit"] == "micrometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.5, 0.25]
    assert zarr.open_group(str(out / "labels")).attrs["ome"]["labels"] == ["cells"]


def test_big_tiff_is_read_through_its_zarr_view(tmp_path, rng):
    tifffile = pytest.importorskip("tifffile")
    image = _image(rng, (200, 230, 3))
    tifffile.imwrite(tmp_path / "big.tif", image, tile=(64, 64))
    expected = segment(image, blur, batch_size=2, **OPTS)
    result = segment_blocks(tmp_path / "big.tif", blur, tmp_path / "o.zarr", block_size=96, **OPTS)
    np.testing.assert_array_equal(open_labels(result.path)[:], expected)


def test_existing_output_is_refused_unless_overwrite(tmp_path, rng):
    _store(tmp_path / "img.zarr", _image(rng, (64, 64, 3)))
    out = tmp_path / "labels.zarr"
    out.mkdir()
    with pytest.raises(FileExistsError, match="overwrite"):
        segment_blocks(tmp_path / "img.zarr", blur, out, **OPTS)
    segment_blocks(tmp_path / "img.zarr", blur, out, overwrite=True, **OPTS)
    assert open_labels(out).shape == (64, 64)


def _picky(x):
    """blur, except that tiles with a pixel below -50 fail."""
    if (x < -50).any():
        raise ValueError("cannot predict this tile")
    return blur(x)


def test_failing_blocks_fail_the_run_and_are_listed(tmp_path, rng):
    image = _image(rng, (256, 256, 3)).astype(np.float32)
    image[240:, 240:] = -100
    _store(tmp_path / "img.zarr", image)
    opts = {**OPTS, "normalization": "none"}
    with pytest.raises(BlocksFailed, match="cannot predict") as info:
        segment_blocks(tmp_path / "img.zarr", _picky, tmp_path / "o.zarr", block_size=64, **opts)
    assert (0, 192, 192) in info.value.missing and (0, 0, 0) not in info.value.missing
    assert list(tmp_path.glob("*o.zarr*")) == []


def test_unreadable_chunk_is_a_clear_error(tmp_path, rng):
    _store(tmp_path / "img.zarr", _image(rng, (128, 128, 3)))
    chunk = next(p for p in (tmp_path / "img.zarr").rglob("*") if p.is_file() and
                 p.name != "zarr.json")  # fmt: skip
    chunk.write_bytes(b"not a chunk")
    with pytest.raises(ValueError, match=r"img.zarr .* could not be read"):
        segment_blocks(tmp_path / "img.zarr", blur, tmp_path / "o.zarr", block_size=64, **OPTS)
    assert list(tmp_path.glob("*o.zarr*")) == []


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: p / "missing.zarr", FileNotFoundError, "does not exist"),
        (lambda p: (p / "junk.zarr").mkdir() or p / "junk.zarr", ValueError, "zarr"),
        (
            lambda p: (
                zarr.create_array(str(p / "5d.zarr"), shape=(2, 2, 2, 8, 8), dtype="u1")
                and p / "5d.zarr"
            ),
            ValueError,
            "axes",
        ),
    ],
)
def test_bad_sources_get_clear_errors(tmp_path, make, error, match):
    with pytest.raises(error, match=match):
        segment_blocks(make(tmp_path), blur, tmp_path / "o.zarr", **OPTS)


def test_labels_store_is_read_by_ome_zarr(tmp_path, rng):
    reader = pytest.importorskip("ome_zarr.reader")
    io = pytest.importorskip("ome_zarr.io")
    _store(tmp_path / "img.zarr", _image(rng, (64, 96, 3)))
    segment_blocks(tmp_path / "img.zarr", blur, tmp_path / "labels.zarr", **OPTS)
    nodes = list(reader.Reader(io.parse_url(str(tmp_path / "labels.zarr")))())
    assert [d.shape for d in nodes[0].data] == [(64, 96)]
    assert [a["name"] for a in nodes[0].metadata["axes"]] == ["y", "x"]
    assert any(type(spec).__name__ == "Label" for spec in nodes[0].specs)


def test_cancelled_run_leaves_nothing_behind(tmp_path, rng):
    from napari_res101unet.errors import Cancelled

    _store(tmp_path / "img.zarr", _image(rng, (128, 128, 3)))
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2  # after two blocks

    with pytest.raises(Cancelled):
        segment_blocks(tmp_path / "img.zarr", blur, tmp_path / "o.zarr", block_size=32,
                       should_stop=stop, **OPTS)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.zarr"]
