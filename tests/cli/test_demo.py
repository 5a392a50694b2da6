"""``demo``: a fixed number of seeded steps gives the same held-out figures run after run;
it ends with the command for the user's own image and opens napari only on a display."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from napari_res101unet.cli import demo_view, main
from napari_res101unet.cli.demo import (
    DEMO_SCALE,
    DEMO_SECONDS_PER_STEP,
    DEMO_STEPS,
    STEPS_PER_EPOCH,
    plan_steps,
    reduce_scale,
)
from napari_res101unet.cli.progress import StepBar, expected_time


def _demo(tmp_path, name: str, *args: str) -> tuple[str, np.ndarray]:
    out = io.StringIO()
    argv = ["demo", "--steps", "2", "--device", "cpu", "--no-viewer", "-o", str(tmp_path / name)]
    with redirect_stdout(out):
        code = main([*argv, *args])
    assert code == 0, out.getvalue()
    labels = tifffile.imread(tmp_path / name / demo_view.FILES["labels"])
    return out.getvalue(), labels


def _scores(text: str) -> list[str]:
    table = text.split("held-out slice", 1)[1].split("labels and a picture", 1)[0]
    return [line.strip() for line in table.strip().splitlines()[1:]]


@pytest.fixture
def no_viewer_process(monkeypatch):
    """Fail the test if the demo tries to start napari."""
    calls = []
    monkeypatch.setattr(demo_view.subprocess, "run", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.slow
def test_two_runs_of_the_same_steps_give_the_same_figures_and_labels(tmp_path, no_viewer_process):
    first, labels_a = _demo(tmp_path, "a")
    second, labels_b = _demo(tmp_path, "b")
    assert "at 128x128, for 2 steps (seed 0)" in first
    assert re.search(r"expected: about \d+ s", first)
    assert re.search(r"epoch\s+1/1\s+step\s+2\s+loss \d\.\d{4}", first)
    rows = _scores(first)
    assert len(rows) == 3 and rows[-1].startswith("all pixels")  # 2 held-out slices + all
    assert all(re.fullmatch(r"\S.*?\s+\d\.\d{3}\s+\d\.\d{3}", row) for row in rows)
    assert rows == _scores(second)
    assert "replacing the earlier demo model" in second  # a rerun replaces its own model
    assert labels_a.shape == (2, 256, 256)  # scored and written at the sample's resolution
    np.testing.assert_array_equal(labels_a, labels_b)
    epoch = [line for line in first.splitlines() if "epoch" in line and "loss" in line]
    same = [line for line in second.splitlines() if "epoch" in line and "loss" in line]
    assert [e.split("(")[0] for e in epoch] == [s.split("(")[0] for s in same]  # same loss
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written == sorted(demo_view.FILES.values())
    image = tifffile.imread(tmp_path / "a" / demo_view.FILES["image"])
    assert image.shape == (2, 256, 256) and image.dtype == np.uint8
    assert first.rstrip().endswith("napari-res101unet segment YOUR_IMAGE -m liver-demo -o "
                                   "liver-demo-labels/")  # fmt: skip
    assert "opening the result in napari" not in first and no_viewer_process == []


def test_steps_plan_whole_epochs_of_at_most_16():
    assert plan_steps(DEMO_STEPS) == (DEMO_STEPS // STEPS_PER_EPOCH, STEPS_PER_EPOCH)
    for steps in (1, 2, 15, 16, 17, 63, 100, 1000):
        epochs, per_epoch = plan_steps(steps)
        assert per_epoch <= 16 and steps <= epochs * per_epoch < steps + epochs


def test_the_default_run_is_planned_to_take_about_three_minutes():
    cpu = SimpleNamespace(type="cpu")
    seconds = DEMO_STEPS * DEMO_SECONDS_PER_STEP
    assert 120 <= seconds <= 200
    line = expected_time(DEMO_STEPS, None, cpu, DEMO_SECONDS_PER_STEP)
    assert f"{DEMO_SECONDS_PER_STEP} s per step" in line


def test_the_network_sees_the_sample_at_a_reduced_scale():
    images = np.zeros((3, 256, 256), np.uint8)
    images[:, 64:192, 64:192] = 200
    labels = (images > 0).astype(np.uint8)
    small, small_labels = reduce_scale(images, labels, DEMO_SCALE)
    assert small.shape == small_labels.shape == (3, 128, 128)
    assert small.dtype == np.uint8 and set(np.unique(small_labels)) == {0, 1}
    assert small_labels.sum() == labels.sum() // DEMO_SCALE**2  # the square keeps its area


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


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ""}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({}, "freebsd14", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_a_display_is_there_only_with_display_or_wayland_on_linux(environ, platform, expected):
    assert demo_view.display_available(environ, platform) is expected


def test_the_viewer_runs_in_a_process_of_its_own(tmp_path, monkeypatch, capsys):
    calls = []
    done = SimpleNamespace(returncode=0)
    monkeypatch.setattr(demo_view.subprocess, "run", lambda cmd, **k: calls.append(cmd) or done)
    assert demo_view.open_viewer(tmp_path, "liver-demo") is True
    assert calls == [demo_view.viewer_command(tmp_path, "liver-demo")]
    assert calls[0][1:] == ["-m", "napari_res101unet.cli.demo_view", str(tmp_path), "liver-demo"]
    assert "opening the result in napari" in capsys.readouterr().out
    done.returncode = 1
    assert demo_view.open_viewer(tmp_path, "liver-demo") is False
    assert "napari did not open (exit 1" in capsys.readouterr().out


def test_the_viewer_process_starts_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, napari_res101unet.cli.demo_view; "
        "print(sorted(m for m in ('torch', 'qtpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def _fake_run(monkeypatch, tmp_path, environ: dict) -> list:
    """Run the demo's ending (after training) with ``environ`` and no real napari."""
    from napari_res101unet.cli import demo

    for key in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(demo_view.sys, "platform", "linux")
    opened = []
    monkeypatch.setattr(demo_view, "open_viewer", lambda *a: opened.append(a) or True)
    monkeypatch.setattr(demo, "_train_and_segment", _tiny_result)
    return opened


def _tiny_result(args, sample, device):
    test_idx = sample["split"]["test"]
    return np.asarray(sample["labels"][test_idx])


@pytest.mark.parametrize(
    ("environ", "flag", "opens"),
    [
        ({}, [], False),
        ({"DISPLAY": ":99"}, ["--no-viewer"], False),
        ({"DISPLAY": ":99"}, [], True),
    ],
)
def test_napari_opens_at_the_end_only_on_a_display_without_no_viewer(
    tmp_path, monkeypatch, capsys, environ, flag, opens
):
    opened = _fake_run(monkeypatch, tmp_path, environ)
    out_dir = tmp_path / "out"
    assert main(["demo", "--device", "cpu", "-o", str(out_dir), *flag]) == 0
    assert opened == ([(out_dir, "liver-demo")] if opens else [])
    out = capsys.readouterr().out
    assert re.search(r"all pixels\s+1\.000\s+1\.000", out)  # the truth scores itself perfectly
    assert "napari-res101unet segment YOUR_IMAGE -m liver-demo" in out
    assert Path(out_dir / demo_view.FILES["overview"]).is_file()


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


def test_bench_demo_reads_the_score_table_and_writes_the_docs_section(tmp_path, monkeypatch):
    from conftest import REPO

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_demo

    text = (
        "trained in 150 s\n\nheld-out slice        IoU     Dice\n"
        "  mirrored_10097_127 0.905   0.950\n  flipped_10039_120  0.929   0.963\n"
        "  all pixels         0.914   0.955\n\nlabels and a picture ..."
    )
    rows = bench_demo.parse_scores(text)
    assert [r["name"] for r in rows] == ["mirrored_10097_127", "flipped_10039_120", "all pixels"]
    assert rows[-1] == {"name": "all pixels", "iou": 0.914, "dice": 0.955}
    run = {"seed": 0, "command": "napari-res101unet demo --seed 0", "slice_ious": [0.905, 0.4],
           "all_pixels_iou": 0.8, "train_seconds": 150, "wall_seconds": 170.2,
           "passed": False, "output": text}  # fmt: skip
    machine = {"cpu": "x", "cpus": 2, "torch": "2", "python": "3.11", "load_before": [1, 2, 3]}
    result = {"date": "2026-12-03", "jobs": 1, "passed": False, "runs": [run, {**run, "seed": 1}],
              "machine": {"before": machine, "load_after": [1, 1, 1]}}  # fmt: skip
    bench_demo._write_markdown(tmp_path / "demo.md", result)
    page = (tmp_path / "demo.md").read_text()
    assert "| 0 | 0.905 / 0.400 | 0.800 | 150 | 170 | no |" in page
    assert "one after the other" in page and page.count("```text") == 2
    assert '??? example "`napari-res101unet demo --seed 0`"' in page  # later runs folded
