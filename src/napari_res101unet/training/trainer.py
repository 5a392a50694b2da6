"""The epoch loop behind :func:`~napari_res101unet.train`: steps, validation, checkpoints."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import EXTRA_PREFIX, save_model
from ..config import TrainSettings
from ..device import amp_dtype, autocast
from ..errors import Cancelled
from ..model import model_spec
from ..preprocess.pairs import IGNORE, Prepared
from . import distributed as _dist
from .losses import make_loss
from .optim import has_optimizer, load_optimizer, make_optimizer, optimizer_payload
from .patches import PatchSampler
from .recipe import Recipe
from .start import TrainPlan, record
from .state import CheckpointPaths, TrainingEvent
from .validation import score_prepared

IMPROVEMENT = 1e-4
"""Validation IoU gain that counts as better (for the best checkpoint and early stopping)."""


class Trainer:
    """Runs the epochs of one :func:`train` call (see there for the settings)."""

    def __init__(
        self,
        model: torch.nn.Module,
        sampler: PatchSampler,
        val_items: list[Prepared],
        settings: TrainSettings,
        plan: TrainPlan,
        *,
        device: torch.device,
        paths: CheckpointPaths | None,
        callback: Callable[[TrainingEvent], None] | None,
        should_stop: Callable[[], bool] | None,
        world: _dist.World = _dist.SINGLE,
    ) -> None:
        self.world, self.sync_bn, self.workers = world, settings.sync_bn, settings.workers
        self.net: torch.nn.Module | None = None  # what the steps call (DDP when distributed)
        self._net_frozen: bool | None = None
        self._loader = None
        self.s, self.plan, self.device, self.paths = settings, plan, device, paths
        self.sampler, self.val_items = sampler, val_items
        self.callback, self.should_stop = callback, should_stop or (lambda: False)
        self.amp = settings.mixed_precision and device.type == "cuda"
        fp16 = self.amp and amp_dtype(device) == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.channels_last = device.type == "cuda"
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(device=device, memory_format=fmt)
        self.optimizer, self.base_lrs = make_optimizer(
            self.model,
            plan.learning_rate,
            plan.encoder_learning_rate_factor,
            settings.weight_decay,
        )
        classes = model_spec(model).classes
        self.loss = make_loss(settings.loss, classes, IGNORE, plan.class_weights)
        self.epochs, self.steps = settings.epochs, plan.steps_per_epoch
        self.recipe = Recipe.plan(
            settings, plan.steps_per_epoch, plan.freeze_encoder_epochs, plan.steps_per_pass
        )
        self.record = record(settings, plan)
        self.history: list[dict] = []
        self.epochs_done = self.step = self.bad_epochs = 0
        self.epochs_before = 0  # epochs done when this call started (resume)
        self.steps_before = 0  # steps done when this call started
        self.best_epoch: int | None = None
        self.best_iou: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.deadline = math.inf
        self.started = 0.0

    def restore(self, last: Path) -> None:
        """Continue the run whose last checkpoint is ``last`` (already loaded as model)."""
        done = self.model.spec.training or {}
        self.history = list(done.get("history", []))
        self.epochs_done, self.step = int(done.get("epochs_done", 0)), int(done.get("step", 0))
        self.best_epoch, self.best_iou = done.get("best_epoch"), done.get("best_val_iou")
        self.bad_epochs = self.epochs_done - (self.best_epoch or self.epochs_done)
        _warn_changed(done.get("settings", {}), self.record, last.name)
        if self.epochs_done >= self.epochs:
            raise ValueError(
                f"{last.name} already trained {self.epochs_done} epochs; pass epochs > "
                f"{self.epochs_done} to continue"
            )
        previous = CheckpointPaths.from_last(last)
        # one file since this version; runs of earlier versions kept a second file
        source = last if has_optimizer(last) else previous.optimizer
        meta = load_optimizer(source, self.optimizer, EXTRA_PREFIX if source == last else "")
        if meta.get("step") != self.step:
            raise ValueError(
                f"{source.name} (step {meta.get('step')}) does not belong to "
                f"{last.name} (step {self.step}); the run was interrupted while saving"
            )
        if meta.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(meta["scaler"])
        self.best_state = _best_state(previous.best, self.best_epoch)

    def fit(self) -> torch.nn.Module:
        """Train until the epochs are done or a stop condition; returns the best model."""
        self.started = time.monotonic()
        self.epochs_before, self.steps_before = self.epochs_done, self.step
        if self.s.max_minutes is not None:
            self.deadline = self.started + 60.0 * self.s.max_minutes
        reason = "completed"
        for epoch in range(self.epochs_done + 1, self.epochs + 1):
            late = "time_budget" if time.monotonic() >= self.deadline else None
            late = _dist.agree(self.world, self.device, late, 0.0)[0]
            stop = late or self._epoch(epoch)
            if stop is not None:
                reason = stop
                break
        return self._finish(reason)

    def _epoch(self, epoch: int) -> str | None:
        """One epoch; returns a stop reason or None to go on."""
        started = time.monotonic()
        frozen = self.recipe.encoder_frozen(epoch)
        for p in self.model.encoder.parameters():
            p.requires_grad_(not frozen)
        if self._net_frozen != frozen:  # DDP syncs the parameters that need gradients
            self.net, self._net_frozen = (
                _dist.wrap(self.model, self.world, self.device, self.sync_bn),
                frozen,
            )
        losses, stop = self._steps(epoch, frozen)
        _dist.average_buffers(self.model, self.world)
        if stop == "cancelled" or not losses:
            return stop or "time_budget"
        try:
            scores = self._validate()
        except Cancelled:
            return "cancelled"
        self.epochs_done = epoch
        record = {
            "epoch": epoch,
            "steps": len(losses),
            "train_loss": self._mean_loss(losses),
            "val_iou": None if scores is None else scores["iou"],
            "val_dice": None if scores is None else scores["dice"],
            "val_accuracy": None if scores is None else scores["accuracy"],
            "lr": self.optimizer.param_groups[0]["lr"],
            "frozen_encoder": frozen,
            "seconds": round(time.monotonic() - started, 3),
        }
        self.history.append(record)
        improved = self._track_best(record)
        shown = ("epoch", "seconds", "lr", "train_loss", "val_iou", "val_dice")
        self._emit("epoch", **{k: record[k] for k in shown})
        self._checkpoint(improved)
        patience = self.s.early_stopping
        if scores is not None and patience is not None and self.bad_epochs >= patience:
            return "early_stopping"
        return stop

    def _steps(self, epoch: int, frozen: bool) -> tuple[list[float], str | None]:
        self.model.train()
        if frozen:
            self.model.encoder.eval()
        seed = [self.s.seed, epoch] + ([self.world.rank] if self.world.rank else [])
        rng = np.random.default_rng(seed)  # each rank draws its own patches
        losses: list[float] = []
        # On the CPU a second thread preparing patches competes with torch's own threads
        # (measured 10-40 % slower steps on 2 cores); on CUDA it overlaps with the GPU.
        prefetch = self.device.type == "cuda" and not self.workers
        with ThreadPoolExecutor(max_workers=1) if prefetch else _Inline() as pool:
            pending = pool.submit(self._batch, rng, self.recipe.strength(self.step))
            for i in range(self.steps):
                stop, elapsed = self._should_stop(bool(losses))
                if stop is not None:
                    return losses, stop
                if self._observe(elapsed) and frozen:
                    frozen = self.recipe.encoder_frozen(epoch)
                    if not frozen:
                        self._unfreeze()
                x, y = pending.result()
                if i + 1 < self.steps:
                    pending = pool.submit(self._batch, rng, self.recipe.strength(self.step + 1))
                losses.append(self._step(x, y, elapsed))
                lr = self.optimizer.param_groups[0]["lr"]
                self._emit("step", epoch=epoch, step=self.step, loss=losses[-1], lr=lr)
        return losses, None

    def _observe(self, elapsed: float) -> bool:
        """Time the steps made so far; True when the recipe was refitted to the budget.

        ``elapsed`` is rank 0's share of the time budget (:meth:`_should_stop`) and the
        budget is the same number on every rank (not this rank's ``deadline - started``),
        so every rank refits the same plan at the same step (same learning rates, same
        augmentation strength, same freezing)."""
        budget = self.recipe.budget_seconds
        seconds = 0.0 if budget is None else elapsed * budget
        return self.recipe.observe(self.step - self.steps_before, seconds, self.step)

    def _unfreeze(self) -> None:
        """Unfreeze the encoder within the epoch (the refitted plan has no time for it)."""
        for p in self.model.encoder.parameters():
            p.requires_grad_(True)
        self.model.encoder.train()
        if self.world.active:  # DDP syncs the parameters that need gradients: wrap again
            self.net = _dist.wrap(self.model, self.world, self.device, self.sync_bn)
        self._net_frozen = False

    def _should_stop(self, started: bool) -> tuple[str | None, float]:
        """Rank 0's decision to stop (cancel, time budget) and the elapsed share of the time
        budget (for the learning rate), the same on every rank."""
        stop, elapsed = None, 0.0
        if self.world.main:
            if math.isfinite(self.deadline):
                elapsed = (time.monotonic() - self.started) / (self.deadline - self.started)
            if self.should_stop():
                stop = "cancelled"
            elif started and time.monotonic() >= self.deadline:
                stop = "time_budget"
        return _dist.agree(self.world, self.device, stop, elapsed)

    def _mean_loss(self, losses: list[float]) -> float:
        """The epoch's mean training loss over every rank's steps."""
        total = np.array([sum(losses), len(losses)], np.float64)
        total = _dist.sum_array(self.world, self.device, total)
        return float(np.mean(losses)) if not self.world.active else float(total[0] / total[1])

    def _batch(
        self, rng: np.random.Generator, strength: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.workers:
            from .dataset import next_batch

            x, y = next_batch(self, rng, strength)
        else:
            x, y = self.sampler.batch(rng, strength)
        if self.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def _step(self, x: torch.Tensor, y: torch.Tensor, elapsed: float = 0.0) -> float:
        factor = self.recipe.lr_factor(self.step, elapsed)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp):
            logits = (self.net or self.model)(x)
        loss = self.loss(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        value = float(loss.detach())
        if not math.isfinite(value) and not self.scaler.is_enabled():
            raise FloatingPointError(
                f"the loss became {value} at step {self.step}; lower learning_rate "
                f"(now {self.plan.learning_rate})"
            )
        return value

    def _validate(self) -> dict | None:
        if not self.val_items:
            return None
        world, dev = self.world, self.device
        return score_prepared(
            self.model,
            _dist.shard(self.val_items, world),
            device=dev,
            batch_size=self.s.batch_size,
            mixed_precision=self.amp,
            # distributed: a rank must not leave the others at the sum of the scores
            should_stop=None if world.active else self.should_stop,
            reduce=lambda m: _dist.sum_array(world, dev, m),
        )

    def _track_best(self, record: dict) -> bool:
        iou = record["val_iou"]
        improved = iou is None or self.best_iou is None or iou > self.best_iou + IMPROVEMENT
        if improved:
            self.best_epoch, self.best_iou, self.bad_epochs = record["epoch"], iou, 0
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
            }
        else:
            self.bad_epochs += 1
        return improved

    def _checkpoint(self, improved: bool) -> None:
        if self.paths is None or not self.world.main:
            return
        self.model.spec.training = self.training_record()
        extra = {"step": self.step, "epoch": self.epochs_done}
        if self.scaler.is_enabled():
            extra["scaler"] = self.scaler.state_dict()
        # weights and optimizer state in one file: one atomic rename commits both
        tensors, meta = optimizer_payload(self.optimizer, extra, prefix=EXTRA_PREFIX)
        save_model(self.model, self.paths.last, tensors=tensors, metadata=meta)
        self.paths.optimizer.unlink(missing_ok=True)  # an earlier version's, now stale
        self._emit("checkpoint", epoch=self.epochs_done, path=str(self.paths.last))
        if improved:
            save_model(self.model, self.paths.best)
            self._emit("checkpoint", epoch=self.epochs_done, path=str(self.paths.best), best=True)

    def training_record(self, stopped: str | None = None) -> dict[str, Any]:
        """What ``spec.training`` holds: settings, history, best epoch, resume point."""
        return {
            "settings": self.record,
            "history": self.history,
            "epochs_done": self.epochs_done,
            "step": self.step,
            "best_epoch": self.best_epoch,
            "best_val_iou": self.best_iou,
            "stopped": stopped,
            "recipe": self.recipe.describe(),
        }

    def _finish(self, reason: str) -> torch.nn.Module:
        self.net = self._loader = None
        _dist.revert_sync_batchnorm(self.model)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.spec.training = self.training_record(stopped=reason)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(True)
        path = None
        if not self.world.main:
            return self.model
        if self.paths is not None and self.epochs_done > self.epochs_before:
            path = str(save_model(self.model, self.paths.best))
            self._emit("checkpoint", epoch=self.epochs_done, path=path, best=True)
        elif self.paths is not None:
            warnings.warn(
                f"training stopped ({reason}) before an epoch was completed: nothing was "
                f"saved to {self.paths.best}",
                stacklevel=4,
            )
        self._emit(
            "done",
            epoch=self.epochs_done,
            reason=reason,
            path=path,
            best_epoch=self.best_epoch,
            best_val_iou=self.best_iou,
            seconds=round(time.monotonic() - self.started, 3),
        )
        return self.model

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.callback is not None and self.world.main:
            fields.setdefault("epochs", self.epochs)
            # the recipe's plan: under a time budget, the steps that fit it (refitted)
            fields.setdefault("steps_total", max(self.recipe.planned_steps, self.step))
            self.callback(TrainingEvent(kind, **fields))


def _best_state(path: Path, best_epoch: int | None) -> dict[str, torch.Tensor] | None:
    """The weights of the best checkpoint of a run being resumed, if it is that run's."""
    from safetensors.torch import load_file

    from ..checkpoint import CheckpointError, read_header

    try:
        record = read_header(path)["spec"].get("training") or {}
    except (CheckpointError, KeyError):
        return None
    return load_file(str(path)) if record.get("best_epoch") == best_epoch else None


class _Inline:
    """A stand-in for a one-thread executor that runs each job at once."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable, *args: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def _warn_changed(before: dict[str, Any], now: dict[str, Any], name: str) -> None:
    keys = ("seed", "val_fraction", "patch_size", "ignore_index", "classes", "validation")
    changed = [
        f"{k} {before[k]!r} -> {now[k]!r}" for k in keys if k in before and before[k] != now[k]
    ]
    if changed:
        warnings.warn(
            f"resuming {name} with other settings than it was trained with: "
            f"{', '.join(changed)} (the validation split may differ)",
            stacklevel=4,
        )
