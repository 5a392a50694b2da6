"""The budget-fitted recipe: augmentation ramp, schedule end, freezing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import napari_res101unet as nr
from napari_res101unet.config import TrainSettings
from napari_res101unet.training import recipe as R
from napari_res101unet.training.optim import MIN_LR_FACTOR
from napari_res101unet.training.recipe import Recipe


def _recipe(epochs=1000, steps=100, minutes=None, freeze=0) -> Recipe:
    settings = TrainSettings(epochs=epochs, max_minutes=minutes)
    return Recipe.plan(settings, steps, freeze)


def test_strength_ramps_to_a_cap_that_grows_with_the_planned_steps():
    short = _recipe(epochs=2, steps=100)  # 200 steps: light
    assert short.planned_steps == 200
    assert [short.strength(s) for s in (0, 40, 80, 150)] == pytest.approx(
        [0.0, R.LIGHT_STRENGTH / 2, R.LIGHT_STRENGTH, R.LIGHT_STRENGTH]
    )
    long = _recipe(epochs=30, steps=100)  # 3000 steps: full strength after 40 %
    assert long.strength(600) == pytest.approx(0.5)
    assert long.strength(1200) == long.strength(2999) == 1.0
    middle = R.strength_cap((R.LIGHT_STEPS + R.FULL_STEPS) // 2)
    assert R.LIGHT_STRENGTH < middle < 1.0


def test_a_run_of_few_passes_over_its_pixels_is_not_augmented():
    # 100 steps sample the training pixels once: 3 passes, 6 and 12
    assert R.pass_factor(None) == 1.0
    assert [R.pass_factor(p) for p in (1.0, R.FEW_PASSES, 6.0, R.MANY_PASSES, 50.0)] == [
        0.0,
        0.0,
        pytest.approx(0.5),
        1.0,
        1.0,
    ]
    few = Recipe.plan(TrainSettings(epochs=3), 100, 0, steps_per_pass=100.0)
    assert [few.strength(s) for s in (0, 100, 299)] == [0.0, 0.0, 0.0]
    assert few.describe()["planned_passes"] == 3.0 and few.describe()["strength_cap"] == 0
    some = Recipe.plan(TrainSettings(epochs=6), 100, 0, steps_per_pass=100.0)
    full = R.strength_cap(600)
    assert some.strength(599) == pytest.approx(full / 2)
    many = Recipe.plan(TrainSettings(epochs=12), 100, 0, steps_per_pass=100.0)
    assert many.strength(1199) == pytest.approx(R.strength_cap(1200))
    # a handful of small painted images: 300 steps are 100 passes, the cap of 300 steps
    small = Recipe.plan(TrainSettings(epochs=3), 100, 0, steps_per_pass=3.0)
    assert small.strength(299) == pytest.approx(R.LIGHT_STRENGTH)


def test_a_budget_refitted_to_few_passes_stays_unaugmented():
    r = Recipe.plan(TrainSettings(epochs=1000, max_minutes=10.0), 100, 0, steps_per_pass=100.0)
    seen = []
    for step in range(300):  # 2 s a step: about 285 steps fit, under 3 passes
        r.observe(step, 2.0 * step, step)
        seen.append(r.strength(step))
    assert r.fitted_to_time and r.planned_steps < 300
    assert max(seen) < 0.01  # the first plan (100 000 steps) ramps slowly, then stops
    assert r.describe()["planned_passes"] < R.FEW_PASSES


def test_schedule_warms_up_over_five_percent_and_ends_at_the_planned_step():
    r = _recipe(epochs=4, steps=100)
    assert r.warmup_steps == 20
    assert r.lr_factor(0) == pytest.approx(1 / 20)
    assert r.lr_factor(20) == pytest.approx(1.0)
    assert r.lr_factor(400) == pytest.approx(MIN_LR_FACTOR)
    assert _recipe(epochs=1000, steps=100).warmup_steps == 50  # capped


def test_a_time_budget_plans_from_the_first_timed_steps():
    r = _recipe(epochs=1000, steps=129, minutes=1.0, freeze=2)  # 60 s budget
    assert r.planned_steps == 129_000 and r.warmup_steps == 50 and r.freeze_epochs == 2
    fitted = [r.observe(i, 0.5 + 1.0 * i, step=i) for i in range(1, R.PROBE_STEPS + 2)]
    assert fitted == [False] * R.PROBE_STEPS + [True]
    assert r.seconds_per_step == pytest.approx(1.0)
    step = R.PROBE_STEPS + 1
    expected = step + int(60 * (1 - R.OVERHEAD) - (0.5 + step))
    assert r.planned_steps == expected  # 56: what fits in the budget
    # 5 % of 56 is past already: warm-up ramps from the last rate (5 / 50) to 1 at once
    assert r.lr_factor(step - 1) == pytest.approx(step / 50)
    assert r.warmup_steps == step + 1 and r.lr_factor(step) == pytest.approx(1.0)
    assert r.freeze_epochs == 0  # one epoch is more than 15 % of the run
    assert r.lr_factor(r.planned_steps) == pytest.approx(MIN_LR_FACTOR)
    assert r.strength(r.planned_steps) == R.LIGHT_STRENGTH
    assert r.describe()["fitted_to_time"] is True
    assert r.describe()["refits"] == [[step, expected]]


def test_a_run_records_its_recipe_and_trains_on_clean_patches_first():
    image = np.full((64, 64), 100, np.uint8)
    labels = np.zeros((64, 64), np.uint8)
    labels[16:48, 16:48] = 1
    image[labels > 0] = 200
    model = nr.train(
        [(image, labels)],
        patch_size=64,
        batch_size=2,
        steps_per_epoch=2,
        epochs=2,
        val_fraction=0.0,
        device="cpu",
    )
    recipe = model.spec.training["recipe"]
    assert recipe["planned_steps"] == 4 and recipe["warmup_steps"] == 1
    assert recipe["strength_cap"] == R.LIGHT_STRENGTH and not recipe["fitted_to_time"]
    # one 64x64 image, batches of two 64x64 patches: half a step samples it once
    assert recipe["steps_per_pass"] == 0.5 and recipe["planned_passes"] == 8.0
    assert model.spec.training["settings"]["steps_per_pass"] == 0.5


class _Clock:
    """A clock that advances a fixed time per reading: timing-dependent code made exact."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now


@pytest.mark.slow
def test_a_budget_too_short_to_freeze_unfreezes_the_encoder_within_the_first_epoch(
    monkeypatch,
):
    import torch

    from napari_res101unet.training import trainer as _trainer

    monkeypatch.setattr(_trainer, "time", _Clock(0.25))
    image = np.full((64, 64), 60, np.uint8)
    labels = np.zeros((64, 64), np.uint8)
    labels[16:48, 16:48] = 1
    image[labels > 0] = 190
    torch.manual_seed(0)
    start = nr.build_model(classes=2)
    before = {k: v.clone() for k, v in start.encoder.state_dict().items()}
    model = nr.train(
        [(image, labels)],
        model=start,  # trained weights: the encoder would be frozen for 2 epochs (all)
        patch_size=64,
        batch_size=2,
        steps_per_epoch=16,
        epochs=1,
        max_minutes=1.0,
        val_fraction=0.0,
        device="cpu",
    )
    record = model.spec.training
    recipe = record["recipe"]
    assert recipe["fitted_to_time"] and recipe["planned_steps"] == 16
    assert recipe["refits"][0] == [R.PROBE_STEPS + 1, 16]  # the epochs' 16 steps fit
    assert recipe["freeze_epochs"] == 0 and record["settings"]["freeze_encoder_epochs"] == 2
    assert record["history"][0]["frozen_encoder"] is True  # as the epoch started
    after = model.encoder.state_dict()
    assert any(not torch.equal(before[k], after[k].cpu()) for k in before)  # unfrozen
