"""Entry points the distributed tests start in each rank (importable by spawned ranks)."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import numpy as np


def disks(size: int = 96, seed: int = 0, n: int = 4):
    """Bright disks (label 1) on a noisy background, uint8 (as tests/training uses)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint8)
    for _ in range(n):
        cy, cx = rng.integers(12, size - 12, 2)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(6, 11) ** 2] = 1
    image = rng.normal(50, 15, (size, size)) + 80 * labels
    return image.clip(0, 255).astype(np.uint8), labels


def digest(model) -> str:
    """A hash of every parameter and buffer (equal digests: equal weights, bit for bit)."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_rank(pairs, kwargs: dict) -> dict:
    """Train in this rank; return its rank, weights' digest and the training record."""
    import torch

    import napari_res101unet as nr

    torch.set_num_threads(1)
    model = nr.train(pairs, **kwargs)
    return {
        "rank": int(os.environ["RANK"]),
        "world": int(os.environ["WORLD_SIZE"]),
        "digest": digest(model),
        "history": model.spec.training["history"],
        "step": model.spec.training["step"],
        "stopped": model.spec.training["stopped"],
        "recipe": model.spec.training["recipe"],
    }


class StopAfter:
    """A ``should_stop`` that says stop from its ``n``-th call on (picklable)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def die_after(path: str, pairs, kwargs: dict) -> dict:
    """Rank 1 kills itself (SIGKILL) once ``path`` exists (rank 0 wrote a checkpoint)."""
    if os.environ["RANK"] == "1":

        def watch() -> None:
            while not os.path.exists(path):
                time.sleep(0.05)
            time.sleep(0.3)
            os.kill(os.getpid(), 9)

        threading.Thread(target=watch, daemon=True).start()
    return train_rank(pairs, kwargs)
