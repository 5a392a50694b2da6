"""dask.distributed plumbing: which cluster to run on, and which GPU a worker uses.

:func:`open_client` picks the cluster (a scheduler address, a ``LocalCluster`` it starts
and stops, or the current client) from :class:`~napari_res101unet.config.ClusterSettings`;
:func:`worker_device` gives each worker its own GPU when there are several. Workers open
their model with :func:`~napari_res101unet.registry.open_model` (once per process).
:func:`safe_child_paths` keeps the working folder off the ``sys.path`` of every process
started meanwhile (dask nannies, workers and multiprocessing's helpers here; the ranks of
``train --nproc`` in :mod:`~napari_res101unet.training.local_ranks`).
dask and torch are imported when used, not on import.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zlib
from collections.abc import Iterator
from typing import Any

from ..config import ClusterSettings, settings_with

__all__ = ["SchedulerUnreachable", "open_client", "safe_child_paths", "worker_device"]


class SchedulerUnreachable(ConnectionError):
    """A dask scheduler address that did not answer in time."""


@contextlib.contextmanager
def open_client(
    cluster: ClusterSettings | None = None, *, threads_per_worker: int = 1, **fields: Any
) -> Iterator[Any]:
    """The ``distributed.Client`` to run on, closed (with any cluster it started) on exit.

    Parameters
    ----------
    cluster : ClusterSettings, optional
        ``workers``: start a ``LocalCluster`` of this many worker processes (stopped on
        exit); ``scheduler``: connect to an existing cluster, e.g. ``"tcp://10.0.0.5:8786"``,
        waiting ``scheduler_timeout`` seconds for it to answer.
    threads_per_worker : int
        Threads of each local worker (1: one model call at a time per process).
    **fields
        :class:`~napari_res101unet.config.ClusterSettings` fields, overriding ``cluster``.

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
        ``scheduler`` did not answer within ``scheduler_timeout`` seconds.
    """
    c = settings_with(ClusterSettings, cluster, fields)
    from distributed import Client

    if c.scheduler is not None:
        client = _connect(c.scheduler, c.scheduler_timeout)
        try:
            yield client
        finally:
            client.close()
    elif c.workers is not None:
        from distributed import LocalCluster

        with (
            safe_child_paths(),
            LocalCluster(
                n_workers=c.workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=":0",  # any free port, never a clash
            ) as local,
            Client(local) as client,
        ):
            yield client
    else:
        yield current_client()


@contextlib.contextmanager
def safe_child_paths() -> Iterator[None]:
    """Start child processes without the working folder on their ``sys.path``.

    multiprocessing's spawn starts a child as ``python -c "from multiprocessing.spawn
    import ..."``, and ``-c`` puts the working folder first on ``sys.path``: a
    ``multiprocessing.py`` or ``distributed.py`` there would run in every dask nanny,
    worker and torch rank. Meanwhile ``PYTHONSAFEPATH=1`` is in the environment the
    children inherit (Python 3.11+: no working folder, no script folder), and ``''`` (which
    spawn hands a child as the working folder) is off this process's ``sys.path``. Both are
    restored on exit; keep the block open as long as children may be (re)started.
    """
    before = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    removed = [i for i, p in enumerate(sys.path) if p == ""]
    sys.path[:] = [p for p in sys.path if p != ""]
    try:
        yield
    finally:
        for i in removed:
            sys.path.insert(i, "")
        if before is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = before


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
