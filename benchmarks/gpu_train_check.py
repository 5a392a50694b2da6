"""The prepared multi-GPU training check (issue #12): 1 GPU against all local GPUs.

On any CUDA machine: ``train()`` of the real Res101_UNet (random init, seeded synthetic
512x512 images: speed does not depend on weights or content) with mixed precision and
``--workers`` DataLoader workers, on one GPU and then with one DDP rank per GPU (NCCL,
torch's launcher), the same per-GPU batch. Reports images/s, the scaling
(N-GPU images/s / (N x 1-GPU images/s)) and the GPU utilisation sampled with nvidia-smi
(or pynvml) while each run trains.

Usage::

    python benchmarks/gpu_train_check.py --out bench_results/gpu_train
    python benchmarks/gpu_train_check.py --quick --out /tmp/gpu_train

Writes ``gpu_train_check.json`` and ``gpu_train_check.md`` to ``--out``. Without CUDA it
says so and exits with code 2 (nothing measured).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

NO_CUDA = 2


class Utilisation:
    """Samples every GPU's utilisation (%) twice a second while it runs."""

    def __init__(self) -> None:
        self.samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Utilisation:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            got = _read_utilisation()
            if got:
                self.samples.append(got)

    def mean(self) -> list[float] | None:
        if not self.samples:
            return None
        return [round(float(v), 1) for v in np.mean(np.array(self.samples), axis=0)]


def _read_utilisation() -> list[float]:
    try:
        import pynvml

        pynvml.nvmlInit()
        n = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
        return [float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles]
    except Exception:
        pass
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        return [float(v) for v in out.stdout.split()]
    except ValueError:
        return []


def _pairs(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    pairs = []
    for _ in range(n):
        labels = np.zeros((size, size), np.uint8)
        for _ in range(6):
            cy, cx = rng.integers(40, size - 40, 2).tolist()
            r = int(rng.integers(10, 40))
            labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
        image = (rng.normal(80, 20, (size, size, 3)) + 100 * labels[..., None]).clip(0, 255)
        pairs.append((image.astype(np.uint8), labels))
    return pairs


def _train(pairs, kw: dict) -> dict:
    import os

    import napari_res101unet as nr

    steps: list[float] = []

    def clock(event) -> None:
        if event.kind == "step":
            steps.append(time.perf_counter())

    nr.train(pairs, callback=clock, **kw)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    t = steps[3:] if len(steps) > 5 else steps
    if len(t) < 2:
        return {"images_per_s": None}
    return {"images_per_s": kw["batch_size"] * world * (len(t) - 1) / (t[-1] - t[0])}


def measure(cfg: dict, gpus: int) -> dict:
    from napari_res101unet.training.local_ranks import launch

    pairs = _pairs(8, 512)
    kw = {
        "patch_size": cfg["patch"], "batch_size": cfg["batch"], "epochs": 1,
        "steps_per_epoch": cfg["steps"], "val_fraction": 0.0, "mixed_precision": True,
        "workers": cfg["workers"], "learning_rate": 1e-3,
    }  # fmt: skip
    with Utilisation() as util:
        if gpus == 1:
            result = _train(pairs, {**kw, "device": "cuda:0"})
        else:
            result = launch(_train, (pairs, {**kw, "device": "cuda"}), nproc=gpus, threads=2)[0]
    return {**result, "gpus": gpus, "gpu_utilisation_percent": util.mean()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "bench_results" / "gpu_train")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batch", type=int, default=8, help="per GPU")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "no CUDA device here: this check needs one or more GPUs. Nothing was measured.",
            file=sys.stderr,
        )
        return NO_CUDA
    count = torch.cuda.device_count()
    cfg = {"patch": 256 if args.quick else 512, "batch": args.batch,
           "steps": 10 if args.quick else 60, "workers": args.workers}  # fmt: skip
    runs = [measure(cfg, 1)]
    if count > 1:
        runs.append(measure(cfg, count))
    one = runs[0]["images_per_s"]
    result = {
        "devices": [torch.cuda.get_device_name(i) for i in range(count)],
        "torch": torch.__version__,
        "settings": cfg,
        "runs": runs,
        "scaling": (runs[-1]["images_per_s"] / (count * one)) if count > 1 and one else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_train_check.json").write_text(json.dumps(result, indent=2))
    lines = ["| GPUs | images/s | GPU utilisation % |", "|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['gpus']} | {r['images_per_s']:.1f} | {r['gpu_utilisation_percent']} |")
    if result["scaling"] is not None:
        lines.append(f"\nScaling efficiency at {count} GPUs: {result['scaling']:.2f}")
    table = "\n".join(lines) + "\n"
    (args.out / "gpu_train_check.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
