"""Progress on a terminal, drawn by tqdm: a training run (:func:`expected_time`, a bar of
steps, epoch lines) and ``segment`` over files and blocks (:class:`FileBar`).

Bars go to stderr and only when it is a terminal; the lines a log keeps (epochs, one per
file) are printed either way, above the bar (``tqdm.write``). No torch on import (the
device is only described).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

CPU_SECONDS_PER_STEP = 2.7
"""One training step of Res101_UNet (batch 4, patch 256) on 2 CPU threads: 2.5-3.0 s
measured on an AMD EPYC with ``demo --steps 4``; scaled by the thread count elsewhere."""
CPU_REFERENCE_THREADS = 2
OVERHEAD_SECONDS = 15.0  # building the model, validation, scoring and writing the outputs


def expected_time(
    steps: int | None,
    minutes: float | None,
    device: Any,
    seconds_per_step: float = CPU_SECONDS_PER_STEP,
) -> str:
    """One line saying how long training should take, printed before it starts
    (``seconds_per_step``: one step on :data:`CPU_REFERENCE_THREADS` idle CPU threads)."""
    if steps is None:
        return f"expected: {minutes:g} min of training (a time budget), then scoring"
    if getattr(device, "type", "cpu") != "cpu":
        cpu = _minutes(steps * seconds_per_step + OVERHEAD_SECONDS)
        return (
            f"expected: well under the {cpu} that 2 CPU threads take; "
            "the bar shows the time left after a few steps"
        )
    import torch

    threads = max(1, torch.get_num_threads())
    per_step = seconds_per_step * CPU_REFERENCE_THREADS / threads
    seconds = steps * per_step + OVERHEAD_SECONDS
    basis = f"{seconds_per_step} s per step on {CPU_REFERENCE_THREADS} idle CPU threads"
    if threads != CPU_REFERENCE_THREADS:
        basis += f", scaled to {threads}"
    return f"expected: about {_minutes(seconds)} ({basis}; longer on a busy machine)"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class StepBar:
    """Shows a training run: a bar of steps (or of the time budget) and one line per epoch.

    The bar (steps done, elapsed, time left, the loss) is drawn on ``stream`` (stderr)
    when it is a terminal; epoch lines go to stdout, so piped output holds the epoch lines
    and no bar. Use as a context manager and pass :meth:`event` as ``train``'s
    ``callback``. ``line`` formats an epoch event (default :meth:`epoch_line`). Without
    ``steps`` or ``minutes``, the bar's total is the run's planned steps (from its events).
    """

    def __init__(
        self,
        steps: int | None,
        minutes: float | None,
        stream: TextIO | None = None,
        line: Callable[[Any], str] | None = None,
    ):
        self.steps, self.minutes = steps, minutes
        self.stream = stream or sys.stderr
        self.line = line or self.epoch_line
        self.started = time.perf_counter()
        self.step = 0
        self.bar = _bar(steps, "step", self.stream)

    def __enter__(self) -> StepBar:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def event(self, event) -> None:
        """``train``'s callback: steps move the bar, epochs print a line."""
        if event.kind == "step":
            if self.bar.total is None and self.minutes is None and event.steps_total:
                self.bar.total = event.steps_total
            self.bar.set_postfix_str(self._postfix(event), refresh=False)
            self.bar.update(event.step - self.step)
            self.step = event.step
        elif event.kind == "epoch":
            _write(self.line(event), sys.stdout)

    def epoch_line(self, event) -> str:
        iou = f"  val IoU {event.val_iou:.3f}" if event.val_iou is not None else ""
        of = f"/{event.epochs}" if self.steps is not None else ""
        return (
            f"  epoch {event.epoch:>3}{of}  step {self.step:>4}  loss {event.train_loss:.4f}"
            f"{iou}  ({event.seconds:.0f} s)"
        )

    def _postfix(self, event) -> str:
        loss = f"loss {event.loss:.4f}" if getattr(event, "loss", None) is not None else ""
        if self.steps is not None or not self.minutes:
            return loss
        left = max(0.0, self.minutes * 60 - (time.perf_counter() - self.started))
        return ", ".join(filter(None, [loss, f"about {_minutes(left)} left of the budget"]))


class FileBar:
    """Progress of ``segment`` over files: files done of all, elapsed and time left, and
    the current file's tiles (or blocks).

    Drawn on ``stream`` (stderr) when it is a terminal; otherwise silent (the per-file
    lines say it all in a log). :meth:`line` prints a line above the bar; :meth:`tiles` is
    the ``progress(done, total)`` callback of one file's segmentation.
    """

    def __init__(self, total: int, stream: TextIO | None = None):
        self.name, self.drawn = "", 0.0
        self.bar = _bar(total, "file", stream or sys.stderr)

    def __enter__(self) -> FileBar:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def start(self, name: str) -> None:
        """A file begins."""
        self.name = name
        self.bar.set_postfix_str(name)

    def tiles(self, done: int, total: int) -> None:
        self.bar.set_postfix_str(f"{self.name}: {done}/{total} tiles", refresh=False)
        now = time.monotonic()
        if done == total or now - self.drawn >= 0.1:  # tqdm's own redraw interval
            self.bar.refresh()
            self.drawn = now

    def advance(self, count: int = 1) -> None:
        """``count`` more files finished (done, skipped or failed)."""
        self.name = ""
        self.bar.set_postfix_str("", refresh=False)
        self.bar.update(count)

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Print ``text`` (to ``stream``, stdout by default) above the bar."""
        _write(text, stream or sys.stdout)


def _bar(total: int | None, unit: str, stream: TextIO) -> tqdm:
    """A tqdm bar on ``stream``, off unless ``stream`` is a terminal, erased when closed."""
    live = bool(getattr(stream, "isatty", lambda: False)())
    return tqdm(
        total=total, unit=unit, file=stream, disable=not live, leave=False, dynamic_ncols=True
    )


def _write(text: str, stream: TextIO) -> None:
    """``text`` as a line on ``stream``, with any bar lifted over it."""
    tqdm.write(text, file=stream)
    stream.flush()
