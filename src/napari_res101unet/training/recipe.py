"""A training recipe fitted to the planned number of steps (the budget), refitted as it goes.

Measured on main (issue 16): at 10 CPU minutes on the liver slices (a few hundred steps)
full augmentation from the first step cost 0.10 IoU against ``augment=False``, a warm-up
of 50 steps spent a third of the run at a low rate, and a pretrained encoder frozen for
two epochs never unfroze. So the run plans its length and fits three things to it:

* **planned steps** ``epochs * steps_per_epoch``; with ``max_minutes``, the steps made so
  far plus those that fit the rest of the budget (less :data:`OVERHEAD`), never more than
  the epochs allow. The step time is the mean over the last :data:`WINDOW` steps (after
  the first, which pays for allocation), plus each epoch's validation and checkpoint
  spread over its steps. The plan is made after :data:`PROBE_STEPS` timed steps and
  **refitted** every :data:`REFIT_EVERY` steps (issue 26: planned once from the first
  steps of a busy machine, runs planned 156 and 258 steps, made 190 and 408, and spent
  the rest at the floor rate);
* **schedule**: linear warm-up over :data:`WARMUP_FRACTION` of the planned steps (at most
  ``TRAIN_LIMITS["max_warmup_steps"]``), then a cosine to 1 % that ends at the planned
  step, or when the time budget is spent, whichever comes first
  (:meth:`Recipe.lr_factor`, :func:`~napari_res101unet.training.optim.cosine_factor`).
  A refit keeps the rate continuous: the cosine keeps its progress at the refit step and
  spreads what is left of it over the newly planned steps (a plan that grows slows the
  decay, it never raises the rate); a refit during warm-up ramps on from the last rate to
  the new warm-up end; the share of the time budget spent still bounds the progress from
  below, so the rate has decayed by the deadline whatever the plan said;
* **augmentation strength** in ``[0, 1]`` (the probability and size of each transform,
  see :class:`~napari_res101unet.training.patches.PatchSampler`): it ramps linearly from
  0 at the first step to its cap at :data:`RAMP_FRACTION` of the planned steps; the cap is
  :data:`LIGHT_STRENGTH` up to :data:`LIGHT_STEPS` planned steps, 1 from
  :data:`FULL_STEPS`, linear between, times :func:`pass_factor` of the planned passes
  over the training pixels: none while the plan samples them fewer than
  :data:`FEW_PASSES` times, all from :data:`MANY_PASSES`. Short runs learn the task on
  clean patches; long runs, and runs that see a few painted images many times, get the
  regularisation (issue 26: at 10, 25 and 40 CPU minutes, 1 to 4 passes over the MSD
  liver slices or GlaS, a network from random weights had not yet fitted its own
  training slices; without augmentation the recipe beat the plain loop in every cell,
  where with it it trailed on the liver at 25 and 40 minutes). It never decreases: a
  refit ramps on from the strength reached to the new cap (over :data:`RAMP_FRACTION` of
  the steps left when the ramp's end has passed), and a plan that shrinks stops the ramp
  where it is rather than taking regularisation back (refits follow a noisy step time;
  an augmentation that went up and down with it would be a curriculum nobody chose);
* **encoder freezing** (pretrained encoders), under a time budget: at most
  :data:`FREEZE_FRACTION` of the planned steps, in whole epochs (none when one epoch is
  more than that; an encoder frozen for the current epoch is then unfrozen at once). A
  refit may shorten or lengthen the frozen epochs while the encoder is frozen; once
  unfrozen it stays so. With epochs only, ``freeze_encoder_epochs`` is kept as asked.

Without a time budget everything follows from the settings: the same seed gives the
same strengths, rates and losses. With one, the plan depends on the measured step time.

Distributed runs: every rank refits the same plan at the same step. A refit depends only
on the step count (the same on every rank) and the seconds the trainer derives from rank
0's share of the budget, broadcast to all ranks with its stop decision
(:meth:`~napari_res101unet.training.trainer.Trainer._should_stop`); never pass a rank's
own clock to :meth:`Recipe.observe`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..config import FEW_PASSES, MANY_PASSES, TRAIN_LIMITS, TrainSettings
from .optim import cosine_factor

PROBE_STEPS = 4
"""Steps timed (after the first, which pays for allocation) before a budget is planned."""
OVERHEAD = 0.05
"""Share of a time budget kept free at the planned end: the last validation and save,
and the error of the step time. (It was 0.1 while the plan was made once and left every
epoch's validation to this share; validation is now part of the measured step time.)"""
REFIT_EVERY = 10
"""Steps between two refits of the plan to a time budget."""
WINDOW = 20
"""Steps whose mean time is the step time of a refit (a moving window)."""
GAPS = 3
"""Epoch ends (validation, checkpoint) whose mean extra time a refit spreads over steps."""
MOVE = 0.01
"""Share of the planned steps by which a refit must differ from the plan to move it (the
step time is noisy; a plan moved by a step or two changes nothing but the record)."""
REFITS_KEPT = 20
"""Refits listed in :meth:`Recipe.describe`, the first and the latest (all are counted)."""
WARMUP_FRACTION = 0.05
LIGHT_STEPS = 400
LIGHT_STRENGTH = 0.25
FULL_STEPS = 2000
RAMP_FRACTION = 0.4
FREEZE_FRACTION = 0.15


def pass_factor(passes: float | None) -> float:
    """The share of the augmentation cap a plan of ``passes`` passes over the training
    pixels gets: 0 below :data:`FEW_PASSES`, 1 from :data:`MANY_PASSES`, linear between
    (1 when unknown)."""
    if passes is None:
        return 1.0
    return min(1.0, max(0.0, (passes - FEW_PASSES) / (MANY_PASSES - FEW_PASSES)))


def strength_cap(planned: int, passes: float | None = None) -> float:
    """The largest augmentation strength of a run of ``planned`` steps that makes
    ``passes`` passes over the training pixels (None: not scaled by passes)."""
    if planned <= LIGHT_STEPS:
        cap = LIGHT_STRENGTH
    elif planned >= FULL_STEPS:
        cap = 1.0
    else:
        t = (planned - LIGHT_STEPS) / (FULL_STEPS - LIGHT_STEPS)
        cap = LIGHT_STRENGTH + (1.0 - LIGHT_STRENGTH) * t
    return cap * pass_factor(passes)


def warmup_steps(planned: int) -> int:
    """Warm-up steps of a run of ``planned`` steps (at least 1)."""
    return max(1, min(round(WARMUP_FRACTION * planned), TRAIN_LIMITS["max_warmup_steps"]))


@dataclass
class Recipe:
    """The budget-fitted schedule of one run (see the module notes).

    Attributes
    ----------
    planned_steps : int
        Steps the run expects to make in all (resumed runs: from step 0).
    warmup_steps : int
    freeze_epochs : int
        Epochs with a frozen encoder (0 for a randomly initialised one).
    steps_per_epoch : int
    budget_seconds : float or None
        The time budget of this call (``max_minutes``), None without one.
    fitted_to_time : bool
        Whether ``planned_steps`` comes from measured step times.
    seconds_per_step : float or None
        The step time of the latest refit (validation spread over the steps included).
    steps_per_pass : float or None
        Steps whose patches add up to the training pixels once (None: augmentation is not
        scaled by the planned passes).
    """

    planned_steps: int
    warmup_steps: int
    freeze_epochs: int
    steps_per_epoch: int
    budget_seconds: float | None = None
    fitted_to_time: bool = False
    seconds_per_step: float | None = None
    steps_per_pass: float | None = None
    _asked_freeze: int = field(default=0, repr=False)
    _most_steps: int = field(default=0, repr=False)  # what the epochs allow
    _last: tuple[int, float] | None = field(default=None, repr=False)  # (steps, seconds)
    _steps: list[tuple[int, float]] = field(default_factory=list, repr=False)
    _gaps: list[tuple[int, float]] = field(default_factory=list, repr=False)
    _next_refit: int = field(default=PROBE_STEPS + 1, repr=False)
    _warm_from: tuple[int, float] = field(default=(-1, 0.0), repr=False)
    _cosine_from: tuple[int, float] | None = field(default=None, repr=False)
    _ramp_from: tuple[int, float] = field(default=(0, 0.0), repr=False)
    _thawed: bool = field(default=False, repr=False)
    _refits: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _refit_count: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self._cosine_from is None:
            self._cosine_from = (self.warmup_steps, 0.0)

    @classmethod
    def plan(
        cls,
        settings: TrainSettings,
        steps_per_epoch: int,
        freeze_epochs: int,
        steps_per_pass: float | None = None,
    ) -> Recipe:
        """The recipe before any step: planned from the epochs (refitted to a time budget
        by :meth:`observe`); ``steps_per_pass``: steps that sample the training pixels
        once (see :attr:`steps_per_pass`)."""
        planned = settings.epochs * steps_per_epoch
        budget = None if settings.max_minutes is None else 60.0 * settings.max_minutes
        recipe = cls(
            planned,
            warmup_steps(planned),
            freeze_epochs,
            steps_per_epoch,
            budget,
            steps_per_pass=steps_per_pass,
        )
        recipe._asked_freeze, recipe._most_steps = freeze_epochs, planned
        return recipe

    def observe(self, steps_this_call: int, seconds: float, step: int) -> bool:
        """Record that ``steps_this_call`` steps of this call ended ``seconds`` after it
        started (``step`` is the global step); True when the plan was refitted now.

        Call it before every step, with ``seconds`` that every rank agrees on (see the
        module notes)."""
        if self.budget_seconds is None or steps_this_call < 1:
            return False
        if self._last is not None and steps_this_call > self._last[0]:
            steps, dt = steps_this_call - self._last[0], seconds - self._last[1]
            # the steps of an epoch's end enclose its validation and checkpoint
            epoch_end = self._last[0] // self.steps_per_epoch != steps_this_call // (
                self.steps_per_epoch
            )
            kept = self._gaps if epoch_end else self._steps
            kept.append((steps, dt))
            del kept[: -(GAPS if epoch_end else WINDOW)]
        self._last = (steps_this_call, seconds)
        ended = self.fitted_to_time and step >= self.planned_steps  # the rate is at its floor
        if steps_this_call < self._next_refit or ended:
            return False
        self._next_refit = steps_this_call + REFIT_EVERY
        per_step = self._step_time()
        left = self.budget_seconds * (1.0 - OVERHEAD) - seconds
        fits = step + max(0, math.floor(left / max(per_step, 1e-9)))
        planned = max(step + 1, min(self._most_steps, fits))
        moved = abs(planned - self.planned_steps) > MOVE * self.planned_steps
        if moved or not self.fitted_to_time:
            self._refit(step, planned)
        self.seconds_per_step, self.fitted_to_time = per_step, True
        return True

    def _step_time(self) -> float:
        """Mean seconds per step over the window, each epoch end's extra time spread over
        the steps of an epoch (all intervals alike when none is free of an epoch end)."""
        if not self._steps:
            steps = sum(n for n, _ in self._gaps)
            return sum(dt for _, dt in self._gaps) / max(1, steps)
        per_step = sum(dt for _, dt in self._steps) / sum(n for n, _ in self._steps)
        extra = [max(0.0, dt - n * per_step) for n, dt in self._gaps]
        return per_step + (sum(extra) / len(extra) / self.steps_per_epoch if extra else 0.0)

    def _refit(self, step: int, planned: int) -> None:
        """Plan ``planned`` steps from ``step`` on, rate and strength continuous."""
        ramp_from = (step, self.strength(step))
        if step < self.warmup_steps:  # ramp on from the rate of the last step
            self._warm_from = (step - 1, self._warm(step - 1))
            self.warmup_steps = max(warmup_steps(planned), step + 1)
            self._cosine_from = (self.warmup_steps, 0.0)
        else:  # the cosine keeps its progress
            self._cosine_from = (step, self._progress(step))
        self._ramp_from = ramp_from
        if planned != self.planned_steps or not self.fitted_to_time:  # the first: always
            self._refit_count += 1
            self._refits.append((step, planned))
            del self._refits[1 : -(REFITS_KEPT - 1)]  # the first and the latest
        self.planned_steps = planned
        limit = math.floor(FREEZE_FRACTION * planned / max(1, self.steps_per_epoch))
        fitted = min(self._asked_freeze, limit)
        self.freeze_epochs = min(fitted, self.freeze_epochs) if self._thawed else fitted

    def encoder_frozen(self, epoch: int) -> bool:
        """Whether the encoder is frozen in ``epoch`` (1-based); once it is not, no refit
        freezes it again."""
        frozen = epoch <= self.freeze_epochs
        self._thawed = self._thawed or not frozen
        return frozen

    def _warm(self, step: int) -> float:
        s0, f0 = self._warm_from
        return f0 + (1.0 - f0) * (step - s0) / max(1, self.warmup_steps - 1 - s0)

    def _progress(self, step: int) -> float:
        """The cosine's progress in ``[0, 1]`` at ``step`` by the planned steps."""
        s0, t0 = self._cosine_from
        return min(1.0, t0 + (1.0 - t0) * max(0, step - s0) / max(1, self.planned_steps - s0))

    def lr_factor(self, step: int, elapsed: float = 0.0) -> float:
        """Learning-rate multiplier at ``step`` (``elapsed``: share of the time budget)."""
        if step < self.warmup_steps:
            return self._warm(step)
        return cosine_factor(max(self._progress(step), elapsed))

    def _passes(self) -> float | None:
        """Planned passes over the training pixels (None when unknown)."""
        return self.planned_steps / self.steps_per_pass if self.steps_per_pass else None

    def _cap(self) -> float:
        return max(self._ramp_from[1], strength_cap(self.planned_steps, self._passes()))

    def strength(self, step: int) -> float:
        """Augmentation strength in ``[0, 1]`` at ``step``."""
        s0, g0 = self._ramp_from
        planned = self.planned_steps
        end = max(RAMP_FRACTION * planned, s0 + RAMP_FRACTION * (planned - s0))
        return g0 + (self._cap() - g0) * min(1.0, max(0, step - s0) / max(1.0, end - s0))

    def describe(self) -> dict:
        """The JSON record of the recipe (stored in the training record): the final plan,
        and the refits that moved it as ``[step, planned steps]``: :data:`REFITS_KEPT` at
        most, the first (the plan from the first timed steps, moved or not) and the latest;
        ``refit_count`` counts them all."""
        record = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        record["strength_cap"] = self._cap()
        passes = self._passes()
        record["planned_passes"] = None if passes is None else round(passes, 2)
        record["refits"] = [list(r) for r in self._refits]
        record["refit_count"] = self._refit_count
        return record
