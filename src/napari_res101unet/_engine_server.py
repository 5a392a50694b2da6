"""The engine worker process: ``python -m napari_res101unet._engine_server ADDRESS``.

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
from typing import Any

from . import _engine_ops


class Server:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()

    def send(self, msg: dict) -> None:
        with self.lock:
            self.conn.send(msg)

    def read_forever(self) -> None:
        """Reader thread: queue jobs, note cancellations, stop on shutdown or EOF."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = {"op": "shutdown"}
            op = msg.get("op")
            if op == "cancel":
                self.cancelled.add(msg.get("id"))
            elif op == "shutdown":
                self.jobs.put(None)
                return
            else:
                self.jobs.put(msg)

    def serve(self) -> None:
        threading.Thread(target=self.read_forever, daemon=True).start()
        while (msg := self.jobs.get()) is not None:
            self.run(msg)

    def run(self, msg: dict) -> None:
        job_id = msg.get("id")
        if job_id in self.cancelled:
            self.send({"id": job_id, "kind": "cancelled"})
            return
        handler = _engine_ops.OPS.get(msg.get("op"))
        if handler is None:
            self.send(
                {
                    "id": job_id,
                    "kind": "error",
                    "type": "ValueError",
                    "message": f"unknown engine operation {msg.get('op')!r}",
                }
            )
            return
        job = _engine_ops.JobContext(
            send=lambda kind, **data: self.send({"id": job_id, "kind": kind, **data}),
            should_stop=lambda: job_id in self.cancelled,
        )
        try:
            value = handler(msg, job)
        except _engine_ops.CANCELLED:
            self.send({"id": job_id, "kind": "cancelled"})
        except Exception as exc:  # reported to the widget, the process lives on
            if not isinstance(exc, _engine_ops.USER_ERRORS):
                traceback.print_exc(file=sys.stderr)
            self.send(
                {
                    "id": job_id,
                    "kind": "error",
                    "type": type(exc).__name__,
                    "message": _engine_ops.explain(exc),
                }
            )
        else:
            self.send({"id": job_id, "kind": "result", "value": value})
        finally:
            self.cancelled.discard(job_id)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    key = bytes.fromhex(os.environ.pop("NAPARI_RES101UNET_ENGINE_KEY", ""))
    conn = Client(argv[0], authkey=key)
    hello: dict[str, Any]
    try:
        hello = _engine_ops.hello()
    except Exception as exc:
        conn.send({"kind": "error", "type": type(exc).__name__, "message": str(exc)})
        return 1
    conn.send({"kind": "result", "value": hello})
    Server(conn).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
