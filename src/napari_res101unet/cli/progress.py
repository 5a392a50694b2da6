"""Progress on a terminal: a training run (an expected time, a bar of steps, epoch lines)
and ``segment`` over files (:class:`FileBar`).

No torch on import (the device is only described).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, TextIO

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

    On a terminal the bar is redrawn in place on ``stream`` (stderr); epoch lines go to
    stdout, so piped output holds the epoch lines and no bar. Use as a context manager
    and pass :meth:`event` as ``train``'s ``callback``.
    """

    def __init__(self, steps: int | None, minutes: float | None, stream: TextIO | None = None):
        self.steps, self.minutes = steps, minutes
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.drawn = False
        self.step = 0

    def __enter__(self) -> StepBar:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._clear()

    def event(self, event) -> None:
        """``train``'s callback: steps move the bar, epochs print a line."""
        if event.kind == "step":
            self.step = event.step
            if self.live:
                self._draw(event.step)
        elif event.kind == "epoch":
            self._clear()
            print(self.epoch_line(event), flush=True)

    def epoch_line(self, event) -> str:
        iou = f"  val IoU {event.val_iou:.3f}" if event.val_iou is not None else ""
        of = f"/{event.epochs}" if self.steps is not None else ""
        return (
            f"  epoch {event.epoch:>3}{of}  step {self.step:>4}  loss {event.train_loss:.4f}"
            f"{iou}  ({event.seconds:.0f} s)"
        )

    def text(self, step: int, width: int = 28) -> str:
        """``[#####.....]  12/64 steps  31 s, about 2 min left``."""
        elapsed = time.perf_counter() - self.started
        if self.steps is None:
            total = (self.minutes or 0) * 60
            fraction, count = min(1.0, elapsed / total) if total else 0.0, f"step {step}"
            left = max(0.0, total - elapsed)
        else:
            fraction, count = min(1.0, step / self.steps), f"{step}/{self.steps} steps"
            left = elapsed / step * (self.steps - step) if step else None
        done = round(fraction * width)
        eta = "" if left is None else f", about {_minutes(left)} left"
        return f"[{'#' * done}{'.' * (width - done)}] {count}  {elapsed:.0f} s{eta}"

    def _draw(self, step: int) -> None:
        columns = shutil.get_terminal_size((80, 20)).columns
        self.stream.write("\r" + self.text(step)[: columns - 1])
        self.stream.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            _erase_line(self.stream)
            self.drawn = False


class FileBar:
    """Progress of ``segment`` over files: ``[####....] 3/16 files  name: 12/40 tiles``.

    Redrawn in place on ``stream`` (stderr) when it is a terminal, with the time spent
    and, after the first file, the time left; otherwise silent (the per-file lines say it
    all in a log). :meth:`line` prints a line above the bar; :meth:`tiles` is the
    ``progress(done, total)`` callback of one file's segmentation.
    """

    def __init__(self, total: int, stream: TextIO | None = None):
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.name, self.tile_text = "", ""
        self.drawn = False

    def __enter__(self) -> FileBar:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._clear()

    def start(self, name: str) -> None:
        """A file begins."""
        self.name, self.tile_text = name, ""
        self._draw()

    def tiles(self, done: int, total: int) -> None:
        self.tile_text = f"{done}/{total} tiles"
        self._draw()

    def advance(self, count: int = 1) -> None:
        """``count`` more files finished (done, skipped or failed)."""
        self.done += count
        self.name, self.tile_text = "", ""
        self._draw()

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Print ``text`` (to ``stream``, stdout by default) above the bar."""
        self._clear()
        print(text, file=stream or sys.stdout, flush=True)
        self._draw()

    def text(self, width: int = 24) -> str:
        elapsed = time.perf_counter() - self.started
        fraction = self.done / self.total if self.total else 1.0
        filled = round(fraction * width)
        left = ""
        if 0 < self.done < self.total:
            left = f", about {_minutes(elapsed / self.done * (self.total - self.done))} left"
        current = f"  {self.name}: {self.tile_text}" if self.name else ""
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files  "
            f"{elapsed:.0f} s{left}{current}"
        )

    def _draw(self) -> None:
        if not self.live:
            return
        columns = shutil.get_terminal_size((80, 20)).columns
        self.stream.write("\r" + self.text()[: columns - 1].ljust(columns - 1))
        self.stream.flush()
        self.drawn = True

    def _clear(self) -> None:
        if self.drawn:
            _erase_line(self.stream)
            self.drawn = False


def _erase_line(stream) -> None:
    """Blank the terminal line a bar was drawn on and return to its start."""
    columns = shutil.get_terminal_size((80, 20)).columns
    stream.write("\r" + " " * (columns - 1) + "\r")
    stream.flush()
