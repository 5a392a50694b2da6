"""Distributed training with real processes (Gloo on the CPU) started by torch's launcher."""

from __future__ import annotations

import time

import pytest
import torch
from ddp_helpers import StopAfter, die_after, digest, disks, train_rank

import napari_res101unet as nr
from napari_res101unet.checkpoint import load_model
from napari_res101unet.training.local_ranks import RankFailed, check_nproc, free_port, launch
from napari_res101unet.training.recipe import PROBE_STEPS

TINY = {"patch_size": 64, "batch_size": 2, "steps_per_epoch": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def pairs():
    return [disks(seed=i) for i in range(3)]


@pytest.mark.slow
def test_two_ranks_train_identical_weights_one_checkpoint_and_resume_in_one(pairs, tmp_path):
    out = tmp_path / "ddp"
    kw = {**TINY, "epochs": 2, "learning_rate": 1e-3, "output": str(out)}
    results = launch(train_rank, (pairs, kw), nproc=2)
    assert sorted(results) == [0, 1]
    assert results[0]["world"] == results[1]["world"] == 2
    assert results[0]["digest"] == results[1]["digest"]  # parameters and BN statistics
    history = results[0]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0]["train_loss"] == results[1]["history"][0]["train_loss"]  # all-reduced
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert files == ["ddp.last.safetensors", "ddp.safetensors"]
    saved = load_model(out.with_suffix(".safetensors"))
    assert saved.spec.training["settings"]["world_size"] == 2
    # the 2-rank run resumes in one plain process (another world size)
    resumed = nr.train(pairs, **{**kw, "epochs": 3}, resume=tmp_path / "ddp.last.safetensors")
    record = resumed.spec.training
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert record["settings"]["world_size"] == 1


@pytest.mark.slow
def test_a_time_budget_refits_the_recipe_alike_on_every_rank(pairs):
    """The budget-fitted recipe (training/recipe.py) refits its plan from rank 0's clock:
    each rank's own clock would give each rank its own learning rates."""
    kw = {**TINY, "epochs": 1000, "learning_rate": 1e-3, "max_minutes": 0.2}
    results = launch(train_rank, (pairs, kw), nproc=2)
    assert results[0]["stopped"] == results[1]["stopped"] == "time_budget"
    assert results[0]["step"] == results[1]["step"] > 0
    assert results[0]["digest"] == results[1]["digest"]
    assert [h["lr"] for h in results[0]["history"]] == [h["lr"] for h in results[1]["history"]]
    recipe = results[0]["recipe"]
    assert results[1]["recipe"] == recipe  # the same refits at the same steps
    if results[0]["step"] > PROBE_STEPS + 1:  # a starved machine may not get that far
        assert recipe["refit_count"] >= 1 and recipe["refits"]


@pytest.mark.slow
def test_world_of_one_under_ddp_equals_the_plain_run_bit_for_bit(pairs, monkeypatch):
    kw = {**TINY, "epochs": 2, "learning_rate": 1e-3, "seed": 3}
    plain = nr.train(pairs, **kw)
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for key, value in {**env, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(key, value)
    ddp = nr.train(pairs, **kw)
    assert not torch.distributed.is_initialized()  # the run left no process group behind
    losses = [h["train_loss"] for h in ddp.spec.training["history"]]
    assert losses == [h["train_loss"] for h in plain.spec.training["history"]]
    assert digest(ddp) == digest(plain)


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_with_a_clear_error_and_the_checkpoint_intact(
    pairs, tmp_path, monkeypatch
):
    monkeypatch.setenv("NAPARI_RES101UNET_DIST_TIMEOUT", "30")
    out = tmp_path / "killed"
    last = tmp_path / "killed.last.safetensors"
    kw = {**TINY, "epochs": 50, "learning_rate": 1e-3, "output": str(out)}
    started = time.monotonic()
    with pytest.raises(RankFailed, match=r"rank 1 died \(SIGKILL\)"):
        launch(die_after, (str(last), pairs, kw), nproc=2)
    assert time.monotonic() - started < 120
    model = load_model(last)  # the last checkpoint rank 0 wrote is whole and loads
    assert model.spec.training["epochs_done"] >= 1


def test_more_processes_than_gpus_or_a_bad_count_is_refused_before_starting():
    with pytest.raises(ValueError, match="nproc must be an int >= 1"):
        check_nproc(0, "cpu")
    check_nproc(5, "cpu")  # Gloo on the CPU: any number of processes
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=f"needs {count + 1} CUDA devices"):
        check_nproc(count + 1, "cuda")


def test_a_rendezvous_that_cannot_be_reached_fails_within_seconds(pairs, monkeypatch):
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1"}
    for key, value in {**env, "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NAPARI_RES101UNET_DIST_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="rank 1 of 2 could not join the run at 127.0.0.1"):
        nr.train(pairs, **TINY, epochs=1)
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_a_cancel_on_rank_0_stops_every_rank_at_the_same_step(pairs):
    kw = {**TINY, "epochs": 3, "steps_per_epoch": 4, "should_stop": StopAfter(6)}
    results = launch(train_rank, (pairs, kw), nproc=2)
    assert results[0]["stopped"] == results[1]["stopped"] == "cancelled"
    assert results[0]["step"] == results[1]["step"] == 5  # rank 1 left no step undone
    assert results[0]["digest"] == results[1]["digest"]
