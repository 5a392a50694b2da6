"""Patches prepared in ``torch.utils.data.DataLoader`` worker processes (``workers`` > 0).

Each worker draws whole batches from its own random stream (seed, rank, worker), so the
device is fed while patches are read (from disk: :mod:`.lazy_pairs`) and augmented. The
stream differs from ``workers=0`` (which alone reproduces a run batch for batch). The
recipe's augmentation strength reaches the workers through a shared value that the
training loop updates every step (a worker's prefetched batches lag by a few steps).
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info


class PatchStream(IterableDataset):
    """An endless stream of ``(images (B, C, P, P), labels (B, P, P))`` batches."""

    def __init__(self, sampler: Any, seed: int, rank: int, start: int, strength=None) -> None:
        super().__init__()
        self.sampler, self.seed, self.rank, self.start = sampler, seed, rank, start
        self.strength = strength  # a shared multiprocessing.Value('d'), or None: 1.0

    def __iter__(self):
        info = get_worker_info()
        worker = 0 if info is None else info.id
        rng = np.random.default_rng([self.seed, self.start, self.rank, worker, 1])
        while True:
            strength = 1.0 if self.strength is None else float(self.strength.value)
            yield self.sampler.batch(rng, strength)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # the workers' numpy/torch must not compete with the steps


def make_loader(
    sampler: Any, seed: int, rank: int, start: int, workers: int, pin: bool, strength=None
):
    """The DataLoader over :class:`PatchStream` with ``workers`` processes."""
    return DataLoader(
        PatchStream(sampler, seed, rank, start, strength),
        batch_size=None,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=4,
        persistent_workers=True,
        worker_init_fn=_one_thread,
    )


def next_batch(
    trainer: Any, rng: np.random.Generator, strength: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next batch of ``trainer``'s loader (made at the first call); ``strength`` is the
    augmentation strength the workers use from now on."""
    if trainer._loader is None:
        trainer._strength = multiprocessing.Value("d", strength, lock=False)
        loader = make_loader(
            trainer.sampler,
            trainer.s.seed,
            trainer.world.rank,
            trainer.step,
            trainer.workers,
            trainer.device.type == "cuda",
            trainer._strength,
        )
        from ..inference.cluster import safe_child_paths

        with safe_child_paths():  # spawned workers (macOS, Windows): no working folder
            trainer._loader = iter(loader)
    trainer._strength.value = strength
    return next(trainer._loader)
