"""Blockwise (and distributed) segmentation of a large zarr image: memory, speed, equality.

    python benchmarks/bench_blockwise.py --workdir /tmp/bw --out benchmarks/results/blockwise
    python benchmarks/bench_blockwise.py --quick --workdir /tmp/bwq --out /tmp/bwq/results

(a) Peak RSS (kernel high-water mark, ``ru_maxrss``, of a fresh interpreter) segmenting a
generated ``--size``^2 RGB zarr (40,000^2 = 4.8 GB raw, written chunk by chunk into
``--workdir``) from disk to disk: with the real Res101_UNet on the first ``--max-blocks``
blocks only (the whole image takes hours on 2 CPU cores; the statistics pass still reads
the whole image), and over the whole image with a cheap ``identity`` predictor (the
blockwise machinery's own memory). (b) Throughput (MP/s) of the blockwise path against
in-memory ``segment`` on a ``--crop``^2 crop, same model, tile, overlap and batch.
(c) Labels of the blockwise and the distributed (``--workers``) paths against in-memory:
differing pixels. (d) A projection for N GPU workers from the measured per-tile time and
the bytes each block reads and writes. JSON and a markdown table go under ``--out``.
``--instances`` adds (a) over the whole image with ``instances=True`` (objects per block,
stitched into ids unique over the image): its peak memory and time beside the labels',
both with a cheap predictor instead of ``identity`` (``--cheap``: ``smooth``, the first
channel's 9x9 mean above mid-grey, smooth like a network's output, ~800 objects per
block; or ``blobs``, the raw channel above mid-grey: the image's pixel noise makes
~150,000 specks and ragged objects per block, a worst case), objects under
``--min-object-size`` pixels dropped (24: what a model trained on the DSB nuclei learns).
The real model then also runs on one block, so that the difference of its two runs is
the network's time per block without the statistics pass; the objects' share is
(objects run - labels run) / blocks, and ``objects_over_network`` is
(network + objects) / network per block: what objects add to a real run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 1024
CHEAP = ("identity", "blobs", "smooth")
GiB = 1 << 30


def identity(x):
    """A cheap predictor: one logit per pixel from the first channel (no network)."""
    return x[:, :1] * 4.0


def blobs(x):
    """A cheap predictor with many objects: foreground where the first channel is above
    mid-grey (the generated image's blobs), for the runs with and without ``--instances``."""
    return (x[:, :1] - 128.0) * 0.1


def smooth(x):
    """A cheap predictor with smooth objects, as a network gives: the first channel's 9x9
    mean above mid-grey (the generated image's blobs without its pixel noise)."""
    import torch.nn.functional as F

    mean = F.avg_pool2d(x[:, :1], 9, stride=1, padding=4, count_include_pad=False)
    return (mean - 128.0) * 0.1


def generate(path: Path, size: int) -> None:
    """A ``size``^2 RGB uint8 zarr with tissue-like blobs, written one chunk at a time."""
    import zarr

    if (path / "zarr.json").exists():
        arr = zarr.open_array(str(path), mode="r")
        if arr.shape == (size, size, 3):
            return
    arr = zarr.create_array(
        str(path), shape=(size, size, 3), chunks=(CHUNK, CHUNK, 3), dtype="uint8",
        overwrite=True,
    )  # fmt: skip
    yy, xx = np.mgrid[0:CHUNK, 0:CHUNK].astype(np.float32)
    for y in range(0, size, CHUNK):
        for x in range(0, size, CHUNK):
            rng = np.random.default_rng(y * 7919 + x)
            phase = rng.random(2) * 6.28
            blob = np.sin((yy + y) / 37 + phase[0]) * np.cos((xx + x) / 53 + phase[1])
            base = 128 + 90 * blob[..., None] * np.array([1.0, 0.6, 0.8], np.float32)
            noise = rng.normal(0, 12, (CHUNK, CHUNK, 3))
            tile = np.clip(base + noise, 0, 255).astype(np.uint8)
            arr[y : y + CHUNK, x : x + CHUNK] = tile[: size - y, : size - x]


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from bench_blockwise import blobs, identity, smooth
from napari_res101unet.inference.blockwise import segment_blocks
args = json.loads(sys.argv[1])
cheap = {{"identity": identity, "blobs": blobs, "smooth": smooth}}
start = time.perf_counter()
def progress(done, total):
    if done % 10 == 0 or done == total:
        print(f"  block {{done}}/{{total}}, {{time.perf_counter() - start:.0f}} s",
              file=sys.stderr, flush=True)
args.setdefault("progress", progress)
model = cheap.get(args.pop("predictor")) or args.pop("model")
args.pop("model", None)
t = time.perf_counter()
r = segment_blocks(args.pop("image"), model, args.pop("output"), overwrite=True, **args)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
print(json.dumps({{"seconds": time.perf_counter() - t, "blocks": r.blocks, "tiles": r.tiles,
    "complete": r.complete, "peak_rss_gib": peak, "plan": r.plan.describe(),
    "objects": r.objects}}))
"""


def child_run(options: dict) -> dict:
    """Run ``segment_blocks`` in a fresh interpreter; its result and peak RSS."""
    code = CHILD.format(bench=str(Path(__file__).resolve().parent))
    proc = subprocess.run(  # its progress and errors go to our stderr as they come
        [sys.executable, "-c", code, json.dumps(options)], stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"segment_blocks failed (exit {proc.returncode}): see above")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_runs(args, image: Path) -> list[dict]:
    """(a): the real model on the first blocks, a cheap predictor on all of them (and,
    with ``--instances``, objects over all of them and the model on one block)."""
    common = {
        "image": str(image), "output": str(args.workdir / "labels.zarr"),
        "block_size": args.block_size, "tile_size": args.tile_size,
        "batch_size": args.batch_size, "device": args.device, "model": args.model,
    }  # fmt: skip
    runs = []
    objects = (False, True) if args.instances else (False,)
    cheap = args.cheap if args.instances else "identity"  # objects need a few of them
    limits = [args.max_blocks] + ([1] if args.instances and args.max_blocks > 1 else [])
    plan = [("model", limit, False) for limit in limits]
    plan += [(cheap, None, instances) for instances in objects]
    for predictor, limit, instances in plan:
        extra = {"min_object_size": args.min_object_size} if instances else {}
        r = child_run({**common, "predictor": predictor, "limit_blocks": limit,
                       "instances": instances, **extra})  # fmt: skip
        pixels = min(r["blocks"] * args.block_size**2, args.size**2)
        scope = f"first {r['blocks']} blocks" if limit else "whole image"
        r.update(predictor=predictor if predictor == cheap else args.model,
                 mp_per_s=pixels / 1e6 / r["seconds"], instances=instances,
                 scope=scope + (", objects" if instances else ""), **extra)  # fmt: skip
        runs.append(r)
        print(f"(a) {r['scope']} with {r['predictor']}: peak RSS "
              f"{r['peak_rss_gib']:.2f} GiB, {r['mp_per_s']:.3f} MP/s ({r['seconds']:.0f} s)"
              + (f", {r['objects']} objects" if instances else ""), flush=True)  # fmt: skip
    return runs


def objects_share(runs: list[dict]) -> dict | None:
    """Seconds per block of the network (difference of the model's two runs) and of the
    objects (objects run - labels run, same cheap predictor), and their ratio."""
    model = sorted((r for r in runs if r["predictor"] not in CHEAP), key=lambda r: r["blocks"])
    cheap = {r["instances"]: r for r in runs if r["predictor"] in CHEAP}
    if len(model) < 2 or set(cheap) != {False, True}:
        return None
    network = (model[-1]["seconds"] - model[0]["seconds"]) / (
        model[-1]["blocks"] - model[0]["blocks"]
    )
    objects = (cheap[True]["seconds"] - cheap[False]["seconds"]) / cheap[True]["blocks"]
    return {"network_s_per_block": network, "objects_s_per_block": objects,
            "objects_over_network": (network + objects) / network,
            "peak_rss_objects_gib": cheap[True]["peak_rss_gib"],
            "peak_rss_network_gib": model[-1]["peak_rss_gib"]}  # fmt: skip


def crop_runs(args, image: Path) -> dict:
    """(b) and (c): blockwise, distributed and in-memory on one crop, same settings."""
    import zarr

    from napari_res101unet.inference.blockwise import segment_blocks
    from napari_res101unet.inference.cluster import open_client
    from napari_res101unet.inference.segment import run_segmentation
    from napari_res101unet.io.label_store import open_labels
    from napari_res101unet.registry import open_model

    crop = zarr.open_array(str(image), mode="r")[: args.crop, : args.crop]
    store = args.workdir / "crop.zarr"
    zarr.create_array(str(store), data=crop, chunks=(CHUNK, CHUNK, 3), overwrite=True)
    opts = {"tile_size": args.tile_size, "batch_size": args.batch_size, "device": args.device}
    model = open_model(args.model, args.device)
    small = args.workdir / "warm.zarr"  # warm-up of both paths: fusing, first batch shapes
    side = 2 * args.tile_size
    zarr.create_array(str(small), data=crop[:side, :side], chunks=(CHUNK, CHUNK, 3),
                      overwrite=True)  # fmt: skip
    run_segmentation(crop[:side, :side], model, **opts)
    segment_blocks(small, args.model, args.workdir / "warm_labels.zarr", overwrite=True,
                   block_size=args.block_size, **opts)  # fmt: skip
    t = time.perf_counter()
    mem = run_segmentation(crop, model, **opts)
    t_mem = time.perf_counter() - t
    t = time.perf_counter()
    blk = segment_blocks(store, args.model, args.workdir / "crop_labels.zarr", overwrite=True,
                         block_size=args.block_size, **opts)  # fmt: skip
    t_blk = time.perf_counter() - t
    blockwise = open_labels(args.workdir / "crop_labels.zarr")[:]
    dist_block = args.dist_block_size or args.block_size
    with open_client(workers=args.workers) as client:
        # warm: each worker loads the model once (timed apart: a fixed cost per run)
        t = time.perf_counter()
        segment_blocks(small, args.model, args.workdir / "warm_dist.zarr", overwrite=True,
                       block_size=args.tile_size, client=client, **opts)  # fmt: skip
        t_warm = time.perf_counter() - t
        t = time.perf_counter()
        dist_res = segment_blocks(store, args.model, args.workdir / "crop_dist.zarr",
                                  overwrite=True, block_size=dist_block, client=client,
                                  **opts)  # fmt: skip
        t_dist = time.perf_counter() - t
    dist = open_labels(args.workdir / "crop_dist.zarr")[:]
    one_thread = _one_thread_labels(crop, model, opts)  # what a 1-thread worker computes
    mp = args.crop**2 / 1e6
    out = {
        "crop": args.crop, "plan": mem.plan.describe(), "tiles": mem.plan.total_tiles,
        "in_memory_mp_per_s": mp / t_mem, "blockwise_mp_per_s": mp / t_blk,
        "distributed_mp_per_s": mp / t_dist, "workers": args.workers,
        "distributed_block_size": dist_block, "distributed_blocks": dist_res.blocks,
        "distributed_tile_overhead": dist_res.tile_overhead,
        "distributed_warmup_seconds": t_warm,
        "differing_pixels_distributed_vs_one_thread": int(np.count_nonzero(dist != one_thread)),
        "differing_pixels_one_thread_vs_two": int(np.count_nonzero(one_thread != mem.labels)),
        "blockwise_over_in_memory": t_mem / t_blk,
        "differing_pixels_blockwise": int(np.count_nonzero(blockwise != mem.labels)),
        "differing_pixels_distributed": int(np.count_nonzero(dist != mem.labels)),
        "seconds_per_tile": t_mem / mem.plan.total_tiles, "tile": list(mem.plan.tile),
        "blocks": blk.blocks, "tile_overhead": blk.tile_overhead,
    }  # fmt: skip
    print(f"(b) {args.crop}^2: in-memory {out['in_memory_mp_per_s']:.3f} MP/s, blockwise "
          f"{out['blockwise_mp_per_s']:.3f} MP/s (ratio {out['blockwise_over_in_memory']:.2f}), "
          f"{args.workers} workers {out['distributed_mp_per_s']:.3f} MP/s; {blk.blocks} blocks, "
          f"x{blk.tile_overhead:.2f} tiles (edge tiles run once per block)")  # fmt: skip
    print(f"(c) differing pixels vs in-memory: blockwise {out['differing_pixels_blockwise']}, "
          f"distributed {out['differing_pixels_distributed']}")  # fmt: skip
    return out


def _one_thread_labels(crop, model, opts: dict):
    """In-memory labels with torch on one thread, as each 1-thread dask worker runs it:
    the CPU convolutions sum in another order with another thread count."""
    import torch

    from napari_res101unet.inference.segment import run_segmentation

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_segmentation(crop, model, **opts).labels
    finally:
        torch.set_num_threads(threads)


def _per_axis(size: int, block: int, tile: int) -> tuple[float, float]:
    """Mean tiles touching a block along one axis, and the mean halo length read."""
    from napari_res101unet.inference.tiling import axis_starts

    starts = axis_starts(size, tile, 0.25)
    counts, spans = [], []
    for b0 in range(0, size, block):
        b1 = min(b0 + block, size)
        touching = [s for s in starts if s < b1 and s + tile > b0]
        counts.append(len(touching))
        spans.append(min(touching[-1] + tile, size) - touching[0])
    return float(np.mean(counts)), float(np.mean(spans))


def projection(args, crop: dict) -> list[dict]:
    """(d) Time for the whole image on N GPU workers, from the measured per-tile time and
    the bytes each block moves (halo read, RGB uint8; labels written, uint8)."""
    tile = crop["tile"][0]
    tiles, span = _per_axis(args.size, args.block_size, tile)
    n_blocks = (-(-args.size // args.block_size)) ** 2
    tiles_per_block, moved = tiles**2, span**2 * 3 + args.block_size**2
    gpu_tile = crop["seconds_per_tile"] / args.gpu_speedup
    rows = []
    for n in (1, 2, 4, 8, 16):
        compute = n_blocks * tiles_per_block * gpu_tile / n
        io = n_blocks * moved / (args.storage_mb_s * 1e6)  # shared storage: not divided by n
        bound = "compute" if compute > io else "storage"
        rows.append({"gpus": n, "hours": max(compute, io) / 3600, "compute_h": compute / 3600,
                     "io_h": io / 3600, "bound": bound})  # fmt: skip
    print(f"(d) {n_blocks} blocks x {tiles_per_block:.1f} tiles, {moved / 1e6:.1f} MB moved per "
          f"block; CPU tile {crop['seconds_per_tile']:.3f} s, GPU tile assumed "
          f"{args.gpu_speedup:g}x faster; storage {args.storage_mb_s:g} MB/s")  # fmt: skip
    for r in rows:
        print(f"    {r['gpus']:>2} GPUs: {r['hours']:.3g} h ({r['bound']}-bound)")
    return rows


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "blockwise.json").write_text(json.dumps(results, indent=2))
    lines = ["| measure | value |", "|---|---|"]
    for r in results["memory"]:
        lines.append(f"| peak RSS, {r['scope']}, {r['predictor']} | {r['peak_rss_gib']:.2f} GiB "
                     f"({r['mp_per_s']:.3f} MP/s) |")  # fmt: skip
    share = results.get("objects_share")
    if share:
        lines.append(f"| per block: network / objects | {share['network_s_per_block']:.1f} s / "
                     f"{share['objects_s_per_block']:.1f} s (with objects x"
                     f"{share['objects_over_network']:.2f} the time) |")  # fmt: skip
    if "crop" not in results:
        (out / "blockwise.md").write_text("\n".join(lines) + "\n")
        return
    c = results["crop"]
    lines += [
        f"| in-memory, {c['crop']}^2 | {c['in_memory_mp_per_s']:.3f} MP/s |",
        f"| blockwise, {c['crop']}^2 | {c['blockwise_mp_per_s']:.3f} MP/s "
        f"(x{c['blockwise_over_in_memory']:.2f}) |",
        f"| distributed, {c['workers']} workers (1 thread each), "
        f"{c.get('distributed_blocks', '?')} blocks of {c.get('distributed_block_size', '?')}"
        f" | {c['distributed_mp_per_s']:.3f} MP/s (cluster warm-up "
        f"{c.get('distributed_warmup_seconds', 0):.1f} s apart) |",
        f"| differing pixels vs in-memory: blockwise / distributed | "
        f"{c['differing_pixels_blockwise']} / {c['differing_pixels_distributed']} |",
        f"| differing pixels: distributed vs in-memory on 1 thread; 1 vs 2 threads | "
        f"{c.get('differing_pixels_distributed_vs_one_thread', '?')}; "
        f"{c.get('differing_pixels_one_thread_vs_two', '?')} |",
    ]
    lines += [f"| projected, {r['gpus']} GPUs | {r['hours']:.3g} h ({r['bound']}) |"
              for r in results["projection"]]  # fmt: skip
    (out / "blockwise.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("bench-blockwise-work"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/blockwise"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--size", type=int, default=40_000)
    p.add_argument("--crop", type=int, default=4096)
    p.add_argument("--block-size", type=int, default=4096)
    p.add_argument("--tile-size", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-blocks", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dist-block-size", type=int, default=None,
                   help="blocks of the distributed run (default --block-size): smaller blocks "
                   "give every worker some on one crop")  # fmt: skip
    p.add_argument("--parts", nargs="+", default=["memory", "crop"], choices=["memory", "crop"])
    p.add_argument("--model", default="untrained", help="checkpoint path or 'untrained'")
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu-speedup", type=float, default=40.0,
                   help="assumed GPU/CPU speed ratio per tile (not measured here)")  # fmt: skip
    p.add_argument("--storage-mb-s", type=float, default=500.0)
    p.add_argument("--instances", action="store_true",
                   help="(a) also with segment --instances (objects, stitched over the "
                   "blocks): peak memory and time beside the plain labels")  # fmt: skip
    p.add_argument(
        "--cheap",
        choices=["smooth", "blobs"],
        default="smooth",
        help="the cheap predictor of the --instances runs (see the notes)",
    )
    p.add_argument(
        "--min-object-size",
        type=int,
        default=24,
        help="--instances: objects under this many pixels are dropped",
    )
    args = p.parse_args()
    if args.quick:
        args.size, args.crop, args.block_size, args.tile_size = 2048, 512, 512, 256
        args.max_blocks = 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    image = args.workdir / f"rgb-{args.size}.zarr"
    t = time.perf_counter()
    generate(image, args.size)
    print(f"image {args.size}^2 RGB ({args.size**2 * 3 / GiB:.1f} GiB raw) ready in "
          f"{time.perf_counter() - t:.0f} s")  # fmt: skip
    results = {"size": args.size, "block_size": args.block_size, "tile_size": args.tile_size,
               "quick": args.quick, "model": Path(args.model).name}  # fmt: skip
    results["memory"] = memory_runs(args, image) if "memory" in args.parts else []
    results["objects_share"] = objects_share(results["memory"])
    if "crop" in args.parts:
        results["crop"] = crop_runs(args, image)
        results["projection"] = projection(args, results["crop"])
    write_results(args.out, results)
    print(f"results in {args.out}/blockwise.json and blockwise.md")


if __name__ == "__main__":
    main()
