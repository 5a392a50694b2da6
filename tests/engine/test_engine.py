"""The engine protocol and process without Qt: ping, segment, progress, cancel, errors,
and a killed engine restarted."""

from __future__ import annotations

import os
import pickle
import signal

import numpy as np
import pytest

from napari_res101unet.engine import protocol as P
from napari_res101unet.engine.client import EngineClient
from napari_res101unet.engine.server import Server
from napari_res101unet.errors import EngineCrashed, EngineError


def test_requests_name_a_known_operation():
    assert P.request(P.SEGMENT, 3, image=1) == {"op": "segment", "id": 3, "image": 1}
    with pytest.raises(ValueError, match="unknown engine operation 'fly'; known: segment"):
        P.request("fly", 1)


def test_error_replies_carry_type_and_one_line():
    msg = P.error(7, ValueError("bad tile\nsecond line"))
    assert msg == {"id": 7, "kind": P.ERROR, "type": "ValueError", "message": "bad tile"}
    with pytest.raises(EngineError, match="bad tile") as info:
        P.raise_error(msg)
    assert info.value.kind == "ValueError"


def test_safe_loads_takes_plain_data_and_refuses_objects():
    reply = P.result(1, {"labels": np.arange(6, dtype=np.uint8).reshape(2, 3), "t": [1.5]})
    back = P.safe_loads(pickle.dumps(reply))
    assert np.array_equal(back["value"]["labels"], reply["value"]["labels"])
    with pytest.raises(pickle.UnpicklingError, match="only plain data"):
        P.safe_loads(pickle.dumps(P.result(1, os.system)))


class _Conn:
    """What the server sends, recorded (the server's connection, without a process)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, msg: dict) -> None:
        self.sent.append(msg)


def test_server_dispatch_answers_every_job_once():
    server = Server(_Conn())
    server.run(P.request(P.PING, 1))
    server.run({"op": "fly", "id": 2})
    server.cancelled.add(3)
    server.run(P.request(P.PING, 3))
    kinds = [(m["id"], m["kind"]) for m in server.conn.sent]
    assert kinds == [(1, P.RESULT), (2, P.ERROR), (3, P.CANCELLED)]
    assert server.conn.sent[0]["value"]["pid"] == os.getpid()
    assert "unknown engine operation 'fly'" in server.conn.sent[1]["message"]


@pytest.fixture(scope="module")
def engine():
    client = EngineClient("test")
    yield client
    client.stop()


@pytest.mark.slow
def test_a_live_engine_pings_segments_cancels_and_reports_errors(engine, tmp_path):
    info = engine.start()
    assert "cpu" in info["devices"] and info["pid"] != os.getpid()
    assert engine.call(P.PING)["pid"] == info["pid"]

    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    options = {"channel_axis": -1, "return_probabilities": True, "tile_size": 32}
    job = engine.submit(P.SEGMENT, image=image, model="untrained", options=options)
    progress = [m for m in job if m["kind"] == P.PROGRESS]
    assert progress and progress[-1]["done"] == progress[-1]["total"]
    assert job.result["labels"].shape == (48, 64)
    assert job.result["probabilities"].shape == (48, 64)

    stack = np.zeros((30, 128, 128), np.uint8)
    job = engine.submit(P.SEGMENT, image=stack, model="untrained", options={"batch_size": 1})
    for msg in job:
        if msg["kind"] == P.PROGRESS:
            job.cancel()
    assert job.cancelled and job.result is None

    missing = tmp_path / "missing.safetensors"
    with pytest.raises(EngineError, match="missing.safetensors"):
        engine.call(P.SEGMENT, image=image, model=str(missing), options={})
    assert engine.call(P.PING)["pid"] == info["pid"]  # an error leaves the engine alive


@pytest.mark.slow
def test_a_killed_engine_is_reported_and_restarted(engine):
    pid = engine.start()["pid"]
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(EngineCrashed, match="killed by SIGKILL"):
        engine.call(P.PING)
    assert not engine.running
    assert engine.call(P.PING)["pid"] not in (pid, None)
