"""Training never replaces a model unless asked, saves nothing without a completed epoch,
and commits the optimizer state with the last checkpoint in one file (issue 14, items 1
and 2)."""

from __future__ import annotations

import numpy as np
import pytest

import napari_res101unet as nr
from napari_res101unet.checkpoint import load_model, read_header, save_model
from napari_res101unet.cli import main
from napari_res101unet.training.optim import make_optimizer, save_optimizer
from napari_res101unet.training.state import CheckpointPaths

TINY = {"patch_size": 64, "batch_size": 2, "steps_per_epoch": 2, "device": "cpu"}


def disks(size: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint8)
    for _ in range(3):
        cy, cx = rng.integers(15, size - 15, 2)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] = 1
    image = (rng.normal(50, 15, labels.shape) + 80 * labels).clip(0, 255)
    return image.astype(np.uint8), labels


class Events:
    def __init__(self, stop_after_steps: int | None = None, after_epoch: bool = False):
        self.events, self.limit, self.after_epoch = [], stop_after_steps, after_epoch

    def __call__(self, event):
        self.events.append(event)

    def kinds(self, kind):
        return [e for e in self.events if e.kind == kind]

    def should_stop(self):
        if self.after_epoch:
            return bool(self.kinds("epoch"))
        return self.limit is not None and len(self.kinds("step")) >= self.limit


def test_an_existing_model_is_never_replaced_unless_asked(tmp_path, small_model):
    target = save_model(small_model, tmp_path / "liver.safetensors")
    before = target.read_bytes()
    with pytest.raises(ValueError, match=r"replace existing model files.*liver\.safetensors"):
        nr.train([disks()], **TINY, epochs=1, output=tmp_path / "liver")
    assert target.read_bytes() == before
    # asked to overwrite, but stopped at once: no epoch, so nothing is written either
    rec = Events(stop_after_steps=0)
    with pytest.warns(UserWarning, match="before an epoch was completed: nothing was saved"):
        nr.train(
            [disks()],
            **TINY,
            epochs=1,
            output=tmp_path / "liver",
            overwrite=True,
            callback=rec,
            should_stop=rec.should_stop,
        )
    assert target.read_bytes() == before
    done = rec.kinds("done")[0]
    assert done.reason == "cancelled" and done.path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liver.safetensors"]


def test_the_cli_refuses_an_existing_model_before_reading_any_data(tmp_path, small_model, capsys):
    target = save_model(small_model, tmp_path / "m.safetensors")
    (tmp_path / "m.last.safetensors").write_bytes(b"an earlier run")
    before = target.read_bytes()
    argv = ["train", "--images", str(tmp_path / "no_images"), "--masks", str(tmp_path / "no")]
    assert main([*argv, "-o", str(tmp_path / "m"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "would replace existing model files" in err and "m.last.safetensors" in err
    assert "--overwrite" in err
    assert target.read_bytes() == before


def test_a_run_stopped_inside_its_first_epoch_saves_nothing(tmp_path):
    rec = Events(stop_after_steps=1)
    with pytest.warns(UserWarning, match="nothing was saved"):
        model = nr.train(
            [disks()],
            **TINY,
            epochs=3,
            val_fraction=0.0,
            output=tmp_path / "m",
            callback=rec,
            should_stop=rec.should_stop,
        )
    assert len(rec.kinds("step")) == 1 and rec.kinds("done")[0].path is None
    assert rec.kinds("done")[0].reason == "cancelled"
    assert model.spec.training["stopped"] == "cancelled"
    assert list(tmp_path.iterdir()) == []  # unvalidated weights are not a model
    assert nr.segment(disks()[0], model, device="cpu").shape == (96, 96)  # still usable


def _one_epoch(tmp_path):
    rec = Events(after_epoch=True)  # the first epoch completes, the second stops at once
    pairs = [disks(seed=i) for i in range(3)]
    nr.train(
        pairs, **TINY, epochs=3, output=tmp_path / "run", callback=rec, should_stop=rec.should_stop
    )
    return pairs, CheckpointPaths.from_output(tmp_path / "run")


@pytest.mark.slow
def test_weights_and_optimizer_state_are_committed_in_one_file(tmp_path):
    from safetensors import safe_open

    from napari_res101unet.checkpoint import EXTRA_PREFIX
    from napari_res101unet.training.optim import META_KEY

    pairs, paths = _one_epoch(tmp_path)
    assert paths.last.is_file() and paths.best.is_file() and not paths.optimizer.exists()
    with safe_open(str(paths.last), framework="pt") as f:
        names = list(f.keys())
        assert META_KEY in f.metadata()
    assert any(n.startswith(EXTRA_PREFIX + "state.") for n in names)
    with safe_open(str(paths.best), framework="pt") as f:  # the model to share: weights only
        keys = f.keys()
        assert not any(n.startswith(EXTRA_PREFIX) for n in keys)
    last = load_model(paths.last)  # the optimizer tensors are not weights
    assert last.spec.training["epochs_done"] == 1
    rec = Events()
    nr.train(pairs, **TINY, epochs=2, resume=paths.last, callback=rec)
    assert [e.step for e in rec.kinds("step")] == [3, 4]
    assert read_header(paths.best)["spec"]["training"]["epochs_done"] == 2


@pytest.mark.slow
def test_resume_detects_a_half_committed_pair_of_an_earlier_version(tmp_path):
    pairs, paths = _one_epoch(tmp_path)
    model = load_model(paths.last)
    step = model.spec.training["step"]
    optimizer, _ = make_optimizer(model, 1e-3, 1.0, 1e-4)
    save_model(model, paths.last)  # the earlier layout: weights alone ...
    save_optimizer(paths.optimizer, optimizer, {"step": step + 2})  # ... a newer optimizer
    with pytest.raises(ValueError, match=r"step 4\) does not belong to run\.last.*interrupted"):
        nr.train(pairs, **TINY, epochs=2, resume=paths.last)
    save_optimizer(paths.optimizer, optimizer, {"step": step})  # a matching pair resumes
    rec = Events()
    nr.train(pairs, **TINY, epochs=2, resume=paths.last, callback=rec)
    assert [e.epoch for e in rec.kinds("epoch")] == [2]
    assert not paths.optimizer.exists()  # replaced by the one-file layout
