"""CPU speed of ``segment`` for two source trees, side by side in one run (no regression).

    python benchmarks/bench_cpu_paths.py --before ../old-checkout --after . \
        --sizes 512 1536 --rounds 2 --json benchmarks/results/cpu-paths.json

Each tree's ``src`` is put first on ``PYTHONPATH`` of a fresh interpreter that times
``run_segmentation`` of a random-init Res101_UNet on a random RGB image of each size
(median of 3 after a warm-up; 512^2 is one whole-image pass, 1536^2 is tiled and blended).
Trees alternate (before, after, before, after...) so that load changes hit both alike;
the ratio after/before of the per-tree medians is reported. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np, torch
import napari_res101unet as nr
torch.manual_seed(0)
model = nr.build_model(classes=2, normalization="imagenet").eval()
rng = np.random.default_rng(0)
out = {}
for size in map(int, sys.argv[1:]):
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    r = nr.run_segmentation(img, model, device="cpu")
    ts = []
    for _ in range(3):
        t = time.perf_counter(); nr.run_segmentation(img, model, device="cpu")
        ts.append(time.perf_counter() - t)
    out[size] = {"seconds": sorted(ts)[1], "plan": r.plan.describe()}
print(json.dumps(out))
"""


def time_tree(tree: Path, sizes: list[int]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree.resolve() / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, sizes)],
        env=env, capture_output=True, encoding="utf-8", check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", type=Path, required=True, help="checkout of the old code")
    p.add_argument("--after", type=Path, default=Path("."), help="checkout of the new code")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1536])
    p.add_argument("--rounds", type=int, default=2, help="before/after pairs")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    runs: dict[str, list] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name in ("before", "after"):
            runs[name].append(time_tree(getattr(args, name), args.sizes))
    rows = {}
    print("| size | plan | before (s) | after (s) | after / before |\n|---|---|---|---|---|")
    for size in map(str, args.sizes):
        b = statistics.median(r[size]["seconds"] for r in runs["before"])
        a = statistics.median(r[size]["seconds"] for r in runs["after"])
        plan = runs["after"][0][size]["plan"]
        rows[size] = {"before": b, "after": a, "ratio": a / b, "plan": plan}
        print(f"| {size}x{size} | {plan} | {b:.3f} | {a:.3f} | {a / b:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"rounds": runs, "summary": rows, "threads": os.cpu_count()}
        args.json.write_text(json.dumps(record, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
