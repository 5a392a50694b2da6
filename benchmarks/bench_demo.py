"""``napari-res101unet demo`` for several seeds: the figures a newcomer sees, how much they
move from seed to seed, and how long each run takes.

Usage::

    python benchmarks/bench_demo.py                      # seeds 0 1 2, one after the other
    python benchmarks/bench_demo.py --seeds 0 1 2 --json bench_results/demo.json \
        --markdown bench_results/demo.md             # the page the docs include
    python benchmarks/bench_demo.py --render bench_results/demo.json --markdown demo.md

Each seed runs the real command in a fresh process (``python -m napari_res101unet.cli demo
--seed S --no-viewer``) with a model folder of its own (a temporary one: the user's demo
model is left alone), so its output is exactly what a user sees. The script checks the
demo's promise for each seed: IoU >= 0.75 over all pixels of the held-out slices and no
held-out slice below 0.5 (issue 25). It prints each run's output and a table, and writes
everything to ``--json`` (no absolute paths): per seed the scores and times, the output,
and the machine (CPU model, threads, load average before and after, date, versions).
``--jobs N`` runs N seeds at once (a busy machine's shortcut: the times are then not a
single run's). ``--markdown`` writes the runs as a page section (a table, then each run's
command and output), which ``docs/getting-started.md`` includes; ``--render JSON`` writes
it from an earlier result without running anything. Exit status 1 when a seed misses the
promise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _portable import portable

ALL_PIXELS_MIN = 0.75
SLICE_MIN = 0.5
ROW = re.compile(r"^\s+(\S.*?)\s+(\d\.\d{3})\s+(\d\.\d{3})\s*$")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="demo --steps (default: its own)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="seeds run at once (default 1)")
    p.add_argument("--json", type=Path, default=Path("bench_results/demo.json"))
    p.add_argument("--keep", type=Path, default=None, help="keep each seed's output folder here")
    p.add_argument("--markdown", type=Path, default=None, help="also write the runs as markdown")
    p.add_argument("--render", type=Path, default=None, help="only render this JSON result")
    args = p.parse_args(argv)
    if args.render is not None:
        result = json.loads(args.render.read_text())
        _write_markdown(args.markdown or args.render.with_suffix(".md"), result)
        return 0 if result["passed"] else 1
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be 1 or more, got {args.jobs}")
    machine = {"before": _machine()}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda s: _run(s, args, Path(tmp)), args.seeds))
    machine["load_after"] = os.getloadavg()
    for run in runs:
        print(f"\n$ {run['command']}\n{run['output']}")
    _table(runs)
    ok = all(run["passed"] for run in runs)
    result = {"date": dt.date.today().isoformat(), "jobs": args.jobs, "machine": machine,
              "promise": {"all_pixels_iou_min": ALL_PIXELS_MIN, "slice_iou_min": SLICE_MIN},
              "passed": ok, "runs": runs}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown is not None:
        _write_markdown(args.markdown, result)
    print(f"\nwritten: {portable(args.json)}; every seed passed: {ok}")
    return 0 if ok else 1


def _run(seed: int, args: argparse.Namespace, tmp: Path) -> dict:
    out = (args.keep or tmp) / f"seed{seed}"
    cmd = ["demo", "--seed", str(seed), "--no-viewer", "--device", args.device]
    cmd += [] if args.steps is None else ["--steps", str(args.steps)]
    env = {**os.environ, "NAPARI_RES101UNET_MODELS": str(tmp / f"models{seed}")}
    if args.jobs > 1:  # seeds side by side: one thread each, not threads fighting for cores
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "napari_res101unet.cli", *cmd, "-o", str(out)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    text = done.stdout.replace(str(tmp), "<tmp>").replace(str(out), portable(out))
    scores = parse_scores(text)
    trained = re.search(r"trained in (\d+) s", text)
    slices = [row["iou"] for row in scores if row["name"] != "all pixels"]
    pooled = next((row["iou"] for row in scores if row["name"] == "all pixels"), None)
    passed = (done.returncode == 0 and pooled is not None and pooled >= ALL_PIXELS_MIN
              and len(slices) == 2 and min(slices) >= SLICE_MIN)  # fmt: skip
    return {
        "seed": seed,
        "command": "napari-res101unet " + " ".join(cmd),
        "returncode": done.returncode,
        "scores": scores,
        "all_pixels_iou": pooled,
        "slice_ious": slices,
        "train_seconds": int(trained[1]) if trained else None,
        "wall_seconds": round(wall, 1),
        "passed": passed,
        "output": text.strip(),
        "stderr_tail": done.stderr.replace(str(tmp), "<tmp>")[-2000:] if done.returncode else "",
    }


def parse_scores(text: str) -> list[dict]:
    """The rows of the demo's score table: ``[{"name", "iou", "dice"}]``."""
    if "held-out slice" not in text:
        return []
    table = text.split("held-out slice", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    rows = [ROW.match(line) for line in table]
    return [{"name": m[1], "iou": float(m[2]), "dice": float(m[3])} for m in rows if m]


def _table(runs: list[dict]) -> None:
    print("\n" + "\n".join(table_lines(runs)))


def table_lines(runs: list[dict]) -> list[str]:
    """A markdown table of the runs: seed, held-out slice IoUs, all-pixel IoU, times."""
    lines = [
        "| seed | held-out slice IoUs | all-pixel IoU | trained (s) | wall (s) | promise kept |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        ious = " / ".join(f"{v:.3f}" for v in r["slice_ious"])
        pooled = "-" if r["all_pixels_iou"] is None else f"{r['all_pixels_iou']:.3f}"
        lines.append(f"| {r['seed']} | {ious} | {pooled} | {r['train_seconds']} | "
                     f"{r['wall_seconds']:.0f} | {'yes' if r['passed'] else 'no'} |")  # fmt: skip
    return lines


def _write_markdown(path: Path, result: dict) -> None:
    """The runs as a section of a page: machine, table, then each run's output."""
    m = result["machine"]
    before, after = m["before"]["load_before"], m["load_after"]
    jobs = result["jobs"]
    at_once = "one after the other" if jobs == 1 else f"{jobs} at once, 1 CPU thread each"
    lines = [
        f"- **Command**: `napari-res101unet demo --seed S --no-viewer` for S in "
        f"{', '.join(str(r['seed']) for r in result['runs'])} ({at_once}; "
        "`python benchmarks/bench_demo.py`)",
        f"- **Date**: {result['date']}",
        f"- **Machine**: {m['before']['cpu']} ({m['before']['cpus']} cores), "
        f"{m['before'].get('system', '')}, torch {m['before']['torch']}, Python "
        f"{m['before']['python']}",
        f"- **Load average** (1, 5, 15 min) before: {', '.join(f'{v:.1f}' for v in before)}; "
        f"after: {', '.join(f'{v:.1f}' for v in after)}",
        "",
        *table_lines(result["runs"]),
        "",
    ]
    for i, r in enumerate(result["runs"]):
        block = ["```text", *r["output"].splitlines(), "```"]
        if i == 0:  # the first run shown, the others folded (pymdownx.details)
            lines += [f"`{r['command']}`:", "", *block, ""]
        else:
            lines += [f'??? example "`{r["command"]}`"', ""]
            lines += [f"    {line}".rstrip() for line in block] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _machine() -> dict:
    import torch

    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "system": platform.system(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
