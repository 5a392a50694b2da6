"""The dask.distributed plumbing: which client, and one model per worker process
(:func:`napari_res101unet.registry.open_model`, the one way a model is opened)."""

from __future__ import annotations

import shutil
import socket
import time

import pytest

distributed = pytest.importorskip("distributed")

from napari_res101unet.inference.cluster import (  # noqa: E402
    SchedulerUnreachable,
    open_client,
    worker_device,
)
from napari_res101unet.registry import open_model  # noqa: E402


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_scheduler_that_does_not_answer_fails_within_the_timeout():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    with (
        pytest.raises(SchedulerUnreachable, match="127.0.0.1") as info,
        open_client(scheduler=address, scheduler_timeout=2),
    ):
        pass
    assert isinstance(info.value, ConnectionError)
    assert time.perf_counter() - start < 8


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="either"), open_client(workers=1, scheduler="x"):
        pass
    with pytest.raises(ValueError, match="positive"), open_client(workers=0):
        pass


def test_no_cluster_asked_and_none_running_yields_none():
    with open_client() as client:
        assert client is None


def _pid_and_model_id(path: str) -> tuple[int, int]:
    import os

    return os.getpid(), id(open_model(path, device="cpu"))


@pytest.mark.slow
def test_local_cluster_loads_the_model_once_per_worker_and_stops(small_model, tmp_path):
    from napari_res101unet import save_model

    path = save_model(small_model, tmp_path / "m.safetensors")
    with open_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        with open_client() as current:  # inside, the current client is found
            assert current is client
        futures = client.map(_pid_and_model_id, [str(path)] * 6, pure=False)
        results = client.gather(futures)
        cluster = client.cluster
    per_pid: dict[int, set[int]] = {}
    for pid, model_id in results:
        per_pid.setdefault(pid, set()).add(model_id)
    assert all(len(ids) == 1 for ids in per_pid.values())
    assert cluster.status.name == "closed"


def test_model_cache_is_keyed_by_content_not_path(small_model, tmp_path):
    from napari_res101unet import save_model

    first = save_model(small_model, tmp_path / "a.safetensors")
    copy = tmp_path / "b.safetensors"
    shutil.copy(first, copy)
    model = open_model(str(first), device="cpu")
    assert open_model(str(copy), device="cpu") is model
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(FileNotFoundError, match="missing"):
        open_model(str(tmp_path / "missing.safetensors"))


def test_worker_device_outside_a_worker():
    assert worker_device("cpu") == "cpu"
    assert worker_device("auto") in {"cpu", "cuda:0", "mps"}
