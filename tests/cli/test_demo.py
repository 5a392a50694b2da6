"""``demo``: a fixed number of seeded steps gives the same held-out figures run after run."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from napari_res101unet.cli import main
from napari_res101unet.cli.demo import DEMO_STEPS, plan_steps
from napari_res101unet.cli.progress import StepBar, expected_time


def _demo(tmp_path, name: str, *args: str) -> tuple[str, np.ndarray]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["demo", "--steps", "2", "--device", "cpu", "-o", str(tmp_path / name), *args])
    assert code == 0, out.getvalue()
    labels = tifffile.imread(tmp_path / name / "liver_ct_test_labels.tif")
    return out.getvalue(), labels


def _scores(text: str) -> list[str]:
    table = text.split("held-out slice", 1)[1].split("labels and a picture", 1)[0]
    return [line.strip() for line in table.strip().splitlines()[1:]]


@pytest.mark.slow
def test_two_runs_of_the_same_steps_give_the_same_figures_and_labels(tmp_path):
    first, labels_a = _demo(tmp_path, "a")
    second, labels_b = _demo(tmp_path, "b")
    assert "for 2 steps (seed 0)" in first
    assert re.search(r"expected: about \d+ s", first)
    assert re.search(r"epoch\s+1/1\s+step\s+2\s+loss \d\.\d{4}", first)
    assert len(_scores(first)) == 3  # two held-out slices and all pixels
    assert _scores(first) == _scores(second)
    assert "replacing the earlier demo model" in second  # a rerun replaces its own model
    assert labels_a.shape == (2, 256, 256)
    np.testing.assert_array_equal(labels_a, labels_b)
    epoch = [line for line in first.splitlines() if "epoch" in line and "loss" in line]
    same = [line for line in second.splitlines() if "epoch" in line and "loss" in line]
    assert [e.split("(")[0] for e in epoch] == [s.split("(")[0] for s in same]  # same loss


def test_steps_plan_whole_epochs_of_at_most_16():
    assert plan_steps(DEMO_STEPS) == (4, 16)
    for steps in (1, 2, 15, 16, 17, 63, 100, 1000):
        epochs, per_epoch = plan_steps(steps)
        assert per_epoch <= 16 and steps <= epochs * per_epoch < steps + epochs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--steps must be a positive whole number, got 0"),
        (["--minutes", "-1"], "--minutes must be positive, got -1"),
        (["--seed", "-3"], "--seed must be 0 or more, got -3"),
    ],
)
def test_bad_budget_is_refused_in_one_line(args, message, capsys):
    assert main(["demo", *args]) == 1
    assert f"error: {message}" in capsys.readouterr().err


def test_steps_and_minutes_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--steps", "4", "--minutes", "1"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_expected_time_is_said_before_training():
    cpu = SimpleNamespace(type="cpu")
    assert expected_time(DEMO_STEPS, None, cpu).startswith("expected: about ")
    assert "2.7 s per step" in expected_time(DEMO_STEPS, None, cpu)
    assert "time budget" in expected_time(None, 3.0, cpu)
    assert "time left" in expected_time(DEMO_STEPS, None, SimpleNamespace(type="cuda"))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_step_bar_draws_steps_on_a_terminal_and_prints_epochs(capsys):
    stream = _Tty()
    with StepBar(8, None, stream) as bar:
        for step in range(1, 5):
            bar.event(SimpleNamespace(kind="step", step=step, loss=0.75))
        assert "4/8" in str(bar.bar) and "loss 0.7500" in str(bar.bar)  # tqdm's bar
        assert stream.getvalue().startswith("\r  0%|          | 0/8 [")  # drawn at once
        epoch = dict(epoch=1, epochs=2, train_loss=0.5, val_iou=0.25, seconds=3.0)
        bar.event(SimpleNamespace(kind="epoch", **epoch))
    assert (
        capsys.readouterr().out == "  epoch   1/2  step    4  loss 0.5000  val IoU 0.250  (3 s)\n"
    )
    assert stream.getvalue().endswith("\r")  # the bar is wiped at the end


def test_step_bar_of_a_time_budget_says_the_time_left():
    stream = _Tty()
    with StepBar(None, 2.0, stream) as bar:
        bar.event(SimpleNamespace(kind="step", step=3, steps_total=99, loss=0.5))
        assert bar.bar.total is None and "3step" in str(bar.bar)
        assert "about 2 min left of the budget" in str(bar.bar)


def test_step_bar_stays_silent_when_piped():
    stream = io.StringIO()
    with StepBar(8, None, stream) as bar:
        bar.event(SimpleNamespace(kind="step", step=3, loss=0.5))
    assert stream.getvalue() == ""
