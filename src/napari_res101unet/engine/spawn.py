"""Starting the engine process: a fixed working folder, a safe ``sys.path``, and a wait
for its first message that times out and can be cancelled (used by :mod:`.client`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener
from pathlib import Path

from ..errors import Cancelled, EngineCrashed
from .protocol import safe_loads

ENGINE_FOLDER = str(Path(__file__).resolve().parents[2])
"""The engine's working folder at start: the folder holding the package, never napari's
working directory (whose ``numpy.py`` would otherwise be imported)."""


class Launch:
    """A starting engine process: started from a fixed folder with a safe ``sys.path``."""

    def __init__(self, timeout: float) -> None:
        self.timeout, self.cancelled = timeout, False
        self.done = threading.Event()
        authkey = os.urandom(32)
        self.listener = Listener(authkey=authkey)
        env = dict(os.environ, NAPARI_RES101UNET_ENGINE_KEY=authkey.hex())
        env["NAPARI_RES101UNET_ENGINE_CWD"] = os.getcwd()  # relative paths of jobs
        env["PYTHONSAFEPATH"] = "1"  # no cwd or script folder on sys.path (3.11+)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "napari_res101unet.engine.server", str(self.listener.address)],
            env=env,
            cwd=ENGINE_FOLDER,
            stdin=subprocess.DEVNULL,
        )

    def cancel(self) -> None:
        self.cancelled = True
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def wait(self, cancelled: Callable[[], bool]) -> tuple[Connection, dict]:
        """The connection and the first message (HELLO or ERROR), within the timeout."""
        deadline = time.monotonic() + self.timeout
        try:
            conn = _accept(self.listener, self.proc, deadline, cancelled)
            while not conn.poll(0.1):
                _check_waiting(self.proc, deadline, cancelled)
            return conn, safe_loads(conn.recv_bytes())
        except (EOFError, OSError):
            self.kill()
            if cancelled():
                raise Cancelled("the engine start was cancelled") from None
            raise EngineCrashed("Crashed", "the engine process closed while starting") from None
        except BaseException:
            self.kill()
            raise


def _check_waiting(proc: subprocess.Popen, deadline: float, cancelled: Callable[[], bool]):
    if cancelled():
        raise Cancelled("the engine start was cancelled")
    if proc.poll() is not None:
        raise EngineCrashed(
            "Crashed", f"the engine process exited while starting (code {proc.returncode})"
        )
    if time.monotonic() >= deadline:
        raise EngineCrashed(
            "Crashed",
            "the engine process did not report within the start timeout; it was stopped "
            "(a hanging GPU driver?). Try again, or set CUDA_VISIBLE_DEVICES= to use the CPU",
        )


def _accept(
    listener: Listener, proc: subprocess.Popen, deadline: float, cancelled: Callable[[], bool]
) -> Connection:
    """Accept the engine's connection, failing early if the process dies while starting."""
    box: dict = {}

    def accept() -> None:
        try:
            box["conn"] = listener.accept()
        except Exception as exc:  # pragma: no cover - reported below
            box["error"] = exc

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if thread.is_alive():
            _check_waiting(proc, deadline, cancelled)
    if "conn" not in box:
        raise EngineCrashed("Crashed", f"the engine process did not start: {box.get('error')}")
    return box["conn"]
