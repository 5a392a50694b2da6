"""Run the engine in a separate, warm worker process (used by the napari widgets).

Why a process: on Linux with Mesa OpenGL, importing torchvision (whose triton brings its
own LLVM) into a process where napari has created its OpenGL canvas segfaults the whole
application. torch, CUDA out-of-memory and driver faults can also kill a process. So the
widgets never import torch: they send arrays to an engine process and receive labels,
progress and training events back. A crash is reported as an error and the next job starts
a fresh process.

This module imports neither torch nor Qt.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from ..errors import Cancelled, EngineBusy, EngineCrashed, EngineError
from . import protocol as P
from .protocol import safe_loads
from .spawn import Launch

START_TIMEOUT = 300.0
"""Seconds to wait for a new engine process to import torch and connect."""
SHUTDOWN_GRACE = 120.0
"""Seconds a cancelled job gets to finish (save) when the engine is stopped."""


class EngineJob:
    """One request to the engine; iterate it for progress messages, then read ``result``.

    Iterating yields the job's ``PROGRESS`` and ``EVENT`` replies (see :mod:`.protocol`).
    It ends with the result stored in ``result`` (or ``cancelled`` set), or raises
    :class:`~napari_res101unet.errors.EngineError`.
    """

    def __init__(self, client: EngineClient, job_id: int) -> None:
        self.client, self.id = client, job_id
        self.result: Any = None
        self.cancelled = False
        self._done = False

    def cancel(self) -> None:
        """Ask the engine to stop this job at its next batch/step (safe from any thread)."""
        if not self._done:
            self.client._send(P.cancel(self.id))

    def __iter__(self) -> Iterator[dict]:
        finished = False
        try:
            while True:
                msg = self.client._recv()
                if msg.get("id") != self.id:
                    continue  # late messages of an earlier, abandoned job
                kind = msg.get("kind")
                if kind in (P.PROGRESS, P.EVENT):
                    yield msg
                elif kind == P.RESULT:
                    self.result, finished = msg.get("value"), True
                    return
                elif kind == P.CANCELLED:
                    self.cancelled, finished = True, True
                    return
                elif kind == P.ERROR:
                    finished = True
                    if msg.get("restart"):  # the GPU failed: the process is ending
                        self.client.stop()
                    P.raise_error(msg)
        finally:
            if not finished:  # abandoned (or the engine died): make sure it stops
                with contextlib.suppress(EngineError):
                    self.cancel()
            self._done = True
            self.client._release()

    def wait(self) -> Any:
        """Run to the end, ignoring progress; return the result (None if cancelled)."""
        for _ in self:
            pass
        return self.result


class EngineClient:
    """A lazily started engine process with a request/response connection."""

    def __init__(self, name: str = "engine", start_timeout: float = START_TIMEOUT) -> None:
        self.name, self.start_timeout = name, start_timeout
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._busy = False
        self._launch: Launch | None = None
        self._ids = itertools.count(1)
        self.info: dict = {}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._conn is not None

    def start(self, cancel: Callable[[], bool] | None = None) -> dict:
        """Start the process if needed; return what it reports (devices, versions).

        Waits at most ``start_timeout`` seconds for the process to connect and report,
        without holding the client's lock: :meth:`stop` (from any thread) or ``cancel()``
        returning True ends the wait at once.

        Raises
        ------
        EngineCrashed
            When the process exits, or does not report within ``start_timeout``.
        Cancelled
            When the start was cancelled.
        """
        with self._state_lock:
            if self.running:
                return self.info
            other = self._launch
            if other is None:
                self._stop_locked()
                launch = Launch(self.start_timeout)
                self._launch = launch
        if other is not None:  # another thread is starting it: wait for that start
            while not other.done.wait(0.1):
                if cancel is not None and cancel():
                    raise Cancelled("the engine start was cancelled")
            if not self.running:
                raise EngineCrashed("Crashed", "the engine process did not start")
            return self.info
        try:
            conn, hello = launch.wait(lambda: launch.cancelled or bool(cancel and cancel()))
        except BaseException:
            self._forget(launch)
            raise
        finally:
            launch.listener.close()
        with self._state_lock:
            if self._launch is not launch or launch.cancelled or hello.get("kind") != P.HELLO:
                launch.kill()
                conn.close()
                self._forget(launch)
                if hello.get("kind") == P.ERROR:
                    P.raise_error(hello)
                raise Cancelled("the engine start was cancelled")
            self._proc, self._conn = launch.proc, conn
            self.info = hello.get("value", {})
            self._forget(launch)
            return self.info

    def _forget(self, launch: Launch) -> None:
        if self._launch is launch:
            self._launch = None
        launch.done.set()

    def submit(self, op: str, **payload: Any) -> EngineJob:
        """Send a job; iterate the returned :class:`EngineJob` to follow it."""
        self.start()
        with self._state_lock:
            if self._busy:
                raise EngineBusy(f"the {self.name} engine is already running a job")
            self._busy = True
        job = EngineJob(self, next(self._ids))
        try:
            self._send(P.request(op, job.id, **payload))
        except BaseException:
            self._release()
            raise
        return job

    def call(self, op: str, **payload: Any) -> Any:
        """Submit and wait for the result."""
        return self.submit(op, **payload).wait()

    def _send(self, msg: dict) -> None:
        conn = self._conn
        if conn is None:
            raise EngineCrashed("Crashed", self._crash_message())
        try:
            with self._send_lock:
                conn.send(msg)
        except (OSError, ValueError):
            raise EngineCrashed("Crashed", self._crash_message()) from None

    def _recv(self) -> dict:
        conn = self._conn
        try:
            if conn is None:
                raise EOFError
            return safe_loads(conn.recv_bytes())
        except (EOFError, OSError):
            message = self._crash_message()
            self.stop()
            raise EngineCrashed("Crashed", message) from None

    def _release(self) -> None:
        with self._state_lock:
            self._busy = False

    def _crash_message(self) -> str:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        how = "stopped"
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        elif code is not None:
            how = f"exited with code {code}"
        return (
            f"the {self.name} engine process {how}; napari is unharmed and the next run "
            "starts a fresh engine"
        )

    def stop(self) -> None:
        """Stop the process (it is restarted by the next job); cancels a start under way.

        A running job is cancelled first and given :data:`SHUTDOWN_GRACE` seconds to
        finish (a training run saves its best model as cancelled) before the process is
        killed."""
        launch = self._launch
        if launch is not None:  # without the lock: a start may be waiting
            launch.cancel()
        with self._state_lock:
            self._stop_locked()
            self._busy = False

    def _stop_locked(self) -> None:
        conn, proc = self._conn, self._proc
        self._conn, self._proc = None, None
        grace = SHUTDOWN_GRACE if self._busy else 5.0
        if conn is not None:
            try:
                with self._send_lock:
                    conn.send(P.shutdown())
            except (OSError, ValueError):
                pass
            conn.close()
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


_CLIENTS: dict[str, EngineClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_engine(name: str) -> EngineClient:
    """The process-wide engine client called ``name`` (one per widget kind)."""
    with _CLIENTS_LOCK:
        if name not in _CLIENTS:
            _CLIENTS[name] = EngineClient(name)
        return _CLIENTS[name]


@atexit.register
def _stop_all() -> None:
    for client in list(_CLIENTS.values()):
        client.stop()
