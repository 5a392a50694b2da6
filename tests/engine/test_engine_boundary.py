"""The engine boundary (issue 14, item 3): a strict unpickler on napari's side, a process
started away from napari's working folder, a start that times out and can be cancelled,
and a shutdown that lets a running training save."""

from __future__ import annotations

import builtins
import os
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import napari_res101unet
from napari_res101unet.engine import protocol as P
from napari_res101unet.engine.client import EngineClient
from napari_res101unet.errors import Cancelled, EngineCrashed

SRC = Path(napari_res101unet.__file__).resolve().parents[1]  # the package under test


class _Evil:
    def __reduce__(self):
        return (builtins.eval, ("__import__('os').getpid()",))


class _Getattr:
    def __reduce__(self):
        return (getattr, ("text", "upper"))


@pytest.mark.parametrize("payload", [_Evil(), _Getattr(), print, len, Path("x")])
def test_safe_loads_refuses_every_callable_and_class(payload):
    data = pickle.dumps(P.result(1, payload))
    with pytest.raises(pickle.UnpicklingError, match="only plain data"):
        P.safe_loads(data)


def test_safe_loads_names_builtins_eval_and_refuses_object_arrays():
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        P.safe_loads(pickle.dumps(_Evil()))
    objects = np.array([1, "a", None], dtype=object)
    with pytest.raises(pickle.UnpicklingError):
        P.safe_loads(pickle.dumps(objects))


@pytest.mark.parametrize("protocol", [4, 5])
def test_safe_loads_keeps_all_the_plain_data_the_protocol_sends(protocol):
    arrays = {
        dt: np.arange(6).astype(dt).reshape(2, 3)
        for dt in ("u1", "i2", "u2", "i4", "u4", "i8", "f2", "f4", "f8", "bool", "c8")
    }
    value = {
        "arrays": arrays,
        "fortran": np.asfortranarray(np.ones((3, 2), np.float32)),
        "scalars": [np.float64(0.5), np.int64(3), np.bool_(True), 1.5, 2, None, True],
        "text": ("a", b"b"),
        "extra": {1, 2},
        "complex": 1 + 2j,
        "big": 10**30,
    }
    back = P.safe_loads(pickle.dumps(P.result(4, value), protocol=protocol))["value"]
    for dt, arr in arrays.items():
        assert back["arrays"][dt].dtype == arr.dtype and np.array_equal(back["arrays"][dt], arr)
    assert np.array_equal(back["fortran"], value["fortran"])
    assert back["scalars"] == value["scalars"] and back["text"] == value["text"]
    assert back["extra"] == {1, 2} and back["complex"] == 1 + 2j and back["big"] == 10**30


def _env_with(monkeypatch, folder: Path) -> None:
    """Put ``folder`` before the package on the engine's PYTHONPATH (inherited)."""
    paths = [str(folder), str(SRC), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))


@pytest.mark.slow
def test_a_booby_trapped_numpy_in_the_working_folder_is_not_imported(tmp_path, monkeypatch):
    marker = tmp_path / "marker.txt"
    (tmp_path / "numpy.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nraise ImportError('trap')\n"
    )
    (tmp_path / "segmentation_models_pytorch.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
    )
    monkeypatch.chdir(tmp_path)
    client = EngineClient("trap", start_timeout=240)
    try:
        info = client.start()
        assert client.call(P.PING)["pid"] == info["pid"]
    finally:
        client.stop()
    assert not marker.exists()


def _hanging_import(folder: Path) -> None:
    """A segmentation_models_pytorch that never finishes importing (like a CUDA start
    that hangs): the engine connects, then never says hello."""
    package = folder / "segmentation_models_pytorch"
    package.mkdir()
    (package / "__init__.py").write_text("import time\ntime.sleep(3600)\n")


def test_an_engine_that_never_answers_times_out(tmp_path, monkeypatch):
    _hanging_import(tmp_path)
    _env_with(monkeypatch, tmp_path)
    client = EngineClient("hang", start_timeout=3)
    started = time.monotonic()
    with pytest.raises(EngineCrashed, match="did not report within the start timeout"):
        client.start()
    assert time.monotonic() - started < 15
    assert not client.running and client._launch is None
    client.stop()


def test_a_hanging_start_is_cancelled_by_stop_from_another_thread(tmp_path, monkeypatch):
    _hanging_import(tmp_path)
    _env_with(monkeypatch, tmp_path)
    client = EngineClient("hang", start_timeout=300)
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            client.start()
        except BaseException as exc:  # recorded for the assertion
            outcome.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    time.sleep(1.0)
    proc = client._launch.proc
    began = time.monotonic()
    client.stop()  # must not wait for the start's lock
    thread.join(10)
    assert time.monotonic() - began < 10 and not thread.is_alive()
    assert outcome and isinstance(outcome[0], Cancelled)
    assert proc.poll() is not None

    asked = threading.Event()
    threading.Timer(1.0, asked.set).start()
    with pytest.raises(Cancelled):
        client.start(cancel=asked.is_set)
    assert not client.running


def _disks(size: int = 96):
    yy, xx = np.mgrid[:size, :size]
    labels = ((yy - 40) ** 2 + (xx - 50) ** 2 < 15**2).astype(np.uint8)
    image = (60 + 120 * labels + np.random.default_rng(0).normal(0, 10, labels.shape)).clip(0, 255)
    return image.astype(np.uint8), labels


@pytest.mark.slow
def test_stop_during_training_lets_it_save_as_cancelled(tmp_path):
    from napari_res101unet.checkpoint import read_header
    from napari_res101unet.config import TrainSettings

    settings = TrainSettings(epochs=100, patch_size=64, batch_size=2, steps_per_epoch=1)
    output = tmp_path / "run.safetensors"
    client = EngineClient("train-stop", start_timeout=240)
    try:
        job = client.submit(
            P.TRAIN,
            pairs=[_disks(), _disks()],
            settings=settings,
            options={"output": str(output), "device": "cpu"},
        )
        messages = iter(job)  # kept alive: closing it would cancel the job the usual way
        for msg in messages:
            event = msg.get("event") or {}
            if event.get("kind") == "checkpoint" and event.get("best"):
                break  # one epoch done and saved, the run goes on
        assert read_header(output)["spec"]["training"]["stopped"] is None
        client.stop()  # what napari's exit does
        del messages
    finally:
        client.stop()
    record = read_header(output)["spec"]["training"]
    assert record["stopped"] == "cancelled"
    assert 1 <= record["epochs_done"] < 100
