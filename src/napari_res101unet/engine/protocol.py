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

import io
import pickle
from typing import Any

from ..errors import EngineError, explain

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


_PLAIN_BUILTINS = frozenset({"set", "frozenset", "complex", "bytearray"})
_NUMPY = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _plain_dtype(*args: Any) -> Any:
    """``numpy.dtype`` for numbers, booleans, strings and bytes; object dtypes refused."""
    import numpy as np

    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("the engine sent an array of Python objects; refused")
    return dtype


class _SafeUnpickler(pickle.Unpickler):
    """Only plain data comes back from the engine: dict, list, tuple, str, bytes, numbers,
    bool, None (no lookup needed), sets and complex numbers, and numpy arrays and scalars
    of plain dtypes. Every other global (``builtins.eval``, ``os.system``...) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _PLAIN_BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        raise pickle.UnpicklingError(
            f"the engine sent a {module}.{name} object; only plain data is accepted"
        )


def safe_loads(data: bytes) -> Any:
    """Unpickle a reply, refusing anything but plain data."""
    return _SafeUnpickler(io.BytesIO(data)).load()
