"""A model meets a new site: MSD liver slices to another scanner's CT, and the loop's remedy.

1. A base model is trained ``--base-minutes`` with ``train()``'s defaults on the MSD
   Task03 liver JPEG slices of the train volumes (split 80/20 by volume ID as in
   ``bench_training.py``), or reused with ``--base-model``; it is saved under
   ``--out/work`` so that a rerun can reuse it.
2. The new site is the TotalSegmentator example CT (``totalseg_example``: raw HU, 3 mm,
   30 axial slices; liver = label 5 of ``example_seg``, which is TotalSegmentator's own
   output, **not a manual ground truth**). It is read with the project's reader, its axial
   slices that hold liver are windowed to 8 bits as a user exporting them would
   (``--window 400 50``: W400/L50 HU to 0..255), turned to the MSD slices' orientation
   (``--orientation``) and resized to the MSD slices' estimated pixel size
   (``--pixel-size``, 1.5 mm: LiTS CTs are about 0.7-0.8 mm at 512 px, the JPEGs 256 px;
   the body's extent in pixels, recorded for both, then matches).
3. Three of those slices (at 25/50/75 % of the liver's z range) are the user's
   corrections; the others are scored.

Scores (liver IoU over all pixels pooled, and the mean per slice): (a) the base model on
the new site; (b) after ``refine`` on the 3 new-site slices for ``--refine-minutes``;
(c) after ``refine`` on 3 MSD slices of train volumes the base model never saw, for the
same minutes (the control); and each model on the MSD held-out volumes, for scale.

Usage::

    python benchmarks/bench_new_site.py --data ../shared/data --out benchmarks/results/new-site
    python benchmarks/bench_new_site.py --base-model bench/work/base-10min-seed0.safetensors \
        --out bench                             # reuse the base model of an earlier run
    python benchmarks/bench_new_site.py --quick --out /tmp/new-site     # a minute or two

Writes ``new-site.json`` and ``new-site.md`` under ``--out`` (no absolute paths) and, under
``--out/work``, the base model and ``orientation.png`` (an MSD slice beside a new-site
slice as fed to the model, liver outlined) to check the orientation by eye.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import napari_res101unet as nr  # noqa: E402
from _portable import portable, portable_settings, write_results  # noqa: E402
from bench_training import _pair, hardware, liver_files, liver_volume  # noqa: E402
from napari_res101unet.device import resolve_device  # noqa: E402

CT = "totalseg_example/volumes/example_ct_sm.nii.gz"
SEG = "totalseg_example/labels/example_seg.nii.gz"
ORIENTATIONS = ("flipped", "mirrored", "none")
LABELS_NOTE = "new-site truth: TotalSegmentator's own output (label 5), not a manual segmentation"


# ---------------------------------------------------------------- pure helpers
def window_to_uint8(hu: np.ndarray, width: float, level: float) -> np.ndarray:
    """HU to 0..255 through the display window ``level +- width / 2`` (clipped)."""
    if not np.isfinite(width) or width <= 0 or not np.isfinite(level):
        raise ValueError(f"window width must be > 0 and level finite, got W{width} L{level}")
    low = level - width / 2.0
    scaled = (np.asarray(hu, np.float64) - low) * (255.0 / width)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def radiological(slices: np.ndarray, direction) -> np.ndarray:
    """``(Z, Y, X, ...)`` axial slices flipped so that rows run anterior to posterior and
    columns patient right to left (the radiological view, patient's right on the image's
    left), from the reader's ITK (LPS) ``direction`` of the array's x, y, z axes."""
    d = np.asarray(direction, float).reshape(3, 3)
    plane = d[:2, :2]
    if not np.allclose(np.abs(plane), np.eye(2), atol=1e-3):
        raise ValueError(f"only axis-aligned axial slices are handled, direction {d.tolist()}")
    out = slices
    if plane[0, 0] < 0:  # x runs towards the patient's right: flip to right-to-left
        out = out[:, :, ::-1]
    if plane[1, 1] < 0:  # y runs towards anterior: flip to anterior-to-posterior
        out = out[:, ::-1]
    return out


def as_msd(slices: np.ndarray, orientation: str) -> np.ndarray:
    """Radiological ``(Z, Y, X, ...)`` slices in an MSD JPEG orientation: ``flipped`` (as
    the ``flipped_*`` slices: liver at the top, spine on the left), ``mirrored`` (liver at
    the bottom, spine on the right) or ``none`` (radiological)."""
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation {orientation!r}; choose one of {', '.join(ORIENTATIONS)}")
    if orientation == "none":
        return slices
    turned = np.swapaxes(slices, 1, 2)  # rows: patient right to left; columns: A to P
    return turned[:, :, ::-1] if orientation == "flipped" else turned[:, ::-1]


def refine_slices(present: np.ndarray, n: int = 3) -> list[int]:
    """``n`` of the slice indices ``present`` (sorted, those with liver), spread over the
    liver's z range: nearest to 25/50/75 % of it for ``n = 3``; distinct."""
    present = np.sort(np.asarray(present, int))
    if n < 1 or len(present) <= n:
        raise ValueError(
            f"{n} refinement slices need more than {n} liver slices, got {len(present)}"
        )
    lo, hi = present[0], present[-1]
    picks: list[int] = []
    for k in range(1, n + 1):
        target = lo + k * (hi - lo) / (n + 1)
        free = [int(i) for i in present if int(i) not in picks]
        picks.append(min(free, key=lambda i: (abs(i - target), i)))
    return sorted(picks)


def body_extent(gray: np.ndarray, threshold: int = 5) -> tuple[int, int]:
    """Rows and columns spanned by the body in an 8-bit slice: the largest component above
    ``threshold`` (dark fat included), closed and filled; ``(0, 0)`` when there is none."""
    from scipy import ndimage as ndi

    body = ndi.binary_fill_holes(ndi.binary_closing(np.asarray(gray) > threshold, iterations=3))
    parts, n = ndi.label(body)
    if n == 0:
        return 0, 0
    largest = parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))
    rows, cols = np.flatnonzero(largest.any(axis=1)), np.flatnonzero(largest.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def median_extent(images) -> list[float]:
    """Median :func:`body_extent` (rows, columns) of ``images`` (first channel)."""
    return np.median([body_extent(i[..., 0]) for i in images], axis=0).tolist()


def pixel_scale(spacing: float, pixel_size: float) -> float:
    """How much to enlarge slices of ``spacing`` mm to pixels of ``pixel_size`` mm."""
    if not pixel_size > 0 or not spacing > 0:
        raise ValueError(f"pixel sizes must be > 0, got {spacing} and {pixel_size}")
    return spacing / pixel_size


# ---------------------------------------------------------------- data
def msd_split(folder: Path, seed: int, n_control: int):
    """``(train, control, test)`` file lists: ``bench_training.liver_split``'s 80/20 split
    by volume ID (same seed, same held-out volumes); ``control`` is one liver slice of each
    of ``n_control`` train volumes drawn with the seed, whose slices leave the train list."""
    if not (folder / "images").is_dir():
        raise SystemExit(f"MSD liver slices not found under {folder} (expected images/, masks/)")
    train, test, volumes = liver_files(folder, seed)
    test_volumes = {liver_volume(p) for p in test}
    train_volumes = [v for v in volumes if v not in test_volumes]
    rng = np.random.default_rng(seed + 1)
    control_volumes = [train_volumes[i] for i in rng.choice(len(train_volumes), n_control, False)]
    control = [
        _most_liver([p for p in train if liver_volume(p) == v], folder) for v in control_volumes
    ]
    train = [p for p in train if liver_volume(p) not in control_volumes]
    return train, control, test


def _most_liver(files, folder: Path) -> Path:
    """The file of ``files`` whose mask holds the most liver (the first of equals)."""
    areas = [int(_pair(p, folder / "masks" / p.name)[1].sum()) for p in files]
    return files[int(np.argmax(areas))]


def load_pairs(files, folder: Path, limit: int | None = None):
    return [_pair(p, folder / "masks" / p.name) for p in files[:limit]]


def new_site(data: Path, args):
    """``(images (N, Y, X, 3) uint8, liver (N, Y, X) uint8, z indices, info)``."""
    from napari_res101unet.io import read_image
    from napari_res101unet.preprocess.spacing import nearest, resize_slices

    image = read_image(data / CT)
    seg = read_image(data / SEG, labels=True)
    if image.data.shape != seg.data.shape:
        raise SystemExit(f"{CT} {image.data.shape} and {SEG} {seg.data.shape} differ")
    liver = (np.asarray(seg.data) == args.liver_label).astype(np.uint8)
    z = np.flatnonzero(liver.reshape(len(liver), -1).any(axis=1))
    gray = window_to_uint8(np.asarray(image.data)[z], *args.window)
    gray = as_msd(radiological(gray, image.direction), args.orientation)
    lab = as_msd(radiological(liver[z], image.direction), args.orientation)
    sy, sx = image.spacing[1], image.spacing[2]
    scale = pixel_scale(sy, args.pixel_size), pixel_scale(sx, args.pixel_size)
    if args.orientation != "none":
        scale = scale[::-1]  # rows are the volume's x after the turn
    size = round(gray.shape[1] * scale[0]), round(gray.shape[2] * scale[1])
    gray = resize_slices(np.ascontiguousarray(gray)[..., None], size)[..., 0]
    lab = nearest(np.ascontiguousarray(lab), size)
    info = {
        "volume": CT,
        "labels": SEG,
        "labels_note": LABELS_NOTE,
        "spacing_mm": [float(s) for s in image.spacing],
        "liver_slices": len(z),
        "slice_shape_fed": list(size),
    }
    return np.repeat(gray[..., None], 3, axis=-1), lab, z, info


def liver_grey(pairs) -> float:
    """Median grey (first channel) inside the liver, over ``pairs``."""
    values = [img[..., 0][lab > 0] for img, lab in pairs if lab.any()]
    return float(np.median(np.concatenate(values))) if values else float("nan")


def orientation_png(msd_pair, site_pair, path: Path) -> Path:
    """An MSD slice beside a new-site slice as fed to the model, liver outlined in red."""
    from PIL import Image

    tiles = []
    for image, labels in (msd_pair, site_pair):
        rgb = np.array(image[..., :3], np.uint8)
        m = labels > 0
        edge = (m ^ np.roll(m, 1, 0)) | (m ^ np.roll(m, 1, 1))
        rgb[edge] = (255, 0, 0)
        canvas = np.zeros((256, max(256, rgb.shape[1]), 3), np.uint8)
        canvas[: min(256, rgb.shape[0]), : rgb.shape[1]] = rgb[:256]
        tiles.append(canvas)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)
    return path


# ---------------------------------------------------------------- models and scores
def base_model(train_pairs, args, device):
    """``(model, seconds, steps, path)``: trained with ``train()``'s defaults for
    ``--base-minutes``, saved under ``--out/work``; or loaded from ``--base-model``."""
    if args.base_model is not None:
        model = nr.load_model(args.base_model, device=device)
        return model, 0.0, (model.spec.training or {}).get("step"), args.base_model
    started = time.monotonic()
    options = {} if not args.quick else {"patch_size": args.patch_size, "batch_size": 2}
    model = nr.train(
        train_pairs,
        epochs=1000,  # the time budget ends it, as in bench_training.py
        max_minutes=args.base_minutes,
        encoder_weights=args.encoder_weights,
        device=device,
        seed=args.seed,
        **options,
    )
    seconds = time.monotonic() - started
    path = args.out / "work" / f"base-{args.base_minutes:g}min-seed{args.seed}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()  # this run's model replaces an earlier run's of the same name
    nr.save_model(model, path)
    return model, seconds, model.spec.training["step"], path


def refined(base, images, labels, args, device):
    """``(model, seconds, steps)``: ``refine`` on the stack ``images`` with every slice
    corrected (the user checked all of each), for ``--refine-minutes``."""
    started = time.monotonic()
    options = {} if not args.quick else {"patch_size": args.patch_size, "batch_size": 2}
    out = nr.refine(
        base,
        np.stack(images),
        np.stack(labels),
        edited=list(range(len(images))),
        minutes=args.refine_minutes,
        output=False,
        device=device,
        seed=args.seed,
        **options,
    )
    return out.model, time.monotonic() - started, out.record["steps"]


def scores(model, pairs, device) -> dict:
    s = nr.evaluate(model, pairs, device=device)
    return {"iou": round(s["iou"], 4), "mean_iou": round(s["mean_iou"], 4), "n": len(pairs)}


def run(args) -> dict:
    device = resolve_device(args.device)
    folder = args.data / "msd_liver_jpg"
    train_files, control_files, test_files = msd_split(folder, args.seed, args.corrected)
    limit, test_limit = (24, 4) if args.quick else (None, None)
    train_pairs = load_pairs(train_files, folder, limit)
    control = load_pairs(control_files, folder)
    msd_test = load_pairs(test_files, folder, test_limit)
    images, labels, z, info = new_site(args.data, args)
    chosen = refine_slices(z, args.corrected)  # spread over the liver's z range
    picks = [int(np.flatnonzero(z == c)[0]) for c in chosen]
    scored = [i for i in range(len(z)) if i not in picks][: 4 if args.quick else None]
    site_test = [(images[i], labels[i]) for i in scored]
    work = args.out / "work"
    same = [p for p in train_files if p.name.startswith(f"{args.orientation}_")] or train_files
    msd_same = load_pairs(same, folder, 40)
    mid = picks[len(picks) // 2]
    orientation_png(msd_same[0], (images[mid], labels[mid]), work / "orientation.png")
    base, base_s, base_steps, base_path = base_model(train_pairs, args, device)
    notes = nr.run_segmentation(images[scored], base, device=device).notes
    rows = [{"model": "(a) base", "train_seconds": round(base_s, 1), "steps": base_steps}]
    models = [base]
    for name, pairs in (
        (
            f"(b) refined on {args.corrected} new-site slices",
            [(images[i], labels[i]) for i in picks],
        ),
        (f"(c) refined on {args.corrected} MSD slices (control)", control),
    ):
        model, secs, steps = refined(base, *zip(*pairs), args, device)
        rows.append({"model": name, "train_seconds": round(secs, 1), "steps": steps})
        models.append(model)
    for row, model in zip(rows, models):
        row["new_site"] = scores(model, site_test, device)
        row["msd_held_out"] = scores(model, msd_test, device)
    info.update(
        refine_slices=[int(z[i]) for i in picks],
        scored_slices=[int(z[i]) for i in scored],
        segment_notes=list(notes),
        body_extent_px={  # the pixel size check: the body as large in both
            f"msd_{args.orientation}": median_extent([i for i, _ in msd_same]),
            "new_site": median_extent(images),
        },
        liver_median_grey={
            "msd_train": liver_grey(train_pairs),
            "new_site": liver_grey(list(zip(images, labels))),
        },
    )
    return {
        "quick_check": bool(args.quick),
        "hardware": hardware(device),
        "settings": portable_settings(vars(args), args.data),
        "base_model": portable(base_path),
        "msd": {
            "train_slices": len(train_pairs),
            "held_out_slices": len(msd_test),
            "control_slices": [p.name for p in control_files],
        },
        "new_site": info,
        "results": rows,
    }


def markdown(result: dict) -> str:
    s, site, msd = result["settings"], result["new_site"], result["msd"]
    hw, shape = result["hardware"], "x".join(map(str, site["slice_shape_fed"]))
    head = "**Quick check, not the measurement.** " if result["quick_check"] else ""
    lines = [
        f"{head}Base: {msd['train_slices']} MSD liver train slices, "
        f"{s['base_minutes'] if s['base_model'] is None else 'reused'} min; new site: "
        f"{site['volume']} windowed W{s['window'][0]:g}/L{s['window'][1]:g}, "
        f"{s['orientation']}, {s['pixel_size']:g} mm pixels ({shape}); "
        f"refined {s['refine_minutes']} min on slices z={site['refine_slices']}; scored on "
        f"{result['results'][0]['new_site']['n']} new-site and {msd['held_out_slices']} MSD "
        f"held-out slices; {hw['device']}. "
        f"{LABELS_NOTE}.",
        "",
        "| model | train s | steps | new site IoU | new site mean IoU/slice "
        "| MSD held-out IoU | MSD mean IoU/slice |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        a, b = r["new_site"], r["msd_held_out"]
        lines.append(
            f"| {r['model']} | {r['train_seconds']} | {r['steps']} | {a['iou']:.3f} | "
            f"{a['mean_iou']:.3f} | {b['iou']:.3f} | {b['mean_iou']:.3f} |"
        )
    grey = site["liver_median_grey"]
    lines += [
        "",
        f"Liver median grey: MSD train {grey['msd_train']:.0f}, new site {grey['new_site']:.0f}. "
        f"Body extent, median rows x columns: MSD "
        f"{' x '.join(f'{v:g}' for v in next(iter(site['body_extent_px'].values())))}, new site "
        f"{' x '.join(f'{v:g}' for v in site['body_extent_px']['new_site'])}. "
        f"Base model's notes on the new site: {'; '.join(site['segment_notes']) or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, required=True, help="folder for new-site.json/.md")
    p.add_argument("--base-minutes", type=float, default=10.0)
    p.add_argument("--base-model", type=Path, default=None, help="reuse this base model")
    p.add_argument("--refine-minutes", type=float, default=3.0)
    p.add_argument("--corrected", type=int, default=3, help="new-site slices the user fixes")
    p.add_argument(
        "--window",
        type=float,
        nargs=2,
        default=[400.0, 50.0],
        metavar=("WIDTH", "LEVEL"),
        help="display window in HU mapped to 0..255 (default W400 L50: abdomen)",
    )
    p.add_argument("--orientation", default="flipped", choices=ORIENTATIONS)
    p.add_argument(
        "--pixel-size", type=float, default=1.5, help="mm per pixel fed (MSD JPEGs: about 1.5)"
    )
    p.add_argument("--liver-label", type=int, default=5, help="liver in example_seg")
    p.add_argument("--patch-size", type=int, default=128, help="--quick only")
    p.add_argument("--encoder-weights", default=None, help="imagenet or a local file")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny budgets and subsets")
    args = p.parse_args(argv)
    if args.quick:
        args.base_minutes, args.refine_minutes = 0.1, 0.05
    window_to_uint8(np.zeros(1), *args.window)  # a bad window fails before any training
    pixel_scale(3.0, args.pixel_size)
    if args.corrected < 1:
        p.error(f"--corrected must be at least 1, got {args.corrected}")
    if args.base_model is not None and not args.base_model.is_file():
        p.error(f"--base-model {args.base_model} is not a file")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    write_results(args.out, "new-site", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
