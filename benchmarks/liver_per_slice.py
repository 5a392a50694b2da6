"""Per-slice IoU of saved liver models on the held-out scans, binned by liver share, and
how sure a difference between two of them is.

Usage: ``python benchmarks/liver_per_slice.py MODELS_FOLDER [--data ../shared/data]
[--seed 0] [--pairs A:B ...]`` (``MODELS_FOLDER``: what ``bench_training.py
--save-models`` wrote; ``--seed``: the seed that run split the scans with). Prints each
model's pooled IoU, mean IoU per slice, and the mean per slice for slices with under 3 %,
3-10 % and at least 10 % liver (the test split of ``bench_training.py``).

Then, for each pair of models (by default every pair whose names differ only in the
method, such as ``liver-40min-ours`` and ``liver-40min-plain``), the difference of their
pooled IoU with a 95 % interval from a paired bootstrap over the held-out **scans**: the
slices of one scan are not independent, so scans are drawn with replacement, and both
models are scored on the same draw. ``P(A >= B)`` is the share of draws where A's pooled
IoU is at least B's.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_training as bt
import napari_res101unet as nr

BOOTSTRAP_DRAWS = 10_000


def slice_counts(model_path: Path, test) -> np.ndarray:
    """``(N, 3)`` true-positive, false-positive and false-negative liver pixels per slice."""
    model = nr.load_model(model_path)
    counts = []
    for image, truth in test:
        pred = np.asarray(nr.segment(image, model, device="cpu")) > 0
        truth = truth > 0
        counts.append([(pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()])
    return np.array(counts, np.int64)


def pooled_iou(counts: np.ndarray) -> np.ndarray:
    """Pooled IoU of ``(..., N, 3)`` per-slice counts (summed over the slice axis)."""
    tp, fp, fn = np.moveaxis(counts.sum(axis=-2), -1, 0)
    return tp / np.maximum(tp + fp + fn, 1)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, groups: np.ndarray, draws: int, seed: int):
    """``(difference, low, high, P(a >= b))`` of pooled IoU, resampling whole ``groups``."""
    ids = np.unique(groups)
    a_by = np.stack([a[groups == g].sum(axis=0) for g in ids])  # (scans, 3)
    b_by = np.stack([b[groups == g].sum(axis=0) for g in ids])
    pick = np.random.default_rng(seed).integers(0, len(ids), (draws, len(ids)))
    diff = pooled_iou(a_by[pick]) - pooled_iou(b_by[pick])
    low, high = np.percentile(diff, [2.5, 97.5])
    return float(pooled_iou(a) - pooled_iou(b)), float(low), float(high), float((diff >= 0).mean())


def default_pairs(names: list[str]) -> list[tuple[str, str]]:
    """Pairs of model names that differ only after their last ``-`` (the method)."""
    pairs = []
    for x, y in itertools.combinations(names, 2):
        if x.rsplit("-", 1)[0] == y.rsplit("-", 1)[0]:
            pairs.append((x, y) if x.endswith("-ours") or y.endswith("-plain") else (y, x))
    return pairs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path)
    p.add_argument("--data", type=Path, default=bt.REPO.parent / "shared" / "data")
    p.add_argument("--seed", type=int, default=0, help="the seed of the bench_training run")
    p.add_argument("--pairs", nargs="*", default=None, help="A:B model names (no suffix)")
    args = p.parse_args(argv)
    folder = args.data / "msd_liver_jpg"
    if not (folder / "images").is_dir():
        raise SystemExit(f"MSD liver slices not found under {folder}")
    _, files, _ = bt.liver_files(folder, args.seed)
    test = [bt._pair(f, folder / "masks" / f.name) for f in files]
    scans = np.array([bt.liver_volume(f) for f in files])
    share = np.array([float((m > 0).mean()) for _, m in test])
    bins = [
        ("<3%", share < 0.03),
        ("3-10%", (share >= 0.03) & (share < 0.10)),
        (">=10%", share >= 0.10),
    ]
    paths = sorted(args.models.glob("*.safetensors"))
    if not paths:
        raise SystemExit(f"no .safetensors models in {args.models}")
    print(f"{len(test)} slices of {len(set(scans))} held-out scans (seed {args.seed})")
    print("slices per bin:", {k: int(v.sum()) for k, v in bins})
    counts = {}
    for path in paths:
        c = counts[path.stem] = slice_counts(path, test)
        tp, fp, fn = c.T
        per = np.where(tp + fp + fn > 0, tp / np.maximum(tp + fp + fn, 1), np.nan)
        line = " ".join(f"{k}: {np.nanmean(per[b]):.3f}" for k, b in bins)
        print(f"{path.stem:30s} pooled {pooled_iou(c):.4f} mean {np.nanmean(per):.4f} | {line}")
    pairs = (
        [tuple(x.split(":", 1)) for x in args.pairs]
        if args.pairs is not None
        else default_pairs(list(counts))
    )
    if pairs:
        print(f"paired bootstrap over scans ({BOOTSTRAP_DRAWS} draws): A - B, 95 % interval")
    for a, b in pairs:
        if a not in counts or b not in counts:
            raise SystemExit(f"--pairs {a}:{b}: models are {sorted(counts)}")
        d, low, high, p_ge = paired_bootstrap(counts[a], counts[b], scans, BOOTSTRAP_DRAWS, 0)
        print(f"{a} - {b}: {d:+.4f} [{low:+.4f}, {high:+.4f}]  P(A >= B) {p_ge:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
