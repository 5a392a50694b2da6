"""The fine-tuning engine: real (tiny) training runs, resume, cancel, input checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import napari_res101unet as nr
from napari_res101unet.checkpoint import load_model, read_header
from napari_res101unet.training import trainer as _trainer
from napari_res101unet.training.state import CheckpointPaths

TINY = {"patch_size": 64, "batch_size": 2, "steps_per_epoch": 2, "device": "cpu"}


def disks(size: int = 96, seed: int = 0, n: int = 4, classes: int = 2):
    """Bright disks (labels 1..classes-1) on a noisy dark background, uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.integers(12, size - 12, 2)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(6, 11) ** 2] = 1 + i % (classes - 1)
    image = rng.normal(50, 15, (size, size)) + 80 * labels
    return image.clip(0, 255).astype(np.uint8), labels


class Recorder:
    def __init__(self, stop_when=None):
        self.events, self.stop_when = [], stop_when

    def __call__(self, event):
        self.events.append(event)

    def kinds(self, kind):
        return [e for e in self.events if e.kind == kind]

    def should_stop(self):
        return self.stop_when is not None and self.stop_when(self.events)


def test_loss_decreases_on_synthetic_disks_and_events_report_progress(tmp_path):
    rec = Recorder()
    pairs = [disks(seed=i) for i in range(3)]
    model = nr.train(
        pairs,
        **{**TINY, "steps_per_epoch": 3},
        epochs=3,
        learning_rate=1e-3,
        output=tmp_path / "disks",
        callback=rec,
    )
    history = model.spec.training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    steps = rec.kinds("step")
    assert [e.step for e in steps] == list(range(1, 10))
    assert {e.steps_total for e in steps} == {9}
    epochs = rec.kinds("epoch")
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert all(0 <= e.val_iou <= 1 and 0 <= e.val_dice <= 1 and e.lr > 0 for e in epochs)
    done = rec.kinds("done")
    assert len(done) == 1 and done[0].reason == "completed"
    settings = model.spec.training["settings"]
    assert settings["validation"].startswith("by image")
    assert settings["freeze_encoder_epochs"] == 0  # random encoder: never frozen, full lr
    assert settings["encoder_learning_rate_factor"] == 1.0
    best = load_model(tmp_path / "disks.safetensors")
    assert best.spec.training["best_epoch"] == model.spec.training["best_epoch"]
    assert best.spec.tile_size == 64
    # the smallest plausible object, learned from the training objects, is in the checkpoint
    from napari_res101unet.training.instance_targets import smallest_object_size

    learned = smallest_object_size([labels for _, labels in pairs])
    assert best.spec.min_object_size == learned and 0 < learned < 100
    assert read_header(tmp_path / "disks.safetensors")["spec"]["min_object_size"] == learned
    assert not model.training


def test_progress_under_a_time_budget_counts_the_planned_steps(tmp_path):
    """With max_minutes the bar's total is the recipe's plan (refitted to the time), not
    epochs x steps per epoch (1000 epochs here: a bar that never fills)."""
    rec = Recorder()
    model = nr.train([disks(seed=i) for i in range(3)], **{**TINY, "steps_per_epoch": 3},
                     epochs=1000, max_minutes=0.4, output=tmp_path / "timed",
                     callback=rec)  # fmt: skip
    steps = rec.kinds("step")
    planned = model.spec.training["recipe"]["planned_steps"]
    assert steps and all(e.step <= e.steps_total for e in steps)
    assert steps[-1].steps_total == max(planned, steps[-1].step) < 1000 * 3


@pytest.mark.data
def test_loss_decreases_on_real_nuclei(data_dir):
    tifffile = pytest.importorskip("tifffile")
    folder = data_dir / "stardist_nuclei2d"
    if not (folder / "img2d.tif").is_file():
        pytest.skip("stardist_nuclei2d is absent")
    image = tifffile.imread(folder / "img2d.tif")[:256, :256]
    labels = (tifffile.imread(folder / "mask2d.tif")[:256, :256] > 0).astype(np.uint8)
    model = nr.train(
        [(image, labels)], **{**TINY, "steps_per_epoch": 3}, epochs=3, learning_rate=1e-3
    )
    history = model.spec.training["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert model.spec.training["settings"]["validation"].startswith("band")


def test_same_seed_gives_same_losses_and_another_seed_does_not():
    pairs = [disks(seed=i) for i in range(2)]

    def losses(seed):
        rec = Recorder()
        nr.train(pairs, **TINY, epochs=1, val_fraction=0.0, seed=seed, callback=rec)
        return [e.loss for e in rec.kinds("step")]

    first = losses(3)
    assert losses(3) == first
    assert losses(4) != first


@pytest.mark.slow
def test_cancel_then_resume_continues_the_epoch_count_exactly(tmp_path):
    pairs = [disks(seed=i) for i in range(3)]
    straight = Recorder()
    nr.train(pairs, **TINY, epochs=2, callback=straight)

    stopper = Recorder(stop_when=lambda events: any(e.kind == "epoch" for e in events))
    out = tmp_path / "run"
    first = nr.train(
        pairs, **TINY, epochs=2, output=out, callback=stopper, should_stop=stopper.should_stop
    )
    assert stopper.kinds("done")[0].reason == "cancelled"
    assert first.spec.training["epochs_done"] == 1
    paths = CheckpointPaths.from_output(out)
    assert paths.last.is_file() and paths.best.is_file()
    assert not paths.optimizer.exists()  # the optimizer state is inside the last checkpoint

    resumed = Recorder()
    model = nr.train(pairs, **TINY, epochs=2, resume=paths.last, callback=resumed)
    assert [e.epoch for e in resumed.kinds("epoch")] == [2]
    assert [e.step for e in resumed.kinds("step")] == [3, 4]
    record = model.spec.training
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    assert record["epochs_done"] == 2 and record["step"] == 4
    assert [e.loss for e in resumed.kinds("step")] == pytest.approx(
        [e.loss for e in straight.kinds("step")][2:], rel=1e-5
    )
    assert read_header(paths.best)["spec"]["training"]["stopped"] == "completed"
    with pytest.raises(ValueError, match="already trained 2 epochs"):
        nr.train(pairs, **TINY, epochs=2, resume=paths.last)


def _head(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("segmentation_head.0.weight")


def test_early_stopping_returns_the_best_epoch(monkeypatch, tmp_path):
    ious = iter([0.5, 0.4, 0.3, 0.2])

    def fake_scores(*args, **kwargs):
        value = next(ious)
        return {"iou": value, "dice": value, "accuracy": value}

    monkeypatch.setattr(_trainer, "score_prepared", fake_scores)
    rec = Recorder()
    model = nr.train(
        [disks(seed=i) for i in range(2)],
        **{**TINY, "steps_per_epoch": 1},
        epochs=4,
        early_stopping=2,
        output=tmp_path / "es",
        callback=rec,
    )
    assert rec.kinds("done")[0].reason == "early_stopping"
    assert [e.epoch for e in rec.kinds("epoch")] == [1, 2, 3]
    assert model.spec.training["best_epoch"] == 1
    assert model.spec.training["best_val_iou"] == 0.5
    paths = CheckpointPaths.from_output(tmp_path / "es")
    head = model.segmentation_head[0].weight.detach()
    assert torch.equal(head, _head(paths.best))
    assert not torch.equal(head, _head(paths.last))
    assert read_header(paths.last)["spec"]["training"]["epochs_done"] == 3


def test_time_budget_multiclass_stack_and_sparse_labels():
    stack, labels = zip(*(disks(64, seed=i, classes=3) for i in range(4)))
    labels = np.stack(labels).astype(np.int16)
    sparse = labels.copy()
    sparse[:, :, 40:] = -1  # unlabelled
    rec = Recorder()
    model = nr.train(
        [(np.stack(stack), sparse)],
        **TINY,
        epochs=5,
        ignore_index=-1,
        max_minutes=1e-4,
        callback=rec,
    )
    assert model.spec.classes == 3
    assert rec.kinds("done")[0].reason == "time_budget"
    history = model.spec.training["history"]
    assert len(history) == 1 and history[0]["steps"] == 1
    assert model.spec.training["settings"]["validation"].startswith("by slice")


def test_start_from_a_model_with_another_head_leaves_it_unchanged():
    start = nr.build_model(classes=2)
    before = start.segmentation_head[0].weight.clone()
    image, labels = disks(64, classes=3)
    model = nr.train([(image, labels)], model=start, classes=3, **TINY, epochs=1, val_fraction=0.0)
    assert model.spec.classes == 3 and model.segmentation_head[0].weight.shape[0] == 3
    assert torch.equal(start.segmentation_head[0].weight, before)
    assert model.spec.training["settings"]["freeze_encoder_epochs"] == 2
    assert model.spec.training["settings"]["encoder_learning_rate_factor"] == 0.1
    assert model.spec.training["history"][0]["frozen_encoder"] is True
    frozen = start.encoder.state_dict()  # weights and batch-norm statistics untouched
    assert all(torch.equal(v, frozen[k]) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(
        model.decoder.blocks[0].conv1[0].weight, start.decoder.blocks[0].conv1[0].weight
    )


def _centre_square():
    labels = np.zeros((96, 96), np.uint8)
    labels[40:56, 40:56] = 1
    return labels * 100, labels


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"pairs": [disks(), (np.zeros((64, 64)), np.zeros((32, 32), int))]}, ValueError,
         r"pairs\[1\]: image shape \(64, 64\) does not match labels shape \(32, 32\)"),
        ({"pairs": [(disks()[0], np.zeros((96, 96), int))]}, ValueError, "no foreground"),
        ({"classes": 2, "pairs": [(disks()[0], disks()[1] * 3)]}, ValueError,
         r"pairs\[0\] has label 3, beyond classes=2"),
        ({"pairs": [(np.full((8, 8), np.nan), np.ones((8, 8), int))]}, ValueError,
         r"pairs\[0\]: image contains 64 NaN"),
        ({"pairs": [(disks()[0], disks()[1].astype(float))]}, TypeError,
         "labels must be an integer array"),
        ({"pairs": [(disks()[0], disks()[1] * 255)]}, ValueError, "0/255 mask"),
        ({"pairs": disks()}, TypeError, "must be an \\(image, labels\\) pair"),
        ({"patch_size": 100}, ValueError, "multiple of 32.*use 96 or 128"),
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1"),
        ({"ignore_index": 0}, ValueError, "ignore_index=0 is a class label"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction must be"),
        ({"pairs": [_centre_square()]}, ValueError, "pass val_pairs or val_fraction=0"),
        ({"callback": 3}, TypeError, "callback must be a callable"),
        ({"resume": "run.safetensors"}, ValueError, "resume must name a last checkpoint"),
        ({"model": "m.safetensors", "encoder_weights": "imagenet"}, ValueError,
         "encoder_weights applies to a new model only"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_training(change, error, match):
    kwargs = {"pairs": [disks(seed=i) for i in range(2)], **TINY, **change}
    with pytest.raises(error, match=match):
        nr.train(kwargs.pop("pairs"), **kwargs)


def test_schedule_warms_up_then_decays_by_steps_or_time():
    from napari_res101unet.training.optim import MIN_LR_FACTOR, lr_factor

    factors = [lr_factor(step, 100, 10) for step in range(100)]
    assert factors[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert lr_factor(100, 100, 10) == pytest.approx(MIN_LR_FACTOR)
    assert lr_factor(20, 100, 10, elapsed=1.0) == pytest.approx(MIN_LR_FACTOR)
    assert lr_factor(20, 100, 10, elapsed=0.5) < lr_factor(20, 100, 10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_in_mixed_precision(tmp_path):
    rec = Recorder()
    model = nr.train(
        [disks(seed=i) for i in range(2)],
        **{**TINY, "device": "cuda", "steps_per_epoch": 3},
        epochs=2,
        output=tmp_path / "gpu",
        callback=rec,
    )
    settings = model.spec.training["settings"]
    assert "mixed" in settings["precision"] and settings["device"].startswith("cuda")
    assert all(np.isfinite(e.loss) for e in rec.kinds("step"))
    assert next(model.parameters()).is_cuda
    assert load_model(tmp_path / "gpu.last.safetensors").spec.training["epochs_done"] == 2


def test_learning_rate_is_chosen_by_where_training_starts():
    pair = [disks(seed=5)]
    fresh = nr.train(pair, **{**TINY, "steps_per_epoch": 1}, epochs=1, val_fraction=0)
    assert fresh.spec.training["settings"]["learning_rate"] == 1e-3  # random weights
    tuned = nr.train(pair, **{**TINY, "steps_per_epoch": 1}, epochs=1, val_fraction=0, model=fresh)
    assert tuned.spec.training["settings"]["learning_rate"] == 3e-4  # trained weights
    given = nr.train(
        pair, **{**TINY, "steps_per_epoch": 1}, epochs=1, val_fraction=0, learning_rate=5e-4
    )
    assert given.spec.training["settings"]["learning_rate"] == 5e-4


def test_sparse_strokes_train_through_the_api_with_pair_names():
    image, labels = disks(64, seed=3)
    strokes = np.zeros_like(labels)
    strokes[:6] = 1  # background stroke
    strokes[labels == 1] = 2  # objects
    model = nr.train([(image, strokes)], **TINY, epochs=1, val_fraction=0, sparse=True)
    assert model.spec.classes == 2  # background + one class, from strokes 1 and 2
    assert model.spec.training["settings"]["sparse"] is True
    with pytest.raises(ValueError, match=r"'scan \+ strokes' holds no sparse annotation"):
        nr.train(
            [(image, np.zeros_like(strokes))], **TINY, sparse=True, pair_names=["scan + strokes"]
        )


def test_the_chosen_loss_trains_and_the_checkpoint_records_it(tmp_path):
    from napari_res101unet.checkpoint import read_header

    image, labels = disks()
    nr.train([(image, labels)], **TINY, epochs=1, loss="tversky", output=tmp_path / "t")
    record = read_header(tmp_path / "t.safetensors")["spec"]["training"]["settings"]
    assert record["loss"].startswith("tversky: Tversky index")
