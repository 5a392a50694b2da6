"""Object benchmark (issue #23): does instance-aware training separate touching objects?

Two models per dataset, trained for the same budget with the same seed and settings:
the semantic model (``train()``, background / foreground) and the instance-aware model
(``train(..., instances=True)`` with the default head, ``distance``: background + bins of
the distance to the object's boundary; ``--parts semantic boundary`` for the
background / interior / contour head).
Scored on held-out images as the field scores objects:

* **GlaS** (``glas/train`` -> ``glas/testA``): object F1, object Dice and object Hausdorff
  (pixels), pooled over the set as the GlaS challenge does
  (:mod:`napari_res101unet.evaluation.objects`), and pixel IoU of the foreground, of
  (a) connected components of the semantic model, (b) the distance-transform watershed on
  it and (c) the instance-aware model (objects by its head:
  :func:`napari_res101unet.postprocess.from_model.instances_for_head`). GlaS masks
  are binary: their objects are the 8-connected components (1,542 over the 165 images,
  against the official 1,530 glands), the JSON says so.
* **DSB 2018 nuclei** (10 train -> the 2 test images, instance masks) and the StarDist
  image (scored with the DSB models): F1 at IoU 0.5 (StarDist's matching) of (a) and (c).

The objects of all methods go through the same clean-up: holes filled and objects under
``min_size`` pixels removed, ``min_size`` being half the 5th percentile of the training
objects' areas, edge-cut objects left out, as a trained model records it
(``training.instance_targets.smallest_object_size``; recorded in the JSON).
``--side-by-side`` trains the two models at the same time, each in its own process on one
torch thread (as ``bench_training.py --side-by-side``: on a 2-core machine each model gets
one core for the whole budget, ``--minutes 25`` = 25 CPU
minutes each); prediction and scoring run in the same process after training, outside the
budget.

The issue's run (25 CPU minutes per model on GlaS, 10 on the nuclei, on a quiet machine)::

    python benchmarks/bench_objects.py --side-by-side --minutes 25 --json bench_objects.json

A check of the whole path in a few minutes (8 GlaS train images, 3 test images each)::

    python benchmarks/bench_objects.py --side-by-side --quick --json /tmp/objects.json

Nothing is downloaded; ``--encoder-weights imagenet`` works only where smp's weights are
cached (default: random initialisation for both models, as bench_training.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable_settings  # noqa: E402
from bench_training import _natural, hardware, load_folder  # noqa: E402
from napari_res101unet.config import TrainSettings  # noqa: E402
from napari_res101unet.device import resolve_device  # noqa: E402
from napari_res101unet.evaluation.objects import object_tally, pooled_scores  # noqa: E402
from napari_res101unet.io import read_image  # noqa: E402
from napari_res101unet.postprocess.from_model import instances_for_head  # noqa: E402
from napari_res101unet.postprocess.instances import InstanceOptions  # noqa: E402
from napari_res101unet.training.instance_targets import smallest_object_size  # noqa: E402

PARTS = {
    "semantic": ("a_components", "b_watershed"),
    "boundary": ("c_boundary_head",),
    "distance": ("c_distance_head", "c_distance_maxima"),
}
"""The models (one training each) and the methods scored on each model's output."""
METHOD = {"a_components": "components", "b_watershed": "watershed"}
SEEDS = {"c_distance_maxima": "maxima"}
"""The distance head's objects are scored twice: with its default seeds (the cores of the
objects) and with the maxima of the distance (the rule before the 25-minute run)."""
DEFAULT_HEAD = TrainSettings().instance_head
DSB_TEST = ("1c8b905c9519", "1ec74a26e772")  # the source repository's 2 test images
GLAS_OBJECTS = (
    "GlaS masks are binary: objects are their 8-connected components (1,542 components "
    "over the 165 images against the official 1,530 glands)"
)


# ---------------------------------------------------------------- data
def glas(root: Path, args) -> tuple[list, list[tuple[str, np.ndarray, np.ndarray]]]:
    """GlaS train pairs and testA ``(name, image, mask)`` (RGB, 0/1 masks)."""
    train = load_folder(root / "glas" / "train", args.train_images)
    folder = root / "glas" / "testA"
    names = sorted((folder / "images").iterdir(), key=_natural)[: args.test_images]
    test = load_folder(folder, args.test_images)
    return train, [(p.stem, image, mask) for p, (image, mask) in zip(names, test)]


def nuclei(root: Path, args):
    """DSB train pairs (instance masks), DSB test + the StarDist image as test triples."""
    folder = root / "dsb2018_nuclei"
    train, test = [], []
    for path in sorted((folder / "images").glob("*.png")):
        image = _rgb(read_image(path, labels=False).data)
        mask = read_image(folder / "masks" / f"{path.stem}.tif", labels=True).data
        if path.stem in DSB_TEST:
            test.append((f"dsb:{path.stem}", image, mask))
        else:
            train.append((image, mask))
    star = root / "stardist_nuclei2d"
    image = read_image(star / "img2d.tif", labels=False).data
    scale = 255.0 / max(float(image.max()), 1.0)
    test.append(
        (
            "stardist:img2d",
            _rgb((image * scale).astype(np.uint8)),
            read_image(star / "mask2d.tif", labels=True).data,
        )
    )
    return train[: args.train_images], test[: args.test_images]


def _rgb(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    return np.ascontiguousarray(data[..., :3])


def min_size(pairs) -> int:
    """The smallest plausible object, as a trained model records it for ``segment``
    (half the 5th percentile of the training objects' areas, edge-cut objects left out)."""
    return smallest_object_size([np.asarray(m) for _, m in pairs]) or 0


# ---------------------------------------------------------------- one part
def train_model(part: str, train: list, minutes: float, args, device):
    """The part's model: semantic (foreground) or an instance head, same seed and budget."""
    if part == "semantic":  # instance masks -> foreground (the semantic model's classes)
        train = [(image, (mask > 0).astype(np.uint8)) for image, mask in train]
    budget = {"epochs": args.epochs, "max_minutes": minutes}
    if args.steps is not None:  # the same steps for every model, whatever the timing
        budget = {"epochs": 1, "steps_per_epoch": args.steps}
    head = {"instances": True, "instance_head": part} if part != "semantic" else {}
    return nr.train(
        train, **budget, **head, device=device, patch_size=args.patch_size,
        batch_size=args.batch_size, seed=args.seed, encoder_weights=args.encoder_weights,
    )  # fmt: skip


def run_part(part: str, args) -> list[dict]:
    """Train the part's model on each dataset, predict the test images, score objects."""
    device = resolve_device(args.device)
    rows = []
    for name in args.datasets:
        train, test = (glas if name == "glas" else nuclei)(args.data, args)
        minutes = args.minutes if name == "glas" else args.nuclei_minutes
        started = time.monotonic()
        model = train_model(part, train, minutes, args, device)
        record = model.spec.training
        common = {
            "dataset": name,
            "minutes": minutes if args.steps is None else None,
            "train_seconds": round(time.monotonic() - started, 1),
            "steps": record["step"],
            "best_epoch": record["best_epoch"],
            "instance_head": model.spec.instance_head,
            "min_size": min_size(train),
            "train_images": len(train),
            "test_images": [stem for stem, *_ in test],
        }
        tallies = {m: [] for m in PARTS[part]}
        pixels = {m: [0, 0] for m in PARTS[part]}
        for _stem, image, truth in test:
            _, probs = nr.segment(image, model, return_probabilities=True, device=device)
            for method in PARTS[part]:
                opts = InstanceOptions(method=METHOD.get(method, "watershed"),
                                       min_size=common["min_size"],
                                       **({"distance_seeds": SEEDS[method]}
                                          if method in SEEDS else {}))  # fmt: skip
                objects = instances_for_head(probs, model.spec.instance_head, opts)
                tallies[method].append(object_tally(objects, truth, thresholds=(0.5,)))
                pixels[method][0] += int(((objects > 0) & (truth > 0)).sum())
                pixels[method][1] += int(((objects > 0) | (truth > 0)).sum())
        rows += [_row(common, m, tallies[m], pixels[m]) for m in PARTS[part]]
    return rows


def _row(common: dict, method: str, tallies: list, pixels: list[int]) -> dict:
    pooled = pooled_scores(tallies)
    return {
        **common,
        "method": method,
        "object_f1": pooled["object_f1"],
        "object_dice": pooled["object_dice"],
        "object_hausdorff": pooled["object_hausdorff"],
        "f1_iou50": pooled["matching"][0]["f1"],
        "pixel_iou": pixels[0] / max(pixels[1], 1),
        "n_pred": pooled["n_pred"],
        "n_true": pooled["n_true"],
        "per_image_f1_iou50": [t.matching[0].scores()["f1"] for t in tallies],
    }


def side_by_side(args, argv) -> list[dict]:
    """The parts at the same time, each this script with ``--part`` on one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    kept = [a for a in argv if a != "--side-by-side"]
    if "--json" in kept:
        i = kept.index("--json")
        del kept[i : i + 2]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-objects-") as tmp:
        jobs = []
        for part in args.parts:
            out, log = Path(tmp) / f"{part}.json", Path(tmp) / f"{part}.log"
            command = [sys.executable, __file__, *kept, "--part", part, "--json", str(out)]
            with open(log, "w") as handle:  # the child keeps its own descriptor
                job = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
            jobs.append((part, out, log, job))
        for part, out, log, job in jobs:
            if job.wait() != 0:
                raise RuntimeError(f"part {part} failed:\n{log.read_text()[-3000:]}")
            rows += json.loads(out.read_text())["results"]
    return rows


# ---------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    head = f"{'dataset':<8} {'method':<18} {'min':>5} {'steps':>6} {'obj F1':>7} "
    head += f"{'obj Dice':>8} {'obj Haus':>8} {'F1@.5':>6} {'px IoU':>7} {'n pred/true':>12}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['dataset']:<8} {r['method']:<18} {_minutes(r):>5} {r['steps']:>6} "
            f"{r['object_f1']:7.4f} {r['object_dice']:8.4f} {r['object_hausdorff']:8.2f} "
            f"{r['f1_iou50']:6.4f} {r['pixel_iou']:7.4f} {r['n_pred']:>5}/{r['n_true']:<6}"
        )
    return "\n".join(lines)


def _minutes(row: dict) -> str:
    return "-" if row["minutes"] is None else f"{row['minutes']:g}"


def goals(rows: list[dict]) -> dict:
    """The issue's goals on GlaS: (c) >= (a) + 0.10 object F1 and a lower Hausdorff."""
    by = {(r["dataset"], r["method"]): r for r in rows}
    a, c = by.get(("glas", "a_components")), by.get(("glas", f"c_{DEFAULT_HEAD}_head"))
    if a is None or c is None:
        return {}
    return {
        "glas_f1_gain_c_over_a": round(c["object_f1"] - a["object_f1"], 4),
        "glas_f1_goal_met": c["object_f1"] >= a["object_f1"] + 0.10,
        "glas_hausdorff_lower": c["object_hausdorff"] < a["object_hausdorff"],
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--minutes", type=float, default=25.0, help="GlaS budget per model (25)")
    p.add_argument("--nuclei-minutes", type=float, default=10.0, help="DSB budget (10)")
    p.add_argument("--datasets", nargs="+", default=["glas", "nuclei"], choices=["glas", "nuclei"])
    p.add_argument(
        "--parts",
        nargs="+",
        default=["semantic", DEFAULT_HEAD],
        choices=list(PARTS),
        help=f"models to train (default: semantic and the default head, {DEFAULT_HEAD})",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="train every model this many steps instead"
    )
    p.add_argument("--side-by-side", action="store_true", help="models at once, 1 core each")
    p.add_argument("--quick", action="store_true", help="0.5 min, 8 train and 3 test images")
    p.add_argument("--train-images", type=int, default=None, help="limit (quick checks)")
    p.add_argument("--test-images", type=int, default=None, help="limit (quick checks)")
    p.add_argument("--patch-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=1000, help="the time budget ends training")
    p.add_argument("--encoder-weights", default=None, help="imagenet or a local file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)  # one child
    args = p.parse_args(argv)
    if args.quick:
        args.minutes = args.nuclei_minutes = min(args.minutes, 0.5)
        args.train_images = args.train_images or 8
        args.test_images = args.test_images or 3
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.part is not None:
        rows = run_part(args.part, args)
    elif args.side_by_side:
        rows = side_by_side(args, argv)
    else:
        rows = [row for part in args.parts for row in run_part(part, args)]
    rows.sort(key=lambda r: (r["dataset"], r["method"]))
    settings = portable_settings(vars(args), args.data)
    result = {
        "hardware": hardware(resolve_device(args.device)),
        "settings": {**settings, "threads_per_model": 1 if args.side_by_side else None},
        "objects": {"glas": GLAS_OBJECTS, "nuclei": "instance masks: each id one nucleus"},
        "scores": "object F1/Dice/Hausdorff (pixels) pooled over the set as GlaS; F1 at IoU "
        "0.5 as StarDist's matching; pixel IoU of the foreground over all test pixels",
        "results": rows,
        "goals": goals(rows),
    }
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.part is None:
        print(table(rows))
        print(GLAS_OBJECTS)
        print(json.dumps(result["goals"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
