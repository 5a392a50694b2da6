"""The recipe refitted as it goes, driven by a fake clock (synthetic step times, no model)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from napari_res101unet.config import TrainSettings
from napari_res101unet.training import recipe as R
from napari_res101unet.training.optim import MIN_LR_FACTOR, lr_factor
from napari_res101unet.training.recipe import Recipe

BUDGET = 600.0  # seconds: 10 minutes
FLOOR = MIN_LR_FACTOR + 1e-3  # "at the floor", within tolerance


def _slow_start(step: int) -> float:
    return 3.0 if step < 20 else 1.0  # a busy machine: the first steps 3x slower


def _run(
    step_time: Callable[[int], float],
    steps_per_epoch: int = 50,
    validation: float = 0.0,
    freeze: int = 0,
) -> tuple[Recipe, list[dict]]:
    """Drive a :class:`Recipe` as the trainer does: before each step, the seconds since
    the start and the share of the budget; stop at the deadline. Each row: the step, the
    time it starts, its rate factor and augmentation strength, the plan."""
    settings = TrainSettings(epochs=1000, max_minutes=BUDGET / 60)
    recipe = Recipe.plan(settings, steps_per_epoch, freeze)
    now, rows = 0.0, []
    for step in itertools.count():
        if now >= BUDGET:
            return recipe, rows
        recipe.observe(step, now, step)
        rows.append(
            {
                "step": step,
                "time": now,
                "lr": recipe.lr_factor(step, now / BUDGET),
                "strength": recipe.strength(step),
                "planned": recipe.planned_steps,
            }
        )
        now += step_time(step)
        if (step + 1) % steps_per_epoch == 0:
            now += validation
    raise AssertionError("unreachable")


def _floor_time(rows: list[dict]) -> float:
    """The share of the budget at which the rate first reaches its floor."""
    return next(r["time"] for r in rows if r["lr"] <= FLOOR) / BUDGET


def test_a_slow_start_still_ends_its_schedule_in_the_last_tenth_of_the_budget():
    recipe, rows = _run(_slow_start)
    assert 0.9 <= _floor_time(rows) < 1.0
    half = next(r for r in rows if r["time"] >= BUDGET / 2)
    assert half["lr"] > 0.3  # far from the floor at half time
    assert rows[-1]["lr"] <= FLOOR
    # The plan from the first steps alone, as before issue 26, was 190 steps (180 with the
    # OVERHEAD of 0.1 of then), reached at 38 % of the budget: the rest of the run would
    # have sat at the floor.
    first_step, first_plan = recipe.describe()["refits"][0]
    assert first_step == R.PROBE_STEPS + 1 and first_plan == 190
    old_floor = next(r["time"] for r in rows if r["step"] == first_plan) / BUDGET
    assert old_floor < 0.5
    assert recipe.planned_steps > 2.5 * first_plan
    assert len(rows) > 0.95 * recipe.planned_steps  # the plan is what was made


def test_validation_time_is_spread_over_the_steps_of_an_epoch():
    recipe, rows = _run(_slow_start, steps_per_epoch=50, validation=10.0)
    assert recipe.seconds_per_step == pytest.approx(1.0 + 10.0 / 50)
    assert 0.9 <= _floor_time(rows) < 1.0


@pytest.mark.parametrize(
    "step_time",
    [_slow_start, lambda s: 0.5 if s < 40 else 2.0, lambda s: 1.0 + 0.5 * (s % 7 == 0)],
    ids=["slow-start", "fast-start", "jitter"],
)
def test_the_rate_never_steps_up_after_warm_up_and_strength_never_falls(step_time):
    recipe, rows = _run(step_time, validation=3.0)
    assert recipe.describe()["refit_count"] >= 1
    after = [r["lr"] for r in rows if r["step"] >= recipe.warmup_steps]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(after))
    strengths = [r["strength"] for r in rows]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(strengths))


def test_a_fast_start_does_not_reach_the_deadline_at_a_high_rate():
    recipe, rows = _run(lambda s: 0.5 if s < 40 else 2.0)
    first_plan = recipe.describe()["refits"][0][1]
    assert first_plan > 2 * len(rows)  # planned from the fast steps: far too long
    assert 0.9 <= _floor_time(rows) < 1.0  # the refits shortened it


def test_the_time_share_decays_the_rate_when_the_plan_cannot_follow():
    # 30x slower from step 356, at 60 % of the budget, just after a refit: the next one
    # would come after the deadline; the share of the budget spent still brings the rate
    # down by then
    recipe, rows = _run(lambda s: 1.0 if s < 356 else 30.0)
    last = rows[-1]
    assert last["time"] > 0.95 * BUDGET
    assert recipe.lr_factor(last["step"]) > 0.25  # by the plan alone
    assert last["lr"] < 0.02


def test_a_refit_never_freezes_an_unfrozen_encoder():
    # 4-step epochs, 20 frozen epochs asked: the plans from the slow first steps freeze 8
    # epochs; the encoder thaws in epoch 9, then the plan grows to 530 steps, where 15 %
    # is 19 epochs (measured without the rule: epochs 10-11 and 13-19 frozen again)
    settings = TrainSettings(epochs=1000, max_minutes=BUDGET / 60)
    r = Recipe.plan(settings, 4, 20)
    now, frozen = 0.0, []
    for step in range(400):
        if step % 4 == 0:  # as the trainer does: frozen or not as each epoch starts
            frozen.append(r.encoder_frozen(step // 4 + 1))
        r.observe(step, now, step)
        now += _slow_start(step)
    assert frozen == [True] * 8 + [False] * 92
    assert r.freeze_epochs == 8
    assert int(R.FREEZE_FRACTION * r.planned_steps / 4) == 19  # what the final plan fits


def test_ranks_fed_the_same_steps_and_seconds_make_the_same_plan():
    # what every DDP rank sees: the global step and rank 0's broadcast share of the budget
    one = Recipe.plan(TrainSettings(epochs=1000, max_minutes=10.0), 50, 2)
    other = Recipe.plan(TrainSettings(epochs=1000, max_minutes=10.0), 50, 2)
    now = 0.0
    for step in range(500):
        assert one.observe(step, now, step) == other.observe(step, now, step)
        assert one.lr_factor(step, now / BUDGET) == other.lr_factor(step, now / BUDGET)
        assert one.strength(step) == other.strength(step)
        now += _slow_start(step) + 0.01 * (step % 3)
    assert one.describe() == other.describe()


def test_without_a_budget_the_schedule_is_the_one_planned_from_the_epochs():
    r = Recipe.plan(TrainSettings(epochs=6), 50, 2)
    assert not any(r.observe(s, 3.0 * s, s) for s in range(300))
    assert [r.lr_factor(s) for s in range(300)] == [lr_factor(s, 300, 15) for s in range(300)]
    cap, ramp = R.strength_cap(300), R.RAMP_FRACTION * 300
    assert [r.strength(s) for s in range(300)] == [cap * min(1.0, s / ramp) for s in range(300)]
    assert r.freeze_epochs == 2
    record = r.describe()
    assert record["refits"] == [] and record["refit_count"] == 0
    assert record == Recipe.plan(TrainSettings(epochs=6), 50, 2).describe()


def test_the_record_lists_the_first_and_latest_refits_and_counts_them_all():
    r = Recipe.plan(TrainSettings(epochs=1000, max_minutes=10.0), 50, 0)
    now = 0.0
    for step in range(600):  # a step time that keeps changing: the plan moves each time
        r.observe(step, now, step)
        now += 0.5 + 0.5 * ((step // R.REFIT_EVERY) % 2)
    record = r.describe()
    assert record["refit_count"] > R.REFITS_KEPT
    assert len(record["refits"]) == R.REFITS_KEPT
    assert record["refits"][0][0] == R.PROBE_STEPS + 1  # the plan from the first steps
    assert record["refits"][-1][1] == r.planned_steps
    steps = [s for s, _ in record["refits"]]
    assert steps == sorted(steps)
