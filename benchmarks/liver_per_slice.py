"""Per-slice IoU of saved liver models on the held-out scans, binned by liver share.

Usage: ``python benchmarks/liver_per_slice.py MODELS_FOLDER [--data ../shared/data]``
(``MODELS_FOLDER``: what ``bench_training.py --save-models`` wrote). Prints each model's
pooled IoU, mean IoU per slice, and the mean per slice for slices with under 3 %, 3-10 %
and at least 10 % liver (the test split of ``bench_training.py``, seed 0).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_training as bt
import napari_res101unet as nr


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", type=Path)
    p.add_argument("--data", type=Path, default=bt.REPO.parent / "shared" / "data")
    args = p.parse_args(argv)
    _, test, _ = bt.liver_split(args.data / "msd_liver_jpg", 0, None)
    share = np.array([float((m > 0).mean()) for _, m in test])
    bins = [
        ("<3%", share < 0.03),
        ("3-10%", (share >= 0.03) & (share < 0.10)),
        (">=10%", share >= 0.10),
    ]
    print("slices per bin:", {k: int(v.sum()) for k, v in bins})
    for path in sorted(args.models.glob("*.safetensors")):
        s = nr.evaluate(path, test, device="cpu")
        per = np.array([e["iou"] for e in s["per_image"]], float)
        line = " ".join(f"{k}: {np.nanmean(per[b]):.3f}" for k, b in bins)
        print(f"{path.name:40s} pooled {s['iou']:.4f} mean {s['mean_iou']:.4f} | {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
