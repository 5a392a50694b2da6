"""Objects block by block (``segment_blocks(..., instances=True)``) equal the objects in
memory: discs cut by block edges, one on the corner of four blocks, ids unique."""

from __future__ import annotations

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from predictors import per_pixel  # noqa: E402

from napari_res101unet.evaluation.objects import object_tally  # noqa: E402
from napari_res101unet.inference.blockwise import segment_blocks  # noqa: E402
from napari_res101unet.inference.segment import segment  # noqa: E402
from napari_res101unet.io.label_store import open_labels  # noqa: E402

OPTS = {"tile_size": 128, "overlap": 0.25, "device": "cpu", "normalization": "none",
        "instances": True}  # fmt: skip


def disc_image(size: int = 1536, block: int = 512, seed: int = 0) -> np.ndarray:
    """Bright discs (radius 9-16) on black, apart from each other: a grid of them, plus
    discs centred on block edges and one on the corner of four blocks."""
    rng = np.random.default_rng(seed)
    centres = [(block, block)]  # the corner of four blocks (placed first: always kept)
    centres += [(block + 200, block), (block, 2 * block + 150), (2 * block, 300)]  # edges
    centres += [(y + rng.integers(-12, 13), x + rng.integers(-12, 13))
                for y in range(40, size - 20, 70) for x in range(40, size - 20, 70)]  # fmt: skip
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size), np.uint8)
    taken = np.zeros((size, size), bool)
    for cy, cx in centres:
        r = int(rng.integers(9, 17))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        ring = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 3) ** 2
        if (ring & taken).any():
            continue  # keep the discs apart (touching ones across an edge are merged)
        image[disc], taken = 200, taken | ring
    return image


def test_objects_block_by_block_match_the_objects_in_memory(tmp_path):
    image = disc_image()
    zarr.create_array(str(tmp_path / "in.zarr"), shape=image.shape, dtype=image.dtype,
                      chunks=(512, 512))[:] = image  # fmt: skip
    expected = segment(image, per_pixel, **OPTS)
    result = segment_blocks(tmp_path / "in.zarr", per_pixel, tmp_path / "out.zarr",
                            block_size=512, **OPTS)  # fmt: skip
    labels = np.asarray(open_labels(result.path)[:])
    assert result.blocks == 9 and labels.dtype == np.uint32
    n = int(expected.max())
    assert n > 300 and result.objects == int(labels.max())
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))  # unique, 1..m
    assert _found_at_09(labels, expected) >= 0.99 * n
    corner = labels[512 - 3 : 512 + 3, 512 - 3 : 512 + 3]
    assert len(np.unique(corner)) == 1 and corner[0, 0] > 0  # one object over four blocks
    assert result.objects == n


def test_the_learned_size_applies_after_merging(tmp_path):
    """An object cut by a block edge into a large part and a sliver keeps its sliver; a
    speck is dropped."""
    image = np.zeros((256, 256), np.uint8)
    image[100:140, 126:131] = 200  # 5 px wide: 2 columns left of the edge at 128, 3 right
    image[20:22, 20:22] = 200  # a 4-pixel speck
    zarr.create_array(str(tmp_path / "in.zarr"), shape=image.shape, dtype=image.dtype)[:] = image
    result = segment_blocks(tmp_path / "in.zarr", per_pixel, tmp_path / "out.zarr",
                            block_size=128, min_object_size=50,
                            **{**OPTS, "tile_size": 64})  # fmt: skip
    labels = np.asarray(open_labels(result.path)[:])
    assert result.objects == 1 and labels[20, 20] == 0
    assert (labels[100:140, 126:131] == 1).all()


@pytest.mark.slow
def test_objects_on_a_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    from napari_res101unet.inference.cluster import open_client

    image = disc_image(768, 256, seed=1)
    zarr.create_array(str(tmp_path / "in.zarr"), shape=image.shape, dtype=image.dtype)[:] = image
    expected = segment(image, per_pixel, **OPTS)
    with open_client(workers=2):
        result = segment_blocks(tmp_path / "in.zarr", per_pixel, tmp_path / "out.zarr",
                                block_size=256, **OPTS)  # fmt: skip
    labels = np.asarray(open_labels(result.path)[:])
    assert result.blocks == 9 and result.objects == int(labels.max()) == int(expected.max())
    assert _found_at_09(labels, expected) >= 0.99 * expected.max()


def _found_at_09(labels: np.ndarray, expected: np.ndarray) -> int:
    """In-memory objects matched one to one at IoU >= 0.9."""
    tally = object_tally(labels, expected, objects_from="instances", thresholds=(0.9,))
    return tally.matching[0].tp
