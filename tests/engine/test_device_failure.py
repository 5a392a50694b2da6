"""A GPU failing inside the engine: a clear error, the process ends, the client restarts it.
Injected in-process (no CUDA here): an operation raising the errors torch raises."""

from __future__ import annotations

import threading

import pytest
import torch

from napari_res101unet.engine import ops
from napari_res101unet.engine import protocol as P
from napari_res101unet.engine.client import EngineJob as Job
from napari_res101unet.engine.server import Server
from napari_res101unet.errors import DeviceFailure, EngineError


class _Conn:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, msg: dict) -> None:
        self.sent.append(msg)

    def recv(self) -> dict:
        threading.Event().wait()  # the server's reader thread: napari is there, silent
        raise EOFError


@pytest.mark.parametrize(
    "failure",
    [
        torch.AcceleratorError("CUDA error: device-side assert triggered"),
        DeviceFailure("cuda:0 failed during the run (CUDA error: ...); the engine restarts"),
    ],
)
def test_the_server_reports_a_gpu_failure_and_stops_serving(monkeypatch, failure):
    def failing(msg, job):
        raise failure

    monkeypatch.setitem(ops.OPS, "fail", failing)
    server = Server(_Conn())
    server.jobs.put({"op": "fail", "id": 1})
    server.jobs.put(P.request(P.PING, 2))  # never served: the process must end first
    server.jobs.put(None)
    server.serve()
    sent = [(m["id"], m["kind"], m.get("restart")) for m in server.conn.sent]
    assert sent == [(1, P.ERROR, True)]
    message = server.conn.sent[0]["message"]
    assert "failed during the run" in message and "engine restarts" in message


def test_other_errors_keep_the_engine_alive(monkeypatch):
    def failing(msg, job):
        raise RuntimeError("CUDA error: out of memory")  # not a broken device

    monkeypatch.setitem(ops.OPS, "fail", failing)
    server = Server(_Conn())
    for item in ({"op": "fail", "id": 1}, P.request(P.PING, 2), None):
        server.jobs.put(item)
    server.serve()
    kinds = [(m["id"], m["kind"], m.get("restart")) for m in server.conn.sent]
    assert kinds == [(1, P.ERROR, None), (2, P.RESULT, None)]
    assert server.conn.sent[0]["message"].startswith("out of device memory")


class _Client:
    """The client side of a job whose engine reports a failed GPU."""

    def __init__(self, reply: dict) -> None:
        self.replies, self.stopped, self.sent = [reply], 0, []

    def _recv(self) -> dict:
        return self.replies.pop(0)

    def _send(self, msg: dict) -> None:
        self.sent.append(msg)

    def _release(self) -> None:
        pass

    def stop(self) -> None:
        self.stopped += 1


def test_the_client_restarts_the_engine_after_a_gpu_failure():
    failure = DeviceFailure("cuda:0 failed during the run (CUDA error: unspecified launch)")
    client = _Client(P.error(7, failure, restart=True))
    with pytest.raises(EngineError, match="cuda:0 failed during the run") as info:
        Job(client, 7).wait()
    assert info.value.kind == "DeviceFailure"
    assert client.stopped == 1  # the next job starts a fresh process
    plain = _Client(P.error(8, ValueError("bad tile")))
    with pytest.raises(EngineError, match="bad tile"):
        Job(plain, 8).wait()
    assert plain.stopped == 0
