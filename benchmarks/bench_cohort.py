"""Cohort throughput: ``segment --workers 2`` (a dask LocalCluster of 2 processes, 1 thread
each) against one process with 2 threads, on 16 GlaS-size files.

Both run the real command (``napari-res101unet segment FOLDER -m CKPT -o OUT``) in a fresh
Python process, timed from outside: reading, segmenting and writing every file, the
provenance sidecars, loading the model (once per process, or once per worker) and, for
the distributed path, starting and stopping the cluster. The single process calls
``torch.set_num_threads(2)``; dask's nanny gives each worker process one thread
(``OMP_NUM_THREADS=1``). The model is a real Res101_UNet, randomly initialised (speed does
not depend on the weights), saved as a checkpoint in a temporary folder. Files: the first
``--files`` (16) GlaS testA images from ``--data`` (``../shared/data``), else seeded RGB
noise of the GlaS size (522 x 775). The two runs alternate ``--repeats`` times (medians).

Reports files/s of each, the ratio (workers / one process; target >= 0.9 on a 2-core
machine: the overhead of the distributed path) and the pixels whose labels differ between
the two (expected 0: same model, same tiles). Writes ``cohort.json`` and ``cohort.md``
under ``--out`` (no absolute paths). ``--quick``: 4 small noise files, one repeat.

    python benchmarks/bench_cohort.py                 # the full run (a few minutes)
    python benchmarks/bench_cohort.py --quick         # checks that it works
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _portable import REPO, portable, portable_settings

GLAS_SHAPE = (522, 775, 3)
SINGLE = (
    "import sys, torch; torch.set_num_threads(2); "
    "from napari_res101unet.cli import main; sys.exit(main(sys.argv[1:]))"
)


def prepare_files(data: Path | None, folder: Path, count: int, shape: tuple) -> str:
    """Copy the first ``count`` GlaS testA images of ``data`` into ``folder``; seeded
    noise of ``shape`` when ``data`` is None or has too few."""
    from napari_res101unet.io import write_image

    folder.mkdir(parents=True)
    glas = data / "glas" / "testA" / "images" if data is not None else None
    found = sorted(glas.glob("*.png"))[:count] if glas and glas.is_dir() else []
    if len(found) == count:
        for path in found:
            shutil.copy(path, folder / path.name)
        return f"GlaS testA ({portable(glas, data)})"
    rng = np.random.default_rng(0)
    for i in range(count):
        noise = rng.integers(0, 255, shape, dtype=np.uint8)
        write_image(folder / f"noise_{i:02d}.png", noise, rgb=True)
    return f"seeded RGB noise {shape[1]}x{shape[0]}"


def save_checkpoint(folder: Path) -> Path:
    import torch

    from napari_res101unet import build_model, save_model

    torch.manual_seed(0)
    return save_model(build_model(in_channels=3, classes=2), folder / "res101_unet.safetensors")


def run_once(kind: str, inputs: Path, model: Path, out: Path) -> tuple[float, float | None]:
    """``(wall seconds of one segment run in a fresh process, steady files/s)``: the
    steady rate counts the files finished after the first one, over the time from the
    first to the last finished file (no process start, model load or cluster start/stop)."""
    argv = ["segment", str(inputs), "-m", str(model), "-o", str(out), "--device", "cpu"]
    if out.exists():
        argv.append("--overwrite")
    if kind == "workers":
        cmd = [sys.executable, "-m", "napari_res101unet.cli", *argv, "--workers", "2"]
    else:
        cmd = [sys.executable, "-c", SINGLE, *argv]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:  # a file: a full stderr pipe would block
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=errors, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # each line as its file finishes
        )  # fmt: skip
        finished, lines = [], []
        for line in proc.stdout:  # one line per finished file, as it finishes
            lines.append(line)
            if " -> " in line:
                finished.append(time.perf_counter())
        proc.wait()
        errors.seek(0)
        err = errors.read()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{''.join(lines)[-2000:]}\n{err[-2000:]}")
    span = finished[-1] - finished[0] if len(finished) > 2 else 0.0
    return seconds, ((len(finished) - 1) / span if span > 0 else None)


def differing_pixels(one: Path, two: Path) -> tuple[int, int]:
    """(differing pixels, total pixels) over the label files of both runs."""
    from napari_res101unet.io import read_image

    differ = total = 0
    for path in sorted(one.glob("*_labels.png")):
        a, b = read_image(path).data, read_image(two / path.name).data
        differ += int(np.count_nonzero(a != b))
        total += a.size
    return differ, total


def bench(args: argparse.Namespace, work: Path) -> dict:
    shape = (96, 128, 3) if args.quick else GLAS_SHAPE
    count = 4 if args.quick else args.files
    data = None if args.quick else args.data  # quick: small noise files
    source = prepare_files(data, work / "inputs", count, shape)
    model = save_checkpoint(work)
    seconds: dict[str, list[float]] = {"single": [], "workers": []}
    steady: dict[str, list[float]] = {"single": [], "workers": []}
    for repeat in range(1 if args.quick else args.repeats):
        order = ("single", "workers") if repeat % 2 == 0 else ("workers", "single")
        for kind in order:
            wall, rate_now = run_once(kind, work / "inputs", model, work / kind)
            seconds[kind].append(wall)
            if rate_now is not None:
                steady[kind].append(rate_now)
            print(f"  {kind}: {wall:.1f} s, steady {rate_now or 0:.3f} files/s", flush=True)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    rate = {k: count / median[k] for k in median}
    steady_rate = {k: statistics.median(v) if v else None for k, v in steady.items()}
    steady_ratio = None
    if steady_rate["single"] and steady_rate["workers"]:
        steady_ratio = steady_rate["workers"] / steady_rate["single"]
    differ, total = differing_pixels(work / "single", work / "workers")
    return {
        "files": count,
        "source": source,
        "seconds": seconds,
        "files_per_s": rate,
        "ratio": rate["workers"] / rate["single"],
        "steady_files_per_s": steady_rate,
        "steady_ratio": steady_ratio,
        "target": 0.9,
        "differing_pixels": differ,
        "pixels": total,
    }


def hardware() -> dict:
    import dask
    import distributed
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
    }


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def table(r: dict) -> str:
    rate = r["files_per_s"]
    return "\n".join(
        [
            f"{r['files']} RGB files, {r['pixels'] / 1e6:.2f} MP in all ({r['source']}); CPU; "
            f"wall time of the whole command (median of {len(r['seconds']['single'])})",
            "",
            "| run | files/s | ratio to one process | target |",
            "|---|---|---|---|",
            f"| one process, 2 threads | {rate['single']:.3f} | 1.00 | |",
            f"| `--workers 2` (LocalCluster, 1 thread each) | {rate['workers']:.3f} | "
            f"{r['ratio']:.2f} | >= {r['target']} |",
            "",
            "Steady rate (files finished after the first, from the first to the last: no "
            "process start, model load or cluster start/stop): one process "
            f"{_f(r['steady_files_per_s']['single'])} files/s, `--workers 2` "
            f"{_f(r['steady_files_per_s']['workers'])} files/s, ratio {_f(r['steady_ratio'])}.",
            "",
            f"Labels differing between the two runs: {r['differing_pixels']} of "
            f"{r['pixels']} pixels.",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2, help="alternating pairs of runs")
    p.add_argument("--out", type=Path, default=REPO / "bench_results" / "cohort")
    p.add_argument("--quick", action="store_true", help="4 small files, one repeat")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_cohort_") as tmp:
        result = bench(args, Path(tmp))
    result["hardware"] = hardware()
    result["settings"] = portable_settings(vars(args), args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cohort.json").write_text(json.dumps(result, indent=2) + "\n")
    text = table(result)
    (args.out / "cohort.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
