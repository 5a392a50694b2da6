"""Start the ranks of a distributed run on this machine (``train --nproc N``).

Uses torch's own launcher, ``torch.distributed.elastic`` (what ``torchrun`` runs): a
rendezvous on a free local port, one process per rank with ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK`` set, and failure propagation (a rank that fails or dies stops the others
and the launch raises :class:`RankFailed` naming it). The ranks start without the working
folder on ``sys.path`` (:func:`~napari_res101unet.inference.cluster.safe_child_paths`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any


class RankFailed(RuntimeError):
    """A rank of a distributed run failed; the message names it and why."""


def check_nproc(nproc: int, device: str) -> None:
    """ValueError for a process count the devices cannot hold (CUDA: one GPU per rank;
    the CPU (Gloo) takes any count)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be an int >= 1, got {nproc!r}")
    if device in ("cpu", "mps"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.startswith("cuda") and ":" in device:
        raise ValueError(f"--nproc {nproc} uses one GPU per process; pass --device cuda")
    if device.startswith("cuda") and nproc > count:
        raise ValueError(
            f"--nproc {nproc} needs {nproc} CUDA devices, this machine has {count}; use at "
            f"most {count}, or --device cpu (Gloo: any number of processes)"
        )
    if device == "auto" and count and nproc > count:
        raise ValueError(
            f"--nproc {nproc} is more than the {count} CUDA devices here; use at most "
            f"{count}, or --device cpu"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    fn: Callable[..., Any], args: tuple = (), nproc: int = 2, threads: int = 1
) -> dict[int, Any]:
    """Run ``fn(*args)`` in ``nproc`` local ranks; returns ``{rank: fn's result}``.

    ``threads``: ``OMP_NUM_THREADS`` of each rank. Raises :class:`RankFailed` when a rank
    fails (its error or exit signal in the message).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"res101unet-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{free_port()}",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    from ..inference.cluster import safe_child_paths

    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the ranks inherit it
    try:
        with safe_child_paths():  # no rank imports from the working folder
            return dict(elastic_launch(config, entrypoint=_rank)(fn, *args))
    except ChildFailedError as exc:
        raise RankFailed(_summary(exc)) from None
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def _rank(fn: Callable[..., Any], *args: Any) -> Any:
    """What each rank runs: ``fn(*args)``, its error recorded for the launcher's report."""
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn)(*args)


def _summary(exc: Any) -> str:
    lines = []
    for rank, failure in sorted(exc.failures.items()):
        if failure.signal_name() not in ("", "<N/A>", None) and failure.exitcode < 0:
            why = f"died ({failure.signal_name()})"
        else:
            message = failure.message
            if isinstance(message, dict):  # the error file's record of the exception
                inner = message.get("message", message)
                message = inner.get("message", inner) if isinstance(inner, dict) else inner
            why = f"failed (exit code {failure.exitcode}): {str(message).strip()[-400:]}"
        lines.append(f"rank {rank} {why}")
    return "distributed training stopped: " + "; ".join(lines)
