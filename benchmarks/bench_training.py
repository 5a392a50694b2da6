"""Training benchmark: napari-res101unet's ``train()`` against a plain smp training loop.

1. Throughput (images per second, same batch and patch size, same data) of ``train()``
   and of a plain segmentation-models-pytorch loop written the usual way (Dataset of
   random crops, DataLoader, smp Dice + cross-entropy, Adam, nothing else); target: the
   ratio ours / plain >= 0.95.
2. Accuracy for the same wall-clock budget (``--minutes`` per method per dataset): GlaS
   (fine-tune on ``glas/train``, test on ``glas/testA``) and MSD liver JPEG slices (split by
   volume, 80/20, fixed seed). Both models are scored with ``evaluate()`` (pixel IoU/Dice
   over all test pixels, and the mean per image).

   Several budgets run as cells (dataset x minutes): issue 16's table is
   ``--minutes 10 25 40 --datasets glas liver`` (target: ours >= plain + 0.05 IoU at 10
   and 25 minutes, >= plain at 40); ``--cells liver:10 glas:25`` runs only those cells;
   every cell is reported, met or missed.

   ``--side-by-side`` runs the methods of a cell at the same time, each in its own
   process on one torch thread: on a 2-core machine each method gets one core for the
   whole budget (``--minutes 10`` = 10 CPU minutes each), both see the same memory
   traffic, and a table of cells takes half the wall time.

Usage::

    python benchmarks/bench_training.py --minutes 5 --json bench_training.json
    python benchmarks/bench_training.py --minutes 10 25 40 --throughput-steps 0 --out results/
    python benchmarks/bench_training.py --minutes 0.5 --max-images 8 --datasets glas
    python benchmarks/bench_training.py --side-by-side --minutes 10 25 --throughput-steps 0 \
        --out results/

Nothing is downloaded: ``--encoder-weights imagenet`` works only where smp's weights are
cached (or give a local ResNet-101 file); the default is random initialisation for both.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable_settings  # noqa: E402
from napari_res101unet.device import (  # noqa: E402
    describe_device,
    precision_name,
    resolve_device,
)
from napari_res101unet.io import read_image  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
LIVER_NAME = re.compile(r"^(?:flipped|mirrored)_(\d+)_(\d+)\.jpe?g$")


# ---------------------------------------------------------------- data
def load_folder(folder: Path, limit: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8 image, 0/1 mask) pairs of ``folder/images`` and ``folder/masks``."""
    files = sorted((folder / "images").iterdir(), key=_natural)[:limit]
    return [_pair(path, folder / "masks" / path.name) for path in files]


def _natural(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _pair(image: Path, mask: Path) -> tuple[np.ndarray, np.ndarray]:
    data = read_image(image, labels=False).data
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    m = read_image(mask, labels=False).data  # raw 0/255 (JPEG: lossy) values
    m = m[..., 0] if m.ndim == 3 else m
    return data[..., :3], (m > 127).astype(np.uint8)


def liver_volume(path: Path) -> str:
    """The volume ID of an MSD liver slice file (``flipped_<volume>_<slice>.jpg``)."""
    return LIVER_NAME.match(path.name).group(1)


def liver_files(folder: Path, seed: int) -> tuple[list[Path], list[Path], list[str]]:
    """``(train files, test files, all volume IDs)`` of the MSD liver slices, split 80/20
    by volume ID with ``seed`` (the one split every liver benchmark uses)."""
    files = [p for p in sorted((folder / "images").iterdir()) if LIVER_NAME.match(p.name)]
    volumes = sorted({liver_volume(p) for p in files})
    order = np.random.default_rng(seed).permutation(len(volumes))
    test_volumes = {volumes[i] for i in order[: max(1, round(0.2 * len(volumes)))]}
    train = [p for p in files if liver_volume(p) not in test_volumes]
    test = [p for p in files if liver_volume(p) in test_volumes]
    return train, test, volumes


def liver_split(folder: Path, seed: int, limit: int | None):
    """Train/test pairs of the MSD liver slices, split 80/20 by volume ID."""
    train, test, volumes = liver_files(folder, seed)
    load = [_pair(p, folder / "masks" / p.name) for p in train[:limit]]
    return load, [_pair(p, folder / "masks" / p.name) for p in test[:limit]], len(volumes)


def synthetic_pairs(n: int, size: int = 384, seed: int = 0):
    """``n`` seeded random RGB images with blob masks (speed does not depend on content)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    pairs = []
    for _ in range(n):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2).tolist()
        r = size // 5
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image[mask > 0] //= 2
        pairs.append((image, mask))
    return pairs


def datasets(root: Path, names: list[str], seed: int, limit: int | None):
    for name in names:
        if name == "synthetic":
            n = limit or 16
            yield name, synthetic_pairs(n, seed=seed), synthetic_pairs(4, seed=seed + 1), {}
            continue
        if name == "glas":
            base = root / "glas"
            yield name, load_folder(base / "train", limit), load_folder(base / "testA", limit), {}
        elif name == "liver":
            train, test, n = liver_split(root / "msd_liver_jpg", seed, limit)
            yield name, train, test, {"volumes": n, "split": "80/20 by volume"}
        else:
            raise SystemExit(f"unknown dataset {name!r}; choose glas or liver")


# ---------------------------------------------------------------- the plain smp loop
class CropDataset(torch.utils.data.Dataset):
    """Random crops (zero-padded when the image is smaller), ImageNet-normalised."""

    def __init__(self, pairs, patch: int, length: int, seed: int) -> None:
        self.pairs, self.patch, self.length = pairs, patch, length
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):
        image, mask = self.pairs[self.rng.integers(len(self.pairs))]
        h, w = mask.shape
        p = self.patch
        if h < p or w < p:
            pad = ((0, max(0, p - h)), (0, max(0, p - w)))
            image, mask = np.pad(image, (*pad, (0, 0))), np.pad(mask, pad)
            h, w = mask.shape
        y, x = self.rng.integers(h - p + 1), self.rng.integers(w - p + 1)
        img = (image[y : y + p, x : x + p].astype(np.float32) / 255.0 - MEAN) / STD
        return torch.from_numpy(img.transpose(2, 0, 1).copy()), torch.from_numpy(
            mask[y : y + p, x : x + p].astype(np.int64)
        )


def plain_train(pairs, args, device, *, seconds=None, steps=None, on_step=None):
    """The usual smp loop; stops after ``steps`` steps or ``seconds``. Returns the model."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(args.seed)
    weights = "imagenet" if args.encoder_weights == "imagenet" else None
    model = smp.Unet("resnet101", encoder_weights=weights, classes=2).to(device)
    dice = smp.losses.DiceLoss(mode="multiclass", from_logits=True)
    ce = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    length = 10**7 if steps is None else steps * args.batch_size
    loader = torch.utils.data.DataLoader(
        CropDataset(pairs, args.patch_size, length, args.seed),
        batch_size=args.batch_size,
        pin_memory=device.type == "cuda",
    )
    model.train()
    losses = []
    start = time.monotonic()
    for step, (x, y) in enumerate(loader, start=1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = dice(logits, y) + ce(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step)
        if seconds is not None and time.monotonic() - start >= seconds:
            break
    return model, step


def as_res101unet(plain_model):
    """The plain model as a Res101_UNet with a spec, for ``evaluate()``."""
    net = nr.build_model(classes=2, normalization="imagenet")
    net.load_state_dict(plain_model.state_dict())
    return net


# ---------------------------------------------------------------- measurements
class StepClock:
    """Times of steps after ``warmup`` steps (the first steps pay for allocation)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times = warmup, []

    def __call__(self, step: int) -> None:
        if step >= self.warmup:
            self.times.append(time.perf_counter())

    def event(self, event) -> None:
        """As ``train()``'s callback."""
        if event.kind == "step":
            self(event.step)

    def seconds_per_step(self) -> float:
        return float(np.median(np.diff(self.times))) if len(self.times) > 1 else float("nan")


def throughput(pairs, args, device) -> dict:
    """Images per second of ``train()`` and the plain loop, alternating two rounds. On CUDA
    ``train()`` runs with mixed precision (its default) and again in float32, the plain
    loop's precision."""
    warmup, steps = 2, args.warmup_steps + args.throughput_steps
    runs = {"ours": True, "ours_float32": False} if device.type == "cuda" else {"ours": True}
    times: dict[str, list[float]] = {name: [] for name in [*runs, "plain"]}
    for _ in range(2):
        for name, mixed in runs.items():
            clock = StepClock(warmup)
            nr.train(
                pairs,
                epochs=1,
                steps_per_epoch=steps,
                val_fraction=0.0,
                device=device,
                patch_size=args.patch_size,
                batch_size=args.batch_size,
                seed=args.seed,
                encoder_weights=args.encoder_weights,
                mixed_precision=mixed,
                callback=clock.event,
            )
            times[name].append(clock.seconds_per_step())
        plain_clock = StepClock(warmup)
        plain_train(pairs, args, device, steps=steps, on_step=plain_clock)
        times["plain"].append(plain_clock.seconds_per_step())
    ips = {name: args.batch_size / float(np.median(t)) for name, t in times.items()}
    result = {f"{name}_images_per_s": round(v, 3) for name, v in ips.items()}
    result.update(
        ratio=round(ips["ours"] / ips["plain"], 3),
        precision=precision_name(device, True),
        seconds_per_step=times,
        steps_timed=steps - warmup,
    )
    return result


def run_method(method: str, train_pairs, minutes: float, args, device):
    """``(model, seconds, steps, extra)`` of one method trained for ``minutes``."""
    started = time.monotonic()
    if method == "plain":
        plain, steps = plain_train(train_pairs, args, device, seconds=60.0 * minutes)
        return as_res101unet(plain), time.monotonic() - started, steps, {}
    model = nr.train(
        train_pairs,
        epochs=args.epochs,
        max_minutes=minutes,
        device=device,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        seed=args.seed,
        encoder_weights=args.encoder_weights,
        augment=method != "ours_noaug",
        mirror=method != "ours_nomirror",
        **({"val_fraction": 0.0} if method == "ours_noval" else {}),
        learning_rate=args.learning_rate,  # None: train() picks it, as its default does
    )
    record = model.spec.training
    return model, time.monotonic() - started, record["step"], _summary(record)


def compare(name, train_pairs, test_pairs, args, device, minutes=None) -> list[dict]:
    """Each of ``args.methods`` for ``minutes`` (default ``args.minutes``), scored on the
    test pairs."""
    minutes = args.minutes[0] if minutes is None else minutes
    rows = []
    for method in args.methods:
        model, seconds, n_steps, extra = run_method(method, train_pairs, minutes, args, device)
        scores = nr.evaluate(model, test_pairs, device=device)
        if args.save_models is not None:  # e.g. for bench_robustness.py --model
            save_cell_model(model, args.save_models, name, minutes, method)
        rows.append(
            {
                "dataset": name,
                "minutes": minutes,
                "method": method,
                "train_seconds": round(seconds, 1),
                "steps": n_steps,
                **{k: scores[k] for k in ("iou", "dice", "mean_iou", "mean_dice")},
                "train_images": len(train_pairs),
                "test_images": len(test_pairs),
                **extra,
            }
        )
    return rows


def save_cell_model(model, folder: Path, name: str, minutes: float, method: str) -> Path:
    """``folder/<dataset>-<minutes>min-<method>.safetensors``; the JPEG slices carry no
    pixel size, so a model without one records a unit spacing (1, 1): the same as
    training with ``spacing=(1, 1)``, which resamples nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    if getattr(model.spec, "spacing", None) is None:
        model.spec.spacing = [1.0, 1.0]
    path = folder / f"{name}-{minutes:g}min-{method}.safetensors"
    nr.save_model(model, path)
    return path


def _summary(record: dict) -> dict:
    keys = ("epochs_done", "best_epoch", "best_val_iou", "stopped")
    extra = {**{k: record[k] for k in keys}, "validation": record["settings"]["validation"]}
    extra["learning_rate"] = record["settings"]["learning_rate"]
    if record.get("recipe"):
        extra["recipe"] = record["recipe"]
    return extra


TARGETS = {10.0: 0.05, 25.0: 0.05, 40.0: 0.0}
"""Issue 16: ours - plain IoU at least this at these budgets (minutes)."""


def cells_table(rows: list[dict]) -> list[dict]:
    """One line per (dataset, minutes): each method's IoU, ours - plain, target, met."""
    cells: dict[tuple, dict] = {}
    for r in rows:
        cell = cells.setdefault((r["dataset"], r["minutes"]), {})
        cell[r["method"]] = r["iou"]
    table = []
    for (dataset, minutes), ious in cells.items():
        line = {"dataset": dataset, "minutes": minutes, **ious}
        ours = next((m for m in ious if m.startswith("ours")), None)  # or a variant
        if ours and "plain" in ious:
            delta = ious[ours] - ious["plain"]
            target = TARGETS.get(float(minutes))
            line.update(delta=round(delta, 4), target=target)
            line["met"] = None if target is None else bool(delta >= target)
        table.append(line)
    return table


def markdown(table: list[dict], methods: list[str]) -> str:
    """The cells as a markdown table (every cell, met or missed)."""
    ours = next((m for m in methods if m.startswith("ours")), "ours")
    head = ["dataset", "minutes", *methods, f"{ours} - plain", "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in table:
        values = [c["dataset"], f"{c['minutes']:g}"]
        values += [f"{c[m]:.3f}" if m in c else "" for m in methods]
        values += [
            f"{c['delta']:+.3f}" if "delta" in c else "",
            "" if c.get("target") is None else f">= {c['target']:+.2f}",
            {True: "yes", False: "**no**", None: ""}[c.get("met")],
        ]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def wanted(cells: list[str] | None, dataset: str, minutes: float) -> bool:
    """Whether the ``--cells`` filter (``dataset:minutes`` items) keeps this cell."""
    if not cells:
        return True
    return any(c.split(":")[0] == dataset and float(c.split(":")[1]) == minutes for c in cells)


# ---------------------------------------------------------------- report
def hardware(device: torch.device) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import segmentation_models_pytorch as smp

    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
        "device": describe_device(device),
        "python": platform.python_version(),
    }


def print_report(result: dict) -> None:
    t = result["throughput"]
    if t:
        print(
            f"\nthroughput (batch {result['settings']['batch_size']}, patch "
            f"{result['settings']['patch_size']}): ours {t['ours_images_per_s']:.2f} img/s, "
            f"plain smp {t['plain_images_per_s']:.2f} img/s, ratio {t['ratio']:.3f} "
            f"(target >= 0.95); ours in {t.get('precision', 'float32')}"
        )
        if "ours_float32_images_per_s" in t:
            same = t["ours_float32_images_per_s"]
            print(f"ours in float32 (the plain loop's precision): {same:.2f} img/s")
    header = f"{'dataset':<8} {'min':>5} {'method':<10} {'seconds':>8} {'steps':>6} {'IoU':>7}"
    print(f"\n{header} {'Dice':>7} {'mIoU/img':>8} {'mDice/img':>9}")
    for r in result["results"]:
        print(
            f"{r['dataset']:<8} {r['minutes']:>5g} {r['method']:<10} {r['train_seconds']:>8.1f} "
            f"{r['steps']:>6} "
            f"{r['iou']:7.4f} {r['dice']:7.4f} {r['mean_iou']:8.4f} {r['mean_dice']:9.4f}"
        )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument(
        "--minutes", type=float, nargs="+", default=[5.0], help="budgets (one cell each)"
    )
    p.add_argument(
        "--cells", nargs="+", default=None, help="only these cells, e.g. liver:10 glas:25"
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=["ours", "plain"],
        choices=["ours", "plain", "ours_noaug", "ours_nomirror", "ours_noval"],
        help="ours_noaug: train() with augment=False; ours_nomirror: with mirror=False; "
        "ours_noval: with val_fraction=0 (trains on every image, keeps the last step)",
    )
    p.add_argument("--out", type=Path, help="folder for training.json and training.md")
    p.add_argument(
        "--datasets",
        nargs="+",
        default=["glas", "liver"],
        help="glas, liver, or synthetic (seeded random images: any machine, speed only)",
    )
    p.add_argument("--throughput-only", action="store_true", help="skip the accuracy part")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--patch-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=1000, help="ours: the time budget ends it")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="ours methods: this peak learning rate (default: train()'s, 1e-3 from random "
        "weights); the plain loop keeps its 1e-4",
    )
    p.add_argument("--encoder-weights", default=None, help="imagenet or a local file")
    p.add_argument("--throughput-steps", type=int, default=10, help="timed steps (0: skip)")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--max-images", type=int, default=None, help="limit images (quick runs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--save-models", type=Path, default=None, help="save each cell's models in this folder"
    )
    p.add_argument(
        "--side-by-side",
        action="store_true",
        help="each method of a cell in its own 1-thread process, at the same time",
    )
    args = p.parse_args(argv)
    for cell in args.cells or []:
        if not re.fullmatch(r"\w+:\d+(\.\d*)?", cell):
            p.error(f"--cells takes dataset:minutes items such as liver:10, got {cell!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    settings = portable_settings(vars(args), args.data)  # no absolute paths in results
    result = {"hardware": hardware(device), "settings": settings, "throughput": None}
    result["results"] = []
    for i, (name, train_pairs, test_pairs, info) in enumerate(
        datasets(args.data, _needed(args), args.seed, args.max_images)
    ):
        print(f"{name}: {len(train_pairs)} train, {len(test_pairs)} test images {info}")
        if i == 0 and args.throughput_steps > 0:
            result["throughput"] = {"dataset": name, **throughput(train_pairs, args, device)}
        if args.throughput_only:
            continue
        for minutes in args.minutes:
            if not wanted(args.cells, name, minutes):
                continue
            if args.side_by_side:
                result["results"] += side_by_side(name, minutes, argv, args)
                result["settings"]["threads_per_method"] = 1
            else:
                result["results"] += compare(name, train_pairs, test_pairs, args, device, minutes)
                write(result, args)  # after every cell: a long run keeps what it measured
    print_report(result)
    table = write(result, args)
    if table:
        print("\n" + markdown(table, args.methods))
    return 0


def side_by_side(name: str, minutes: float, argv, args) -> list[dict]:
    """The cell's methods at the same time, one process and one torch thread each (this
    script again, with ``--cells name:minutes --methods M``); their result rows."""
    import os
    import subprocess
    import tempfile

    argv = list(sys.argv[1:] if argv is None else argv)
    drop = {"--side-by-side", "--throughput-only"}
    valued = {"--cells", "--methods", "--minutes", "--datasets", "--out", "--json"}
    kept, skip = [], False
    for a in argv:
        if a.startswith("--"):
            skip = a in valued
            if a in drop or skip:
                continue
        elif skip:
            continue
        kept.append(a)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-cells-") as tmp:
        jobs = []
        for method in args.methods:
            out = Path(tmp) / f"{method}.json"
            command = [
                sys.executable,
                __file__,
                *kept,
                "--datasets",
                name,
                "--minutes",
                f"{minutes:g}",
                "--cells",
                f"{name}:{minutes:g}",
                "--methods",
                method,
                "--throughput-steps",
                "0",
                "--json",
                str(out),
            ]
            log = open(Path(tmp) / f"{method}.log", "w")  # noqa: SIM115 (open while it runs)
            jobs.append(
                (
                    method,
                    out,
                    log,
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT),
                )
            )
        rows = []
        for method, out, log, job in jobs:
            job.wait()
            log.close()
            if job.returncode != 0:
                tail = (Path(tmp) / f"{method}.log").read_text()[-2000:]
                raise RuntimeError(f"{name}:{minutes:g} {method} failed:\n{tail}")
            found = json.loads(out.read_text())
            for row in found["results"]:
                row["torch_threads"] = found["hardware"]["torch_threads"]
                rows.append(row)
    return rows


def _needed(args) -> list[str]:
    """The datasets with a cell to run (all of them for throughput only)."""
    if args.throughput_only or not args.cells:
        return args.datasets
    return [d for d in args.datasets if any(wanted(args.cells, d, m) for m in args.minutes)]


def write(result: dict, args) -> list[dict]:
    """Write the JSON (``--json``, ``--out``) and markdown table (``--out``); the cells."""
    result["cells"] = table = cells_table(result["results"])
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "training.json").write_text(json.dumps(result, indent=2))
        (args.out / "training.md").write_text(markdown(table, args.methods))
    return table


if __name__ == "__main__":
    sys.exit(main())
