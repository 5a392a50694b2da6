"""Objects of one whole-slide block: ours against the plain scikit-image recipe.

    python benchmarks/bench_objects_block.py --out benchmarks/results/objects-block

A 4096^2 block of the generated slide of ``bench_blockwise.py`` (its first channel's 9x9
mean above mid-grey, ``smooth``, as a network's output; ``--cheap blobs``: the raw channel,
whose pixel noise gives ~150,000 specks, a worst case) is separated into objects twice,
alternating, ``--rounds`` times each, in this one process:

* **plain**: the distance-transform watershed as the scikit-image gallery writes it
  (``scipy.ndimage.distance_transform_edt``, ``skimage.morphology.h_maxima`` over the
  whole image, ``skimage.segmentation.watershed`` over the whole image), with the same
  hole filling, clean-up and ids as ours;
* **ours**: :func:`~napari_res101unet.postprocess.instances.instances_from`
  (``method="watershed"``).

It reports the median seconds, the peak memory each adds (``tracemalloc`` of numpy's
allocations), the object counts and the share of objects found by both (IoU >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def block(size: int, cheap: str) -> np.ndarray:
    """The foreground of the generated slide's first ``size``^2 block."""
    import tempfile

    from scipy import ndimage

    from bench_blockwise import generate

    with tempfile.TemporaryDirectory() as tmp:
        import zarr

        path = Path(tmp) / "block.zarr"
        generate(path, size)
        red = np.asarray(zarr.open_array(str(path), mode="r")[..., 0]).astype(np.float32)
    if cheap == "smooth":
        red = ndimage.uniform_filter(red, 9, mode="nearest")
    return red > 128


def plain(fg: np.ndarray, h: float) -> np.ndarray:
    """The textbook recipe, with the steps ours adds around it (holes, clean-up, ids)."""
    from scipy import ndimage
    from skimage.measure import label
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    from napari_res101unet.postprocess.instances import fill_holes_per_object, sequential_ids

    full = np.ones((3, 3), bool)
    filled = ndimage.binary_fill_holes(fg)
    edt = ndimage.distance_transform_edt(filled)
    seeds = ndimage.label(h_maxima(np.where(filled, edt, 0.0), h).astype(bool) & filled, full)[0]
    labels = watershed(-edt, markers=seeds, mask=filled).astype(np.int64)
    missed = filled & (labels == 0)
    labels[missed] = ndimage.label(missed, full)[0][missed] + labels.max()
    labels = label(np.where(fg, labels, 0), background=0, connectivity=2).astype(np.int64)
    return sequential_ids(fill_holes_per_object(labels))


def ours(fg: np.ndarray, h: float) -> np.ndarray:
    from napari_res101unet.postprocess.instances import InstanceOptions, instances_from

    return instances_from(fg, InstanceOptions(method="watershed", h=h))


def timed(fn, fg, h):
    tracemalloc.start()
    started = time.perf_counter()
    out = fn(fg, h)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**30


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--cheap", nargs="+", default=["smooth", "blobs"], choices=["smooth", "blobs"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--h", type=float, default=2.0)
    args = p.parse_args(argv)
    from bench_training import hardware
    from napari_res101unet.evaluation.objects import object_tally

    rows = []
    for cheap in args.cheap:
        fg = block(args.size, cheap)
        times = {"plain": [], "ours": []}
        peaks, outs = {}, {}
        for _ in range(args.rounds):
            for name, fn in (("plain", plain), ("ours", ours)):
                outs[name], seconds, peaks[name] = timed(fn, fg, args.h)
                times[name].append(seconds)
        tally = object_tally(outs["ours"], outs["plain"], objects_from="instances",
                             thresholds=(0.9,))  # fmt: skip
        row = {"block": f"{args.size}^2, {cheap}", "foreground": round(float(fg.mean()), 3)}
        for name in ("plain", "ours"):
            row |= {f"{name}_s": round(statistics.median(times[name]), 2),
                    f"{name}_peak_gib": round(peaks[name], 2),
                    f"{name}_objects": int(outs[name].max())}  # fmt: skip
        row["speedup"] = round(row["plain_s"] / row["ours_s"], 2)
        row["matched_at_0.9"] = tally.matching[0].tp
        rows.append(row)
        print(row, flush=True)
    import torch

    result = {
        "hardware": hardware(torch.device("cpu")),
        "rounds": args.rounds,
        "h": args.h,
        "rows": rows,
    }
    lines = [
        "| block | plain s | ours s | speed-up | plain / ours peak GiB | objects "
        "(plain / ours) | matched at IoU 0.9 |",
        "|---|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['block']} | {r['plain_s']} | {r['ours_s']} | x{r['speedup']} | "
                     f"{r['plain_peak_gib']} / {r['ours_peak_gib']} | {r['plain_objects']} / "
                     f"{r['ours_objects']} | {r['matched_at_0.9']} |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "objects-block.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "objects-block.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
