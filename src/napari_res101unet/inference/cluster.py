"""dask.distributed plumbing: which cluster to run on, and one model per worker process.

:func:`open_client` picks the cluster (a scheduler address, a ``LocalCluster`` it starts
and stops, or the current client); :func:`worker_model` loads a model once per process,
keyed by the checkpoint's sha256 and the device, on the worker's own GPU when there are
several. dask and torch are imported when used, not on import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SchedulerUnreachable", "open_client", "worker_device", "worker_model"]

_MODELS: dict[tuple, Any] = {}
_HASHES: dict[tuple, str] = {}
_LOCK = threading.Lock()


class SchedulerUnreachable(ConnectionError):
    """A dask scheduler address that did not answer in time."""


@contextlib.contextmanager
def open_client(
    workers: int | None = None,
    scheduler: str | None = None,
    threads_per_worker: int = 1,
    timeout: float = 10.0,
) -> Iterator[Any]:
    """The ``distributed.Client`` to run on, closed (with any cluster it started) on exit.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes (stopped on exit).
    scheduler : str, optional
        Connect to an existing cluster, e.g. ``"tcp://10.0.0.5:8786"``.
    threads_per_worker : int
        Threads of each local worker (1: one model call at a time per process).
    timeout : float
        Seconds to wait for ``scheduler`` to answer.

    Yields
    ------
    client : distributed.Client or None
        With neither ``workers`` nor ``scheduler``: the current client when the caller has
        one (left open), else None, meaning "run in this process with dask's local
        scheduler" (blockwise inference then uses threads, no cluster is started).

    Raises
    ------
    ValueError
        Both ``workers`` and ``scheduler`` given, or ``workers`` < 1.
    SchedulerUnreachable (a ConnectionError)
        ``scheduler`` did not answer within ``timeout`` seconds.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers (a local cluster) or scheduler (an address)")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer; got {workers!r}")
    from distributed import Client

    if scheduler is not None:
        client = _connect(scheduler, timeout)
        try:
            yield client
        finally:
            client.close()
    elif workers is not None:
        from distributed import LocalCluster

        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=":0",  # any free port, never a clash
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        yield current_client()


def current_client() -> Any:
    """The ``distributed.Client`` this process already uses, or None."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is an optional extra
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _connect(address: str, timeout: float) -> Any:
    from distributed import Client

    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"scheduler must be an address like 'tcp://host:8786'; got {address!r}")
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"no dask scheduler answered at {address} within {timeout:g} s; start one with "
            "`dask scheduler` (and `dask worker ADDRESS`) or check the address"
        ) from exc


def worker_device(device: str = "auto") -> str:
    """This process's device: with several GPUs, one chosen from the dask worker's name.

    ``"auto"`` on a machine with N > 1 visible GPUs gives ``cuda:(index % N)``, where the
    index is the worker's name when it is an integer (``LocalCluster`` names workers 0, 1,
    ...) else a stable hash of it. One GPU per worker set through ``CUDA_VISIBLE_DEVICES``
    (as dask-cuda's ``LocalCUDACluster`` does) leaves one visible GPU: ``cuda:0``.
    """
    if device != "auto":
        return device
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count <= 1:
        from ..device import resolve_device

        return str(resolve_device("auto"))
    return f"cuda:{_worker_index() % count}"


def _worker_index() -> int:
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        return int(name)
    return zlib.crc32(str(name).encode())


def worker_model(source: str, device: str = "auto") -> Any:
    """A model loaded once per process, keyed by the checkpoint's sha256 and the device.

    Parameters
    ----------
    source : str
        A checkpoint path (anything :func:`~napari_res101unet.checkpoint.load_model`
        reads) or ``"untrained"`` (a seeded, randomly initialised Res101_UNet, 3 channels).
    device : str
        ``"auto"`` (this worker's GPU, see :func:`worker_device`), ``"cpu"``, ``"cuda:1"``...

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on the device; shared by every task of this process.
    """
    dev = worker_device(device)
    key = (_source_key(source), dev)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = _load(source, dev)
        return _MODELS[key]


def _source_key(source: str) -> str:
    from ..registry import UNTRAINED

    if source == UNTRAINED:
        return UNTRAINED
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model file {source} does not exist")
    if path.is_dir():  # an smp folder: hash its files' names, sizes and times
        parts = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())
        return "dir:" + hashlib.sha256(repr(parts).encode()).hexdigest()
    stat = path.stat()
    cache = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if cache not in _HASHES:
        _HASHES[cache] = file_sha256(path)
    return _HASHES[cache]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """The sha256 hex digest of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _load(source: str, device: str) -> Any:
    from ..registry import UNTRAINED

    if source == UNTRAINED:
        import torch

        from ..model import build_model

        torch.manual_seed(0)
        model = build_model(in_channels=3)
        model.spec.name = "untrained Res101_UNet"
        return model.to(device).eval()
    from ..checkpoint import load_model

    return load_model(source, device=device)
