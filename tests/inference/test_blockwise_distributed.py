"""Blockwise segmentation on a real 2-worker dask LocalCluster (processes), one killed."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

from predictors import slow_blur  # noqa: E402

from napari_res101unet.inference.blockwise import segment_blocks  # noqa: E402
from napari_res101unet.inference.cluster import open_client  # noqa: E402
from napari_res101unet.inference.segment import segment  # noqa: E402
from napari_res101unet.io.label_store import open_labels  # noqa: E402

OPTS = {"tile_size": 96, "overlap": 0.25, "device": "cpu", "normalization": "percentile"}


@pytest.mark.slow
def test_killed_worker_has_its_blocks_recomputed(tmp_path, rng):
    smooth = rng.random((256, 256, 3)).cumsum(axis=0).cumsum(axis=1)
    image = (255 * smooth / smooth.max()).astype(np.uint8)
    arr = zarr.create_array(str(tmp_path / "img.zarr"), shape=image.shape, chunks=(64, 64, 3),
                            dtype="uint8")  # fmt: skip
    arr[:] = image
    expected = segment(image, slow_blur, batch_size=4, **OPTS)
    killed: list[str] = []
    with open_client(workers=2) as client:
        pids = client.run(os.getpid)

        def kill_one(done: int, total: int) -> None:
            if done == 3 and not killed:
                victim = sorted(pids)[0]
                killed.append(victim)
                os.kill(pids[victim], signal.SIGKILL)  # the worker process, mid-run

        result = segment_blocks(
            tmp_path / "img.zarr",
            slow_blur,
            tmp_path / "labels.zarr",
            block_size=64,
            progress=kill_one,
            **OPTS,
        )  # fmt: skip  (runs on the current client: the cluster above)
        after = client.run(os.getpid)
    assert killed and pids[killed[0]] not in after.values()  # it really died (and restarted)
    np.testing.assert_array_equal(open_labels(result.path)[:], expected)
    assert result.blocks == 16
