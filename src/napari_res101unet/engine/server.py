"""The engine worker process: ``python -m napari_res101unet.engine.server ADDRESS``.

It connects back to the widget's process (authenticated with the key in
``$NAPARI_RES101UNET_ENGINE_KEY``), then serves jobs one at a time. A reader thread takes
messages so that ``cancel`` arrives while a job runs. The process exits when its parent
closes the connection.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from multiprocessing.connection import Client, Connection

from ..errors import USER_ERRORS, Cancelled, is_device_failure
from . import ops
from . import protocol as P


class Server:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()
        self.device_failed = False
        self.closing = False  # shutdown asked or napari gone: stop the running job

    def send(self, msg: dict) -> None:
        """Send a reply; once napari's side has gone, replies are dropped and the running
        job is asked to stop (it still finishes, e.g. saves its model as cancelled)."""
        with self.lock:
            if self.closing:
                return
            try:
                self.conn.send(msg)
            except (OSError, ValueError):
                self.closing = True

    def read_forever(self) -> None:
        """Reader thread: queue jobs, note cancellations, stop on shutdown or EOF."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = P.shutdown()
            op = msg.get("op")
            if op == P.CANCEL:
                self.cancelled.add(msg.get("id"))
            elif op == P.SHUTDOWN:
                self.closing = True  # the running job stops at its next step and saves
                self.jobs.put(None)
                return
            else:
                self.jobs.put(msg)

    def serve(self) -> None:
        threading.Thread(target=self.read_forever, daemon=True).start()
        while not self.device_failed and (msg := self.jobs.get()) is not None:
            self.run(msg)

    def run(self, msg: dict) -> None:
        job_id = msg.get("id")
        if job_id in self.cancelled:
            self.send(P.cancelled(job_id))
            return
        handler = ops.OPS.get(msg.get("op"))
        if handler is None:
            self.send(P.error(job_id, ValueError(f"unknown engine operation {msg.get('op')!r}")))
            return
        job = ops.JobContext(job_id, self.send, lambda: self.closing or job_id in self.cancelled)
        try:
            value = handler(msg, job)
        except Cancelled:
            self.send(P.cancelled(job_id))
        except Exception as exc:  # reported to the widget, the process lives on...
            if not isinstance(exc, USER_ERRORS):
                traceback.print_exc(file=sys.stderr)
            # ...unless the GPU failed: its CUDA context is unusable, so the process ends
            # and the client starts a fresh one for the next job
            self.device_failed = is_device_failure(exc)
            self.send(P.error(job_id, exc, restart=self.device_failed))
        else:
            self.send(P.result(job_id, value))
        finally:
            self.cancelled.discard(job_id)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    key = bytes.fromhex(os.environ.pop("NAPARI_RES101UNET_ENGINE_KEY", ""))
    conn = Client(argv[0], authkey=key)
    try:
        info = ops.hello()
    except Exception as exc:
        conn.send(P.error(None, exc))
        return 1
    conn.send(P.hello(info))
    _enter_callers_folder()
    Server(conn).serve()
    return 0


def _enter_callers_folder() -> None:
    """Relative paths in jobs mean napari's working folder. The process starts elsewhere
    (see ``launch.ENGINE_FOLDER``) so that nothing there is imported; ``sys.path`` holds no
    relative entry, so changing folder now does not change what imports find."""
    folder = os.environ.pop("NAPARI_RES101UNET_ENGINE_CWD", "")
    if folder and os.path.isdir(folder):
        os.chdir(folder)


if __name__ == "__main__":
    sys.exit(main())
