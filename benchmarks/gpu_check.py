"""The prepared GPU check: everything issue #17 asks to measure on a CUDA machine, in one go.

Runs on any CUDA machine in under 10 minutes (nothing downloaded, no data needed: a
randomly initialised Res101_UNet and seeded random images; speed does not depend on the
weights or the content):

1. ``pytest -m "gpu and not slow"``: the device-path tests (``--slow-tests``: all).
2. Megapixels/s of ``segment`` on a 2048x2048 RGB image, float32 vs mixed precision.
3. Blending on the CPU vs on the device (``blend_on_device``), and whether labels agree.
4. Ours vs MONAI ``sliding_window_inference`` on the device: at equal tiles (512x512,
   overlap 0.25, gaussian, the same batch, the same optimised module, cuDNN autotuning on
   for both), and ours with its own plan against MONAI's usual 512 tiles; float32 and
   mixed precision.
5. Pipeline efficiency: the time of the bare forward passes of the planned tiles divided
   by the end-to-end time (2048x2048 and a GlaS-size 522x775 image); target >= 0.9.
6. Peak device memory (``torch.cuda.max_memory_allocated``) for 2048, 4096, 8192 images.
7. An out-of-memory retry forced by capping the allocator (``--oom-cap-gib``) below what
   a deliberately oversized plan needs.
8. Training images/s: ``train()`` in mixed precision and float32 vs a plain smp loop.
9. With ``--compile``: MP/s with ``torch.compile`` against without (compiling takes
   minutes, so it is not part of the default run).

Usage::

    python benchmarks/gpu_check.py                       # writes bench_results/gpu/
    python benchmarks/gpu_check.py --out /tmp/gpu --skip-tests
    python benchmarks/gpu_check.py --dry-run             # no GPU: checks the script itself

Writes ``gpu_check.json`` and ``gpu_check.md`` (the tables) to ``--out``. Without CUDA it
says so and exits with code 2 (nothing measured); ``--dry-run`` runs every part on the
CPU with a tiny network and tiny images instead (seconds; the figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable_settings  # noqa: E402
from napari_res101unet.device import (  # noqa: E402
    autocast,
    describe_device,
    fixed_shape_kernels,
)
from napari_res101unet.inference.forward import inference_module  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
NO_CUDA = 2
"""Exit code when there is no CUDA device (nothing was measured)."""
PARTS = ("gpu_tests", "precision", "blending", "versus_monai", "efficiency", "peak_memory",
         "oom_retry", "training", "compiled")  # fmt: skip


class Tiny(torch.nn.Module):
    """The dry run's network: two convolutions, two classes (fast on any CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


# ---------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``run()`` after one warm-up call (device synchronised)."""
    run()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def rgb(size: int | tuple[int, int], seed: int = 0) -> np.ndarray:
    shape = (size, size) if isinstance(size, int) else tuple(size)
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def mp_per_s(image: np.ndarray, seconds: float) -> float:
    return round(image.shape[0] * image.shape[1] / 1e6 / seconds, 2)


# ---------------------------------------------------------------- parts
def run_gpu_tests(args) -> dict:
    """``pytest -m "gpu and not slow"`` (``--slow-tests``: all ``gpu`` tests, including
    ``torch.compile`` of the network, minutes) in a subprocess; summary and exit code."""
    marks = "gpu" if args.slow_tests else "gpu and not slow"
    cmd = [sys.executable, "-m", "pytest", "-m", marks, "-q", "-p", "no:cacheprovider", "tests"]
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=args.test_timeout, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return {"exit_code": done.returncode, "summary": lines[-1] if lines else done.stderr[-300:]}


def precision(model, image, dev, repeats) -> dict:
    """MP/s of ``segment`` in float32 and in mixed precision."""
    out = {}
    for name, mixed in (("float32", False), ("mixed", True)):
        s = median_seconds(
            lambda m=mixed: nr.run_segmentation(image, model, device=dev, mixed_precision=m),
            dev,
            repeats,
        )
        out[name] = mp_per_s(image, s)
    out["mixed_over_float32"] = round(out["mixed"] / out["float32"], 2)
    return out


def blending(model, image, dev, repeats) -> dict:
    """MP/s with blending on the CPU and on the device; label agreement."""
    out, labels = {}, {}
    for name, on_device in (("cpu_blending", False), ("device_blending", True)):

        def run(d=on_device, n=name):
            labels[n] = nr.run_segmentation(image, model, device=dev, blend_on_device=d).labels

        out[name] = mp_per_s(image, median_seconds(run, dev, repeats))
    out["labels_differing"] = int((labels["cpu_blending"] != labels["device_blending"]).sum())
    return out


def monai_run(image, module, dev, tile: int, batch: int, mixed: bool) -> np.ndarray:
    """MONAI's sliding window the usual way, everything on the device."""
    from monai.inferers import sliding_window_inference

    x = (image.astype(np.float32) / 255.0 - MEAN) / STD
    x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(dev)
    with torch.inference_mode(), autocast(dev, mixed), fixed_shape_kernels(dev):
        logits = sliding_window_inference(
            x, (tile, tile), batch, module, overlap=0.25, mode="gaussian",
            sw_device=dev, device=dev,
        )  # fmt: skip
        labels = torch.softmax(logits.float(), 1).argmax(1)[0]
    return labels.to(torch.uint8).cpu().numpy()


def versus_monai(model, image, dev, repeats, tile: int) -> dict:
    """Ours / MONAI speed ratios at equal tiles and with our own plan."""
    try:
        import monai  # noqa: F401
    except ImportError:
        return {"skipped": "MONAI is not installed (pip install -e '.[bench]')"}
    module = inference_module(model, dev, True)
    batch = nr.run_segmentation(image, model, device=dev, tile_size=tile).plan.batch_size
    out = {"tile": tile, "batch": batch}
    for prec, mixed in (("float32", False), ("mixed", True)):
        kw = {"device": dev, "mixed_precision": mixed}
        equal = median_seconds(
            lambda k=kw: nr.run_segmentation(image, model, tile_size=tile, batch_size=batch, **k),
            dev,
            repeats,
        )
        planned = median_seconds(lambda k=kw: nr.run_segmentation(image, model, **k), dev, repeats)
        theirs = median_seconds(
            lambda m=mixed: monai_run(image, module, dev, tile, batch, m), dev, repeats
        )
        out[prec] = {
            "ours_equal_tiles_mp_s": mp_per_s(image, equal),
            "ours_planned_mp_s": mp_per_s(image, planned),
            "monai_mp_s": mp_per_s(image, theirs),
            "monai_over_ours_equal_tiles": round(theirs / equal, 2),
            "monai_over_ours_planned": round(theirs / planned, 2),
        }
    return out


def efficiency(model, image, dev, repeats) -> dict:
    """Bare forward time of the planned tiles / end-to-end ``segment`` time (mixed)."""
    result = nr.run_segmentation(image, model, device=dev)
    plan = result.plan
    module = inference_module(model, dev, True)
    x = torch.randn(plan.batch_size, 3, *plan.tile, device=dev)
    x = x.contiguous(memory_format=torch.channels_last) if dev.type in ("cpu", "cuda") else x
    n_batches = math.ceil(plan.total_tiles / plan.batch_size)

    def bare():
        with torch.inference_mode(), autocast(dev, True), fixed_shape_kernels(dev):
            for _ in range(n_batches):
                module(x)

    bare_s = median_seconds(bare, dev, repeats)
    end_s = median_seconds(lambda: nr.run_segmentation(image, model, device=dev), dev, repeats)
    return {
        "shape": list(image.shape[:2]),
        "plan": plan.describe(),
        "bare_forward_s": round(bare_s, 4),
        "end_to_end_s": round(end_s, 4),
        "efficiency": round(bare_s / end_s, 3),
    }


def peak_memory(model, dev, sizes) -> list[dict]:
    """Peak allocated device memory of ``segment`` per image size."""
    rows = []
    for size in sizes:
        image = rgb(size)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        result = nr.run_segmentation(image, model, device=dev)
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
        rows.append(
            {
                "size": size,
                "peak_mib": None if peak is None else round(peak, 1),
                "seconds": round(result.seconds, 3),
                "plan": result.plan.describe(),
            }
        )
    return rows


def compiled(model, image, dev, repeats) -> dict:
    """MP/s with ``compile_model=True`` against without (mixed precision); the first call
    (compiling) is timed apart."""
    start = time.perf_counter()
    nr.run_segmentation(image, model, device=dev, compile_model=True)
    sync(dev)
    first = time.perf_counter() - start
    out = {"first_call_s": round(first, 1)}
    for name, flag in (("eager", False), ("compiled", True)):
        s = median_seconds(
            lambda f=flag: nr.run_segmentation(image, model, device=dev, compile_model=f),
            dev,
            repeats,
        )
        out[f"{name}_mp_s"] = mp_per_s(image, s)
    out["compiled_over_eager"] = round(out["compiled_mp_s"] / out["eager_mp_s"], 2)
    return out


def oom_retry(model, dev, args) -> dict:
    """A plan sized for 64 GiB run under an allocator capped at ``--oom-cap-gib``: the
    engine must run out of memory, retry smaller and finish. (Dry run: a predictor that
    refuses big batches stands in for the cap.)"""
    if dev.type != "cuda":
        image = rgb(args.oom_size)

        def refusing(x):
            if x.shape[0] * x.shape[2] * x.shape[3] > 128 * 128:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return model(x)

        result = nr.run_segmentation(image, refusing, device=dev, memory_budget=64 * 2**30)
        return {"simulated": True, "plan": result.plan.describe(), "notes": result.notes}
    image = rgb(args.oom_size)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(dev).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, args.oom_cap_gib * 2**30 / total), dev)
    try:
        result = nr.run_segmentation(image, model, device=dev, memory_budget=64 * 2**30)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        torch.cuda.empty_cache()
    retried = any("retried smaller" in n for n in result.notes)
    return {"cap_gib": args.oom_cap_gib, "retried": retried, "plan": result.plan.describe(),
            "notes": result.notes, "seconds": round(result.seconds, 2)}  # fmt: skip


def training(dev, args) -> dict:
    """Images/s of ``train()`` (mixed and float32) and of a plain smp loop, synthetic data."""
    from bench_training import synthetic_pairs, throughput

    pairs = synthetic_pairs(16, size=384, seed=0)
    settings = SimpleNamespace(
        patch_size=args.train_patch, batch_size=args.train_batch, seed=0,
        encoder_weights=None, warmup_steps=3, throughput_steps=args.train_steps,
    )  # fmt: skip
    result = throughput(pairs, settings, dev)
    result.pop("seconds_per_step", None)
    return {"patch": args.train_patch, "batch": args.train_batch, **result}


# ---------------------------------------------------------------- report
def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def markdown(r: dict) -> str:
    """The tables of a result (parts that failed or were skipped say so)."""
    rows = []
    for part, value in r["parts"].items():
        if isinstance(value, dict) and ("error" in value or "skipped" in value):
            rows.append([part, json.dumps(value)[:200], ""])
            continue
        for key, v in _flat(value):
            rows.append([part, key, v])
    head = f"GPU check on {r['device']} ({r['when']})"
    if r["dry_run"]:
        head += " - DRY RUN on the CPU with a tiny network: these figures mean nothing"
    return f"{head}\n\n" + table(["part", "measure", "value"], rows) + "\n"


def _flat(value, prefix: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), value


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "bench_results" / "gpu")
    p.add_argument("--device", default="cuda", help="a CUDA device (cuda, cuda:N)")
    p.add_argument("--dry-run", action="store_true", help="no GPU: run every part on the CPU")
    p.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    p.add_argument("--slow-tests", action="store_true", help="also the slow gpu tests")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--size", type=int, default=2048, help="side of the main test image")
    p.add_argument("--memory-sizes", type=int, nargs="*", default=[2048, 4096, 8192])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--oom-size", type=int, default=3072)
    p.add_argument("--oom-cap-gib", type=float, default=1.5)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-patch", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--test-timeout", type=float, default=240.0)
    p.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    args = p.parse_args(argv)
    if args.dry_run:
        args.size, args.memory_sizes, args.repeats, args.oom_size = 192, [128, 256], 1, 300
        args.skip_tests = args.skip_training = True
        args.device = "cpu"
    return args


def no_cuda_message() -> str:
    return (
        f"gpu_check: no CUDA device here (torch {torch.__version__}, built for CUDA "
        f"{torch.version.cuda}; torch.cuda.is_available() is False). Nothing was measured. "
        "Run it on a machine with an NVIDIA GPU, or pass --dry-run to check the script on "
        "the CPU."
    )


def setup(args) -> tuple[torch.device, torch.nn.Module]:
    dev = torch.device(args.device) if args.dry_run else nr.resolve_device(args.device)
    torch.manual_seed(0)
    model = Tiny() if args.dry_run else nr.build_model(classes=2, normalization="imagenet")
    return dev, model.eval()


def parts(args, dev, model) -> dict[str, Callable[[], object]]:
    image, glas = rgb(args.size), rgb((522, 775) if not args.dry_run else (130, 190), 1)
    tile = 512 if not args.dry_run else 64
    return {
        "gpu_tests": (lambda: {"skipped": "--skip-tests"}) if args.skip_tests
        else (lambda: run_gpu_tests(args)),
        "precision": lambda: precision(model, image, dev, args.repeats),
        "blending": lambda: blending(model, image, dev, args.repeats),
        "versus_monai": lambda: versus_monai(model, image, dev, args.repeats, tile),
        "efficiency": lambda: [efficiency(model, im, dev, args.repeats) for im in (image, glas)],
        "peak_memory": lambda: peak_memory(model, dev, args.memory_sizes),
        "oom_retry": lambda: oom_retry(model, dev, args),
        "training": (lambda: {"skipped": "--skip-training or dry run"}) if args.skip_training
        else (lambda: training(dev, args)),
        "compiled": (lambda: compiled(model, image, dev, args.repeats)) if args.compile
        else (lambda: {"skipped": "torch.compile is timed only with --compile (minutes)"}),
    }  # fmt: skip


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(no_cuda_message(), file=sys.stderr)
        return NO_CUDA
    dev, model = setup(args)
    result = {
        "device": describe_device(dev),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "dry_run": args.dry_run,
        "torch": torch.__version__,
        "settings": portable_settings(vars(args), None),
        "parts": {},
    }
    failed = False
    for name, run in parts(args, dev, model).items():
        if args.only and name not in args.only:
            continue
        print(f"{name}...", flush=True)
        started = time.perf_counter()
        try:
            result["parts"][name] = run()
        except Exception as exc:  # one part failing must not lose the others
            failed = True
            result["parts"][name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(f"  {time.perf_counter() - started:.1f} s: {result['parts'][name]}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "gpu_check.md").write_text(markdown(result))
    print(f"\n{markdown(result)}\nwritten to {args.out}")
    tests = result["parts"].get("gpu_tests", {})
    return 1 if failed or tests.get("exit_code", 0) not in (0, 5) else 0


if __name__ == "__main__":
    sys.exit(main())
