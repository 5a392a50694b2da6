"""Data-parallel training with ``torch.distributed`` (DDP), as ``torchrun`` starts it.

A run is distributed when the environment names a world (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``: what ``torchrun``, ``srun torchrun`` and
:func:`napari_res101unet.training.local_ranks.launch` set). :func:`session` then joins the
process group (NCCL on CUDA, Gloo on the CPU) with a timeout, so a rank that dies or a
rendezvous that cannot be reached ends the others with an error instead of a hang.

Rules every rank follows (see :class:`~napari_res101unet.training.trainer.Trainer`):
rank 0 decides when to stop (cancel, time budget) and broadcasts it every step together
with the elapsed share of the time budget (so every rank uses the same learning rate);
validation slices are sharded and the confusion matrices summed; only rank 0 writes
checkpoints and reports events. Batch norms are synchronised (SyncBatchNorm) on CUDA when
the world has more than one rank; on the CPU (Gloo) torch has no SyncBatchNorm, so each
rank normalises with its own batch statistics and DDP keeps the running statistics equal.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

TIMEOUT_ENV = "NAPARI_RES101UNET_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
"""Seconds a collective may wait for a silent rank (``$NAPARI_RES101UNET_DIST_TIMEOUT``)."""
STOP_CODES = (None, "cancelled", "time_budget", "early_stopping")


@dataclass(frozen=True)
class World:
    """This process's place in the run (``rank`` 0 of ``size`` 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    active: bool = False  # a process group is in use (even of size 1)

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints and reports events."""
        return self.rank == 0


SINGLE = World()


def env_world() -> World | None:
    """The world torchrun describes in the environment, or None when there is none."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ValueError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them), got "
            f"{os.environ.get('WORLD_SIZE')!r}, {os.environ.get('RANK')!r}, "
            f"{os.environ.get('LOCAL_RANK')!r}"
        ) from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={size}")
    return World(rank, size, local, True)


def rank_device(device: torch.device, world: World) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` on CUDA (an explicit index is refused
    when several ranks run), the CPU as it is (Gloo: any number of ranks)."""
    if not world.active or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise ValueError(
            f"local rank {world.local_rank} needs cuda:{world.local_rank}, but this machine "
            f"has {count} CUDA device(s); start at most {count} processes per node "
            "(torchrun --nproc_per_node, --nproc), or train on the CPU with device='cpu'"
        )
    if device.index not in (None, world.local_rank) and world.size > 1:
        raise ValueError(
            f"device {device} names one GPU, but each of the {world.size} ranks uses its own "
            "(cuda:LOCAL_RANK); pass device='cuda' or 'auto'"
        )
    torch.cuda.set_device(world.local_rank)
    return torch.device("cuda", world.local_rank)


def timeout_seconds() -> float:
    """The collective timeout (``$NAPARI_RES101UNET_DIST_TIMEOUT`` or 300 s)."""
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0, got {value}")
    return value


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """Join the world the environment describes (if any) for the length of a run.

    Yields ``(world, device)``; a process group made here is destroyed on exit. One
    already initialised (by the caller) is used and left alone.
    """
    import torch.distributed as dist

    world = env_world()
    if world is None:
        yield SINGLE, device
        return
    device = rank_device(device, world)
    made = not dist.is_initialized()
    if made:
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=timeout_seconds())
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            addr = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            raise RuntimeError(
                f"rank {world.rank} of {world.size} could not join the run at {addr} "
                f"(backend {backend}): {str(exc).splitlines()[0]}"
            ) from None
    try:
        yield World(dist.get_rank(), dist.get_world_size(), world.local_rank, True), device
    finally:
        if made and dist.is_initialized():
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device, sync_bn: bool):
    """``model`` for the training steps: itself alone, else DDP over it (SyncBatchNorm
    first on CUDA when asked and the world has several ranks). The parameters stay
    ``model``'s, so checkpoints never see DDP's ``module.`` names."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn and world.size > 1 and device.type == "cuda":
        spec = getattr(model, "spec", None)
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if spec is not None:
            model.spec = spec
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def revert_sync_batchnorm(module: torch.nn.Module) -> None:
    """Turn SyncBatchNorm layers back into BatchNorm2d in place (same weights, buffers)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.SyncBatchNorm):
            plain = torch.nn.BatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            ).to(child.weight.device if child.affine else "cpu")
            plain.load_state_dict(child.state_dict())
            plain.train(child.training)
            setattr(module, name, plain)
        else:
            revert_sync_batchnorm(child)


def agree(world: World, device: torch.device, stop: str | None, elapsed: float):
    """Rank 0's ``(stop reason, elapsed share of the budget)``, the same on every rank."""
    if not world.active:
        return stop, elapsed
    import torch.distributed as dist

    flag = torch.tensor([float(STOP_CODES.index(stop)), elapsed], dtype=torch.float64)
    flag = flag.to(_comm_device(device))
    dist.broadcast(flag, src=0)
    return STOP_CODES[int(flag[0].item())], float(flag[1].item())


def sum_array(world: World, device: torch.device, values: np.ndarray) -> np.ndarray:
    """``values`` summed over the ranks (float64 or int64 array of the same shape)."""
    if not world.active:
        return values
    import torch.distributed as dist

    tensor = torch.from_numpy(np.ascontiguousarray(values)).to(_comm_device(device))
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


def average_buffers(model: torch.nn.Module, world: World) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over the ranks,
    so every rank validates and saves the same model."""
    if not world.active or world.size == 1:
        return
    import torch.distributed as dist

    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(world.size)


def shard(items: list, world: World) -> list:
    """This rank's share of the validation slices (every ``size``-th slice overall)."""
    if not world.active or world.size == 1:
        return items
    from dataclasses import replace

    out, k = [], 0
    for item in items:
        mine = [s for j, s in enumerate(item.slices) if (k + j) % world.size == world.rank]
        k += len(item.slices)
        if mine:
            out.append(replace(item, slices=mine))
    return out


def _comm_device(device: torch.device) -> torch.device:
    return device if device.type == "cuda" else torch.device("cpu")
