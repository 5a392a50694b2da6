"""Inference benchmark: napari-res101unet's ``segment()`` against MONAI's sliding window.

Everything is measured in one run, on one machine, with the same Res101_UNet weights:

1. A 2048x2048 RGB uint8 image (a mosaic of GlaS testA images): ``segment(image, model)``
   with its planned tiles vs ``monai.inferers.sliding_window_inference`` (512x512 tiles,
   overlap 0.25, gaussian), once with the plain model and once with our optimised module
   (batch norms folded, channels-last), which separates the planning gain from the
   model-optimisation gain. Target: MONAI time / ours >= 1.0; label agreement reported.
2. GlaS testA images (about 775x522; ours: one padded whole-image pass). Target >= 2.0.
3. Pipeline efficiency: model FLOP/s end to end / FLOP/s of one bare forward of a tile
   (plain model and optimised module). Target >= 0.9 against the optimised module.
4. Peak resident memory of ``segment`` for 2048, 4096 and 8192 pixel images, each in a
   fresh process. Target: 8192 below 3 GiB, growth roughly linear in pixels.
5. On CUDA only: megapixels per second with and without mixed precision, and MONAI's.

Usage::

    python benchmarks/bench_inference.py                    # full run: many minutes on a CPU
    python benchmarks/bench_inference.py --quick --json /tmp/inference.json

Timing does not depend on the weights: without ``--model`` the model is a randomly
initialised Res101_UNet (seed 0). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable, portable_settings  # noqa: E402
from bench_training import hardware  # noqa: E402
from napari_res101unet.device import autocast, resolve_device  # noqa: E402
from napari_res101unet.inference.forward import inference_module  # noqa: E402
from napari_res101unet.io import read_image  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
CELL = 512  # mosaic cell of the big test image
GLAS_SHAPE = (522, 775)


# ---------------------------------------------------------------- data and model
def glas_images(data: Path, n: int) -> tuple[list[np.ndarray], str]:
    """The first ``n`` GlaS testA images (RGB uint8), or seeded noise when absent."""
    folder = data / "glas" / "testA" / "images"
    if not folder.is_dir():
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (*GLAS_SHAPE, 3), dtype=np.uint8) for _ in range(n)]
        return images, f"seeded noise {GLAS_SHAPE} ({portable(folder, data)} is absent)"
    files = sorted(folder.glob("*.png"), key=_natural)[:n]
    source = f"{portable(folder, data)} (first {len(files)})"
    return [_rgb(read_image(p).data) for p in files], source


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _rgb(data: np.ndarray) -> np.ndarray:
    return np.repeat(data[..., None], 3, -1) if data.ndim == 2 else data[..., :3]


def test_image(data: Path, size: int) -> tuple[np.ndarray, str]:
    """A ``size`` x ``size`` RGB mosaic of GlaS crops, alternately mirrored (or noise)."""
    cells = -(-size // CELL)
    images, source = glas_images(data, cells * cells)
    crops = []
    for i in range(cells * cells):
        img = images[i % len(images)]
        img = np.pad(img, [(0, max(0, CELL - s)) for s in img.shape[:2]] + [(0, 0)], "symmetric")
        crop = img[:CELL, :CELL]
        crops.append(crop[:, ::-1] if (i // cells + i % cells) % 2 else crop)
    rows = [np.concatenate(crops[r * cells : (r + 1) * cells], 1) for r in range(cells)]
    mosaic = np.ascontiguousarray(np.concatenate(rows, 0)[:size, :size])
    return mosaic, f"mosaic of {source}" if "noise" not in source else source


def get_model(path: Path | None):
    if path is not None:
        return nr.load_model(path).eval(), portable(path)
    torch.manual_seed(0)
    model = nr.build_model(classes=2, normalization="imagenet")
    return model.eval(), "random initialisation (seed 0); timing does not depend on weights"


# ---------------------------------------------------------------- the two methods
def ours(image, model, device, **kw) -> tuple[np.ndarray, float, object]:
    """``run_segmentation`` with its defaults: (labels, wall seconds, plan)."""
    start = time.perf_counter()
    result = nr.run_segmentation(image, model, device=device, **kw)
    return result.labels, time.perf_counter() - start, result.plan


def monai(image, predictor, device, batch) -> tuple[np.ndarray, float, None]:
    """The way a MONAI user writes it: normalise the whole image, slide 512x512 tiles."""
    from monai.inferers import sliding_window_inference

    start = time.perf_counter()
    x = (image.astype(np.float32) / 255.0 - MEAN) / STD
    x = torch.from_numpy(x.transpose(2, 0, 1).copy())[None].to(device)
    with torch.inference_mode():
        logits = sliding_window_inference(
            x, (512, 512), batch, predictor, overlap=0.25, mode="gaussian"
        )
        if logits.shape[1] == 1:
            labels = torch.sigmoid(logits)[0, 0] > 0.5
        else:
            labels = torch.softmax(logits, 1).argmax(1)[0]
        labels = labels.to(torch.uint8).cpu().numpy()
    return labels, time.perf_counter() - start, None


def timed(methods: dict, images: list, repeats: int, warmed: set = frozenset()) -> dict:
    """Each method warmed up once (on the first image), then run over all ``images``
    ``repeats`` times, methods alternating (those in ``warmed`` are not warmed up). Per
    method: ``runs`` (seconds per image, per repeat), ``total`` (median over repeats of the
    summed seconds) and ``last`` (the outputs of the last repeat)."""
    for name, run in methods.items():
        if name not in warmed:
            run(images[0])
    out = {name: {"runs": []} for name in methods}
    for _ in range(repeats):
        for name, run in methods.items():
            outputs = [run(image) for image in images]
            out[name]["runs"].append([o[1] for o in outputs])
            out[name]["last"] = outputs
    for r in out.values():
        r["total"] = float(np.median([sum(seconds) for seconds in r["runs"]]))
    return out


def agreement(t: dict) -> dict:
    """Fraction of pixels whose label equals ours, per other method."""
    ref = [o[0] for o in t["ours"]["last"]]
    return {
        name: round(float(np.mean([(o[0] == r).mean() for o, r in zip(v["last"], ref)])), 5)
        for name, v in t.items()
        if name != "ours"
    }


def compare(images, model, device, batch: int, repeats: int, warmed=frozenset()):
    """Ours vs MONAI (plain model, and our optimised module) on ``images``."""
    fused = inference_module(model, device, True)
    methods = {
        "ours": lambda img: ours(img, model, device),
        "monai": lambda img: monai(img, model, device, batch),
        "monai_optimised": lambda img: monai(img, fused, device, batch),
    }
    t = timed(methods, images, repeats, warmed)
    seconds = {k: v["total"] for k, v in t.items()}
    plans = [o[2] for o in t["ours"]["last"]]
    summary = {
        "images": len(images),
        "shape": list(images[0].shape),
        "plans": sorted({p.describe() for p in plans}),
        "whole_image": all(p.whole_image for p in plans),
        "monai_sw_batch_size": batch,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "seconds_per_repeat": {k: [round(sum(r), 3) for r in v["runs"]] for k, v in t.items()},
        "ratio": {k: round(v / seconds["ours"], 3) for k, v in seconds.items() if k != "ours"},
        "agreement": agreement(t),
    }
    return summary


def fold_seconds(model, device) -> float:
    """Time to build the optimised module from scratch (part of the first call)."""
    fresh = copy.deepcopy(model)
    start = time.perf_counter()
    inference_module(fresh, device, True)
    return time.perf_counter() - start


# ---------------------------------------------------------------- pipeline efficiency
def tile_flops(model, tile) -> int:
    """FLOPs of one forward of a ``(1, 3, *tile)`` input (counted on the meta device)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta")
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        meta(torch.zeros(1, model.spec.in_channels, *tile, device="meta"))
    return counter.get_total_flops()


def bare_forward(module, tile, device, channels_last: bool):
    """A callable timing one forward of ``module`` on a random ``tile``-sized input."""
    x = torch.randn(1, 3, *tile, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def run(_image) -> tuple[None, float]:
        start = time.perf_counter()
        with torch.inference_mode(), autocast(device, device.type == "cuda"):
            module(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return None, time.perf_counter() - start

    return run


def efficiency(model, device, image, runs: int) -> dict:
    """End-to-end FLOP/s of ``segment`` / FLOP/s of a bare forward of one planned tile,
    timed alternately (so that both see the same load on a shared machine)."""
    plan = ours(image, model, device)[2]
    flops = tile_flops(model, plan.tile)
    plain_module = model if device.type == "cpu" else copy.deepcopy(model).to(device)
    methods = {
        "end_to_end": lambda img: ours(img, model, device),
        "bare_plain": bare_forward(plain_module, plan.tile, device, False),
        "bare_optimised": bare_forward(inference_module(model, device, True), plan.tile,
                                       device, True),
    }  # fmt: skip
    t = timed(methods, [image], runs, warmed={"end_to_end"})
    gflops = {k: flops / v["total"] / 1e9 for k, v in t.items()}
    gflops["end_to_end"] *= plan.total_tiles
    return {
        "tile": list(plan.tile),
        "tiles": plan.total_tiles,
        "gflop_per_tile": round(flops / 1e9, 1),
        "gflops": {k: round(v, 2) for k, v in gflops.items()},
        "vs_plain": round(gflops["end_to_end"] / gflops["bare_plain"], 3),
        "vs_optimised": round(gflops["end_to_end"] / gflops["bare_optimised"], 3),
    }


# ---------------------------------------------------------------- memory (subprocesses)
def memory_child(size: int, model_path: Path | None, device: str) -> None:
    """In a fresh process: print one JSON line of resident memory (MiB) around ``segment``.

    The peak is the kernel's high-water mark (VmHWM), reset once the model is built.
    ``ru_maxrss`` is reported too, but on Linux a child inherits its parent's peak at exec.
    """
    model, _ = get_model(model_path)
    baseline = _status_mib("VmRSS")
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux)
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    result = nr.run_segmentation(image, model, device=resolve_device(device))
    row = {
        "size": size,
        "baseline_mib": baseline,
        "peak_mib": _status_mib("VmHWM"),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds": round(result.seconds, 2),
        "plan": result.plan.describe(),
    }
    print(json.dumps(row))


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def memory(sizes: list[int], args) -> list[dict]:
    """One fresh process per size; growth above the baseline per megapixel, and the
    marginal growth per megapixel from the previous size."""
    rows, prev = [], None
    for size in sizes:
        cmd = [sys.executable, __file__, "--_memory-child", str(size), "--device", args.device]
        cmd += ["--model", str(args.model)] if args.model is not None else []
        done = subprocess.run(
            cmd, capture_output=True, encoding="utf-8", errors="replace", check=False
        )
        if done.returncode != 0:
            rows.append({"size": size, "error": done.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        mp = size * size / 1e6
        row["growth_mib"] = round(row["peak_mib"] - row["baseline_mib"], 1)
        row["mib_per_megapixel"] = round(row["growth_mib"] / mp, 1)
        if prev is not None:
            extra = (row["growth_mib"] - prev["growth_mib"]) / (mp - prev["size"] ** 2 / 1e6)
            row["marginal_mib_per_megapixel"] = round(extra, 1)
        rows.append(row)
        prev = row
        print(f"  {size}x{size}: peak {row['peak_mib']:.0f} MiB", flush=True)
    return rows


# ---------------------------------------------------------------- CUDA
def cuda_throughput(image, model, batch: int) -> dict:
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device (torch.cuda.is_available() is False)"}
    dev = torch.device("cuda")
    gpu_model = copy.deepcopy(model).to(dev)
    mp = image.shape[0] * image.shape[1] / 1e6
    methods = {
        "ours_mixed": lambda img: ours(img, model, dev, mixed_precision=True),
        "ours_float32": lambda img: ours(img, model, dev, mixed_precision=False),
        "monai_float32": lambda img: monai(img, gpu_model, dev, batch),
    }
    t = timed(methods, [image], 3)
    return {
        "device": torch.cuda.get_device_name(dev),
        "megapixels_per_s": {k: round(mp / v["total"], 2) for k, v in t.items()},
    }


# ---------------------------------------------------------------- report
def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def _fmt(values: dict, digits: int = 2) -> list[str]:
    return [f"{v:.{digits}f}" for v in values.values()]


def _ratio(r: dict) -> str:
    return " / ".join(_fmt(r["ratio"]))


def print_report(r: dict) -> None:
    big, glas = r["big_image"], r["glas"]
    side = big["shape"][0]
    glas_plan = "whole-image pass each" if glas["whole_image"] else "; ".join(glas["plans"])
    rows = [
        [f"{side}x{side} RGB ({big['plans'][0]})", *_fmt(big["seconds"]), _ratio(big), ">= 1.0"],
        [f"GlaS testA, {glas['images']} images ({glas_plan})", *_fmt(glas["seconds"]),
         _ratio(glas), ">= 2.0"],
    ]  # fmt: skip
    head = ["seconds", "ours", "MONAI 512 tiles", "MONAI, our optimised module"]
    print("\n" + table([*head, "MONAI / ours (plain / optimised)", "target"], rows))
    agree = {k: " / ".join(_fmt(r["agreement"], 4)) for k, r in (("big", big), ("glas", glas))}
    print(
        f"\nLabel agreement with ours (plain / optimised): {side}x{side} {agree['big']}, GlaS "
        f"{agree['glas']}. First call overhead {big['first_call_overhead_s']:.2f} s "
        f"(folding batch norms: {big['bn_fold_s']:.2f} s)."
    )
    rows = [
        [name, f"{e['tile'][0]}x{e['tile'][1]} x {e['tiles']}", e["gflop_per_tile"],
         *_fmt(e["gflops"], 1), f"{e['vs_plain']:.2f}", f"{e['vs_optimised']:.2f}"]
        for name, e in r["efficiency"].items()
    ]  # fmt: skip
    head = ["efficiency", "tile x tiles", "GFLOP/tile", "GFLOP/s end to end", "bare plain"]
    print("\n" + table([*head, "bare optimised", "vs plain", "vs optimised (>= 0.9)"], rows))
    rows = [
        [f"{m['size']}x{m['size']}", m.get("baseline_mib", m.get("error")), m.get("peak_mib"),
         m.get("growth_mib"), m.get("mib_per_megapixel"),
         m.get("marginal_mib_per_megapixel", ""), m.get("seconds")]
        for m in r["memory"]
    ]  # fmt: skip
    head = ["peak RSS (MiB)", "baseline", "peak", "growth", "growth / MP", "marginal / MP"]
    print("\n" + table([*head, "seconds"], rows))
    cuda = r["cuda"]
    print(f"\nCUDA: {cuda.get('skipped') or cuda}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: random init)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=REPO / "bench_results" / "inference.json")
    p.add_argument("--size", type=int, default=2048, help="side of the big test image")
    p.add_argument("--glas-images", type=int, default=12)
    p.add_argument("--memory-sizes", type=int, nargs="*", default=[2048, 4096, 8192])
    p.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    p.add_argument("--sw-batch-size", type=int, help="MONAI's (default: ours'; GlaS: 1)")
    p.add_argument("--quick", action="store_true", help="512 image, 2 GlaS, memory 512/1024")
    p.add_argument("--_memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.glas_images, args.memory_sizes, args.repeats = 512, 2, [512, 1024], 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._memory_child is not None:
        memory_child(args._memory_child, args.model, args.device)
        return 0
    device = resolve_device(args.device)
    model, model_note = get_model(args.model)
    image, source = test_image(args.data, args.size)
    glas, glas_source = glas_images(args.data, args.glas_images)
    result = {
        "hardware": {**hardware(device), "load_average_at_start": os.getloadavg()},
        "settings": {
            **portable_settings(vars(args), args.data),
            **{"model": model_note, "image": source, "glas": glas_source},
        },
    }
    print(f"{args.size}x{args.size} image: {source}", flush=True)
    _, first, plan = ours(image, model, device)  # first call: warm-up; sets MONAI's batch
    batch = args.sw_batch_size or plan.batch_size
    big = compare([image], model, device, batch, args.repeats, {"ours"})
    big["first_call_overhead_s"] = round(first - big["seconds"]["ours"], 3)
    big["bn_fold_s"] = round(fold_seconds(model, device), 3)
    print(f"GlaS: {glas_source}", flush=True)
    glas_batch = args.sw_batch_size or 1
    result["big_image"] = big
    result["glas"] = compare(glas, model, device, glas_batch, args.repeats)
    runs = max(3, args.repeats)
    result["efficiency"] = {
        f"{args.size}x{args.size}": efficiency(model, device, image, runs),
        "GlaS image 1": efficiency(model, device, glas[0], runs),
    }
    print("memory (fresh processes)", flush=True)
    result["memory"] = memory(args.memory_sizes, args)
    result["cuda"] = cuda_throughput(image, model, batch)
    result["hardware"]["load_average_at_end"] = os.getloadavg()
    print_report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
