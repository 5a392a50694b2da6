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

    def send(self, msg: dict) -> None:
        with self.lock:
            self.conn.send(msg)

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
        job = ops.JobContext(job_id, self.send, lambda: job_id in self.cancelled)
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
    Server(conn).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
