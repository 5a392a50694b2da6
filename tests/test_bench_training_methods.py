"""``benchmarks/bench_training.py``: what each method of a cell trains with (the peak
learning rate a run asks for reaches ``train()`` and is recorded in its row)."""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_training


@pytest.mark.parametrize(("given", "used"), [([], 1e-3), (["--learning-rate", "3e-4"], 3e-4)])
def test_ours_trains_at_the_learning_rate_asked(given, used):
    args = bench_training.parse_args(
        ["--patch-size", "64", "--batch-size", "2", "--epochs", "1", *given]
    )
    pairs = bench_training.synthetic_pairs(4, size=64)
    model, _, steps, extra = bench_training.run_method(
        "ours", pairs, 0.02, args, torch.device("cpu")
    )
    assert steps >= 1
    assert extra["learning_rate"] == pytest.approx(used)
    assert model.spec.training["settings"]["learning_rate"] == pytest.approx(used)
