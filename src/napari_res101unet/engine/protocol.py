"""The engine protocol, defined once: message kinds and their constructors.

napari's process (the client, :mod:`.client`) sends *requests*; the engine process (the
server, :mod:`.server`) answers with *replies*. Messages are dicts of plain data (str,
numbers, lists, dicts, numpy arrays). The client reads replies with :func:`safe_loads`,
which admits nothing else, so no reply can make napari's process import torch (or run
anything). Neither torch nor Qt is imported here.

Requests: ``{"op": SEGMENT | TRAIN | PING, "id": n, ...payload}``, ``{"op": CANCEL,
"id": n}`` and ``{"op": SHUTDOWN}``. Replies: one ``HELLO`` (or ``ERROR``) when the engine
has started, then per job any number of ``PROGRESS`` and ``EVENT`` messages and exactly
one of ``RESULT``, ``CANCELLED`` or ``ERROR``.
"""

from __future__ import annotations

from typing import Any

from ..errors import EngineError, explain
from ._plain_pickle import plain_loads

# requests (client -> engine)
SEGMENT, TRAIN, PING = "segment", "train", "ping"
REFINE = "refine"  # fine-tune on corrections, then re-segment (training/refine.py)
SEGMENT_BLOCKS = "segment_blocks"  # a store on disk, block by block (viewer/segment_lazy.py)
SEGMENT_FILES = "segment_files"  # a cohort of files on disk (inference/cohort.py)
JOBS = (SEGMENT, TRAIN, PING, REFINE, SEGMENT_BLOCKS, SEGMENT_FILES)
CANCEL, SHUTDOWN = "cancel", "shutdown"

# replies (engine -> client)
HELLO, PROGRESS, EVENT, RESULT, CANCELLED, ERROR = (
    "hello",
    "progress",
    "event",
    "result",
    "cancelled",
    "error",
)

# what a client's runner yields to its widget besides the replies above (never sent)
STATUS, ENGINE_READY = "status", "engine"


def request(op: str, job_id: int, **payload: Any) -> dict:
    """A job request; ``op`` is one of :data:`JOBS`."""
    if op not in JOBS:
        raise ValueError(f"unknown engine operation {op!r}; known: {', '.join(JOBS)}")
    return {"op": op, "id": job_id, **payload}


def cancel(job_id: int) -> dict:
    return {"op": CANCEL, "id": job_id}


def shutdown() -> dict:
    return {"op": SHUTDOWN}


def hello(info: dict) -> dict:
    """The engine's first message: devices and versions it found."""
    return {"kind": HELLO, "value": info}


def progress(job_id: int, done: int, total: int) -> dict:
    return {"id": job_id, "kind": PROGRESS, "done": int(done), "total": int(total)}


def event(job_id: int, data: dict) -> dict:
    """A training event (:meth:`~napari_res101unet.training.TrainingEvent.as_dict`)."""
    return {"id": job_id, "kind": EVENT, "event": data}


def result(job_id: int, value: Any) -> dict:
    return {"id": job_id, "kind": RESULT, "value": value}


def cancelled(job_id: int) -> dict:
    return {"id": job_id, "kind": CANCELLED}


def error(
    job_id: int | None, exc: BaseException | str, kind: str | None = None, restart: bool = False
) -> dict:
    """An error reply: the exception's type name and a one-line message for the user;
    ``restart``: the engine process is ending (its GPU failed) and the client must start
    a fresh one."""
    message = explain(exc) if isinstance(exc, BaseException) else str(exc)
    name = kind or (type(exc).__name__ if isinstance(exc, BaseException) else "Error")
    reply = {"id": job_id, "kind": ERROR, "type": name, "message": message}
    return {**reply, "restart": True} if restart else reply


def raise_error(msg: dict) -> None:
    """Raise the :class:`EngineError` an ``ERROR`` reply describes."""
    raise EngineError(msg.get("type", "Error"), msg.get("message", ""))


def safe_loads(data: bytes) -> Any:
    """Unpickle a reply, refusing anything but plain data (see :mod:`._plain_pickle`:
    no global but plain builtins and numpy's array constructors, no object arrays
    whatever path builds them).

    Raises
    ------
    pickle.UnpicklingError
        For anything else, or a malformed stream.
    """
    return plain_loads(data)
