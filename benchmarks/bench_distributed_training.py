"""Distributed and disk-backed training (issue #12), side by side in one run, on the CPU.

a. **DDP overhead**: 2 ranks (Gloo, 1 thread each, torch's launcher) against 1 process
   with 2 threads, the same per-rank batch and the same number of samples seen (the one
   process takes twice the steps): images/s and the loss per epoch. On a 2-core machine
   the ratio shows the cost of DDP's all-reduce, not a speed-up.
b. **From disk vs in RAM**: ``--size-gb`` (default 10) of int16 volumes (512x512 slices,
   uint8 labels) written as zarr in ``--workdir``, trained from disk with ``--workers``
   (default 2) DataLoader workers, against the same kind of data in RAM (the first
   ``--ram-gb`` of the volumes, default 2: the whole set does not fit in RAM). Targets:
   images/s ratio disk / RAM >= 0.9 and peak RSS (main process + workers) < 4 GiB. Each
   side runs in a fresh process, so its peak RSS is its own.

The data is synthetic (seeded noise with bright disks: speed does not depend on content);
the model is the real Res101_UNet, randomly initialised. Usage::

    python benchmarks/bench_distributed_training.py --workdir /scratch/b --out bench_results/ddp
    python benchmarks/bench_distributed_training.py --quick --workdir /tmp/b --out /tmp/b/out

Writes ``distributed_training.json`` and ``distributed_training.md`` to ``--out`` (no
absolute paths). ``--quick``: tiny patches, few steps, 0.05 GB: checks the script only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _portable import portable  # noqa: E402


def disks(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """int16 CT-like slices with bright disks (label 1), uint8 labels, ``shape`` (Z, Y, X)."""
    rng = np.random.default_rng(seed)
    z, y, x = shape
    yy, xx = np.mgrid[:y, :x]
    labels = np.zeros(shape, np.uint8)
    for s in range(z):
        for _ in range(3):
            cy, cx, r = rng.integers(40, y - 40), rng.integers(40, x - 40), rng.integers(8, 30)
            labels[s][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    image = rng.normal(0, 40, shape).astype(np.int16) + 120 * labels.astype(np.int16)
    return image, labels


class Clock:
    """A training callback: step times and epoch losses (rank 0's events)."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.epochs: list[float] = []

    def __call__(self, event) -> None:
        if event.kind == "step":
            self.steps.append(time.perf_counter())
        elif event.kind == "epoch":
            self.epochs.append(event.train_loss)

    def rate(self, images_per_step: int, skip: int = 2) -> float | None:
        """Images/s over the steps after the first ``skip`` (warm-up excluded); None on
        ranks other than 0 (which report nothing)."""
        t = self.steps[skip:] if len(self.steps) > skip + 2 else self.steps
        if len(t) < 2:
            return None
        return images_per_step * (len(t) - 1) / max(t[-1] - t[0], 1e-9)


def _train(pairs, kw: dict, threads: int) -> dict:
    import torch

    import napari_res101unet as nr

    torch.set_num_threads(threads)
    clock = Clock()
    nr.train(pairs, callback=clock, **kw)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return {
        "images_per_s": clock.rate(kw["batch_size"] * world),
        "epoch_losses": clock.epochs,
    }


def part_ddp(cfg: dict) -> dict:
    """2 Gloo ranks x 1 thread against 1 process x 2 threads, the same samples seen."""
    from napari_res101unet.training.local_ranks import launch

    size = cfg["image"]
    pairs = [tuple(a[0] for a in disks(i, (1, size, size))) for i in range(4)]
    base = {
        "patch_size": cfg["patch"], "batch_size": cfg["batch"], "epochs": cfg["epochs"],
        "device": "cpu", "learning_rate": 1e-3, "val_fraction": 0.0, "seed": 0,
    }  # fmt: skip
    single = _train(pairs, {**base, "steps_per_epoch": 2 * cfg["steps"]}, threads=2)
    ddp = launch(_train, (pairs, {**base, "steps_per_epoch": cfg["steps"]}, 1), nproc=2)[0]
    samples = 2 * cfg["steps"] * cfg["batch"]
    return {
        "samples_per_epoch": samples,
        "one_process_2_threads": single,
        "two_ranks_1_thread": ddp,
        "ratio_ddp_over_single": ddp["images_per_s"] / single["images_per_s"],
    }


def write_set(root: Path, size_gb: float, shape: tuple[int, int, int]) -> list[tuple]:
    """Zarr volumes (image int16 + labels uint8) until ``size_gb`` is written (reused when
    already there)."""
    import zarr

    per = shape[0] * shape[1] * shape[2] * 3  # int16 image + uint8 labels
    count = max(2, int(size_gb * 2**30 // per))
    root.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        im, lab = root / f"im{i:04d}.zarr", root / f"lab{i:04d}.zarr"
        if not (im / "zarr.json").exists() or not (lab / "zarr.json").exists():
            image, labels = disks(1000 + i, shape)
            chunks = (1, *shape[1:])
            zarr.create_array(str(im), data=image, chunks=chunks, overwrite=True)
            zarr.create_array(str(lab), data=labels, chunks=chunks, overwrite=True)
        pairs.append((str(im), str(lab)))
    return pairs


def child(spec: dict) -> dict:
    """One side of part b in this (fresh) process: train, report images/s and peak RSS."""
    pairs = spec["pairs"]
    if spec["mode"] == "ram":
        import zarr

        pairs = [(zarr.open_array(a)[:], zarr.open_array(b)[:]) for a, b in pairs]
    started = time.perf_counter()
    result = _train(pairs, spec["kw"], threads=spec["threads"])
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    # the largest worker's peak, counted once per worker (an upper bound: forked workers
    # share the main process's pages, which each worker's RSS counts again)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    workers = spec["kw"]["workers"]
    return {
        **result,
        "seconds": time.perf_counter() - started,
        "peak_rss_gib": me + workers * kids,
        "peak_rss_main_gib": me,
        "peak_rss_largest_worker_gib": kids if workers else 0.0,
    }


def part_disk(cfg: dict, workdir: Path) -> dict:
    shape = (cfg["slices"], 512, 512)
    started = time.perf_counter()
    pairs = write_set(workdir / "volumes", cfg["size_gb"], shape)
    written = time.perf_counter() - started
    per_gib = shape[0] * shape[1] * shape[2] * 3 / 2**30
    in_ram = pairs[: max(2, int(cfg["ram_gb"] / per_gib))]
    kw = {
        "patch_size": cfg["patch"], "batch_size": cfg["batch"], "epochs": 1, "device": "cpu",
        "steps_per_epoch": cfg["disk_steps"], "val_fraction": 0.0, "learning_rate": 1e-3,
    }  # fmt: skip
    index_started = time.perf_counter()
    from napari_res101unet.training.lazy_pairs import check_any

    check_any(pairs)  # builds the foreground indexes once (stored next to the labels)
    index_s = time.perf_counter() - index_started
    runs = {}
    for mode, chosen, workers in (("disk", pairs, cfg["workers"]), ("ram", in_ram, 0)):
        spec = {"mode": mode, "pairs": chosen, "kw": {**kw, "workers": workers}, "threads": 2}
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"{mode} run failed:\n{out.stderr[-3000:]}")
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "volumes": len(pairs),
        "volume_shape": list(shape),
        "set_gib": round(len(pairs) * per_gib, 2),
        "ram_subset_volumes": len(in_ram),
        "ram_subset_gib": round(len(in_ram) * per_gib, 2),
        "write_seconds": round(written, 1),
        "index_seconds": round(index_s, 1),
        "workers": cfg["workers"],
        "disk": runs["disk"],
        "ram": runs["ram"],
        "ratio_disk_over_ram": runs["disk"]["images_per_s"] / runs["ram"]["images_per_s"],
    }


def markdown(result: dict) -> str:
    a, b = result["ddp"], result["disk"]
    one, two = a["one_process_2_threads"], a["two_ranks_1_thread"]
    lines = [
        "| part | peer 1 | peer 2 | ratio | target |",
        "|---|---|---|---|---|",
        f"| a. images/s: 1 process x 2 threads vs 2 Gloo ranks x 1 thread | "
        f"{one['images_per_s']:.2f} | {two['images_per_s']:.2f} | "
        f"{a['ratio_ddp_over_single']:.2f} | reported (2 cores: overhead) |",
        f"| b. images/s: in RAM ({b['ram_subset_gib']} GiB) vs from disk "
        f"({b['set_gib']} GiB zarr, {b['workers']} workers) | {b['ram']['images_per_s']:.2f} | "
        f"{b['disk']['images_per_s']:.2f} | {b['ratio_disk_over_ram']:.2f} | >= 0.9 |",
        "| b. peak RSS GiB (main + workers x largest worker): RAM vs disk | "
        f"{b['ram']['peak_rss_gib']:.2f} | "
        f"{b['disk']['peak_rss_gib']:.2f} | | disk < 4 |",
        "",
        f"Loss per epoch over the same samples seen ({a['samples_per_epoch']} per epoch): "
        f"1 process {[round(v, 4) for v in one['epoch_losses']]}, "
        f"2 ranks {[round(v, 4) for v in two['epoch_losses']]}.",
        f"Writing the set took {b['write_seconds']} s, the foreground index "
        f"{b['index_seconds']} s (once; stored next to the labels).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "bench_results" / "distributed")
    p.add_argument("--workdir", type=Path, default=REPO / "bench_results" / "ddp_work")
    p.add_argument("--size-gb", type=float, default=10.0)
    p.add_argument("--ram-gb", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny: checks the script works")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    cfg = {"image": 512, "patch": 256, "batch": 2, "steps": 8, "epochs": 3, "slices": 64,
           "disk_steps": 40, "size_gb": args.size_gb, "ram_gb": args.ram_gb,
           "workers": args.workers}  # fmt: skip
    if args.quick:
        cfg.update(image=96, patch=64, steps=3, epochs=2, slices=8, disk_steps=6,
                   size_gb=min(args.size_gb, 0.05), ram_gb=min(args.ram_gb, 0.02))  # fmt: skip
    import torch

    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
        },
        "quick": args.quick,
        "settings": {**cfg, "workdir": portable(args.workdir)},
        "ddp": part_ddp(cfg),
        "disk": part_disk(cfg, args.workdir),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed_training.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (args.out / "distributed_training.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
