"""A training recipe fitted to the planned number of steps (the budget).

Measured on main (issue 16): at 10 CPU minutes on the liver slices (a few hundred steps)
full augmentation from the first step cost 0.10 IoU against ``augment=False``, a warm-up
of 50 steps spent a third of the run at a low rate, and a pretrained encoder frozen for
two epochs never unfroze. So the run first plans its length, then fits three things to it:

* **planned steps** ``epochs * steps_per_epoch``; with ``max_minutes``, the steps that fit
  the budget at the step time measured over the first :data:`PROBE_STEPS` steps (less
  :data:`OVERHEAD` for validation and checkpoints), never more than the epochs allow;
* **schedule**: linear warm-up over :data:`WARMUP_FRACTION` of the planned steps (at most
  ``TRAIN_LIMITS["max_warmup_steps"]``), then a cosine to 1 % that ends at the planned
  step, or when the time budget is spent, whichever comes first
  (:func:`~napari_res101unet.training.optim.lr_factor`);
* **augmentation strength** in ``[0, 1]`` (the probability and size of each transform,
  see :class:`~napari_res101unet.training.patches.PatchSampler`): it ramps linearly from
  0 at the first step to its cap at :data:`RAMP_FRACTION` of the planned steps; the cap is
  :data:`LIGHT_STRENGTH` up to :data:`LIGHT_STEPS` planned steps, 1 from
  :data:`FULL_STEPS`, linear between. Short runs learn the task on clean patches; long
  runs get the regularisation;
* **encoder freezing** (pretrained encoders), under a time budget: at most
  :data:`FREEZE_FRACTION` of the planned steps, in whole epochs (none when one epoch is
  more than that; an encoder frozen for the first epoch is then unfrozen at once). With
  epochs only, ``freeze_encoder_epochs`` is kept as asked.

Without a time budget everything follows from the settings: the same seed gives the
same strengths, rates and losses. With one, the plan depends on the measured step time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..config import TRAIN_LIMITS, TrainSettings
from .optim import lr_factor

PROBE_STEPS = 4
"""Steps timed (after the first, which pays for allocation) before a budget is planned."""
OVERHEAD = 0.1
"""Share of a time budget kept for validation, checkpoints and the last partial epoch."""
WARMUP_FRACTION = 0.05
LIGHT_STEPS = 400
LIGHT_STRENGTH = 0.25
FULL_STEPS = 2000
RAMP_FRACTION = 0.4
FREEZE_FRACTION = 0.15


def strength_cap(planned: int) -> float:
    """The largest augmentation strength of a run of ``planned`` steps."""
    if planned <= LIGHT_STEPS:
        return LIGHT_STRENGTH
    if planned >= FULL_STEPS:
        return 1.0
    t = (planned - LIGHT_STEPS) / (FULL_STEPS - LIGHT_STEPS)
    return LIGHT_STRENGTH + (1.0 - LIGHT_STRENGTH) * t


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
    """

    planned_steps: int
    warmup_steps: int
    freeze_epochs: int
    steps_per_epoch: int
    budget_seconds: float | None = None
    fitted_to_time: bool = False
    seconds_per_step: float | None = None
    _asked_freeze: int = field(default=0, repr=False)
    _times: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def plan(cls, settings: TrainSettings, steps_per_epoch: int, freeze_epochs: int) -> Recipe:
        """The recipe before any step: planned from the epochs (refitted to a time budget
        by :meth:`observe`)."""
        planned = settings.epochs * steps_per_epoch
        budget = None if settings.max_minutes is None else 60.0 * settings.max_minutes
        recipe = cls(planned, warmup_steps(planned), freeze_epochs, steps_per_epoch, budget)
        recipe._asked_freeze = freeze_epochs
        return recipe

    def observe(self, steps_this_call: int, seconds: float, step: int) -> bool:
        """Record that ``steps_this_call`` steps of this call ended ``seconds`` after it
        started (``step`` is the global step); True when the plan was refitted now."""
        if self.budget_seconds is None or self.fitted_to_time:
            return False
        self._times.append(seconds)
        if steps_this_call < PROBE_STEPS + 1:
            return False
        per_step = (self._times[-1] - self._times[0]) / max(1, len(self._times) - 1)
        left = self.budget_seconds * (1.0 - OVERHEAD) - seconds
        fits = step + max(0, math.floor(left / max(per_step, 1e-9)))
        self.planned_steps = max(step + 1, min(self.planned_steps, fits))
        self.warmup_steps = min(self.warmup_steps, max(step, warmup_steps(self.planned_steps)))
        self.seconds_per_step, self.fitted_to_time = per_step, True
        self._fit_freeze()
        return True

    def _fit_freeze(self) -> None:
        limit = FREEZE_FRACTION * self.planned_steps / max(1, self.steps_per_epoch)
        self.freeze_epochs = min(self._asked_freeze, math.floor(limit))

    def lr_factor(self, step: int, elapsed: float = 0.0) -> float:
        """Learning-rate multiplier at ``step`` (``elapsed``: share of the time budget)."""
        return lr_factor(step, self.planned_steps, self.warmup_steps, elapsed)

    def strength(self, step: int) -> float:
        """Augmentation strength in ``[0, 1]`` at ``step``."""
        cap = strength_cap(self.planned_steps)
        ramp = max(1.0, RAMP_FRACTION * self.planned_steps)
        return cap * min(1.0, step / ramp)

    def describe(self) -> dict:
        """The JSON record of the recipe (stored in the training record)."""
        record = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        record["strength_cap"] = strength_cap(self.planned_steps)
        return record
