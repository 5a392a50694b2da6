"""Correct-and-retrain benchmark: a simulated user on GlaS.

1. A base model is trained ``--base-minutes`` on ``--base-images`` GlaS train images.
2. It segments ``--pool`` more train images with uncertainty; the user "corrects" the
   ``--corrected`` most uncertain ones by pasting their ground truth (every pixel checked).
3. ``refine`` fine-tunes the base model on those corrections together with the base pairs
   for ``--refine-minutes``.

Compared on GlaS testA (pixel IoU/Dice over all test pixels, and the mean per image):
the base model (before), refined on the most uncertain images (after), refined on as many
random pool images (same budget), on the images suggestive annotation (Yang et al.,
MICCAI 2017) picks (of the 2k most uncertain, the k whose encoder features best cover the
pool), on the k that best cover the pool whatever their uncertainty, and a model trained
from scratch on base + the most uncertain images for the same total time (base + refine
minutes).

With ``--seeds 0 1 2`` the whole loop (the train images drawn for base and pool, the
random picks, the models' initialisation and patches) runs once per seed, and the table
adds each method's mean and spread (sample standard deviation) over the seeds, and its
gain over the base model of the same seed.

Usage::

    python benchmarks/bench_refine.py --data ../shared/data --out bench_results/refine
    python benchmarks/bench_refine.py --seeds 0 1 2 --out bench_results/refine-seeds
    python benchmarks/bench_refine.py --quick --out /tmp/refine   # seconds: a smoke test

Seeds side by side on a 2-core machine (one process and one thread each), then one
table::

    python benchmarks/bench_refine.py --seeds 0 --threads 1 --out /tmp/refine-s0 &
    python benchmarks/bench_refine.py --seeds 1 --threads 1 --out /tmp/refine-s1
    python benchmarks/bench_refine.py --merge /tmp/refine-s0 /tmp/refine-s1 --out …

Writes ``refine.json`` and ``refine.md`` under ``--out`` (no absolute paths).
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
from _portable import portable_settings, write_results  # noqa: E402
from bench_training import hardware, load_folder  # noqa: E402
from napari_res101unet.device import resolve_device  # noqa: E402

UNCERTAIN_COVER = "refined: uncertain + representative"
"""Suggestive annotation: of the 2k most uncertain, the k that best cover the pool."""
REPRESENTATIVE = "refined: representative"
"""The k pool images that best cover the pool, whatever their uncertainty."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out", type=Path, required=True, help="folder for refine.json/.md")
    p.add_argument("--base-minutes", type=float, default=5.0)
    p.add_argument("--refine-minutes", type=float, default=3.0)
    p.add_argument("--base-images", type=int, default=10)
    p.add_argument("--pool", type=int, default=20, help="images segmented for review")
    p.add_argument("--corrected", type=int, default=3, help="images the user corrects")
    p.add_argument("--test-images", type=int, default=None, help="limit testA (default all)")
    p.add_argument("--crop", type=int, default=None, help="crop every image to NxN")
    p.add_argument("--patch-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--refine-lr", type=float, default=None, help="default: refine()'s")
    p.add_argument("--encoder-weights", default=None, help="imagenet or a local file")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="run the loop once per seed; mean and spread (overrides --seed)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="summarise the refine.json of these --seeds runs into --out (runs nothing)",
    )
    p.add_argument("--quick", action="store_true", help="tiny budgets and subsets")
    args = p.parse_args(argv)
    if args.quick:
        args.base_minutes, args.refine_minutes = 0.1, 0.05
        args.base_images, args.pool, args.corrected = 2, 3, 1
        args.test_images, args.crop, args.patch_size, args.batch_size = 2, 128, 64, 2
    return args


def load(args):
    """``(base pairs, pool pairs, test pairs)``: train images shuffled with the seed."""
    glas = args.data / "glas"
    if not glas.is_dir():
        raise SystemExit(f"GlaS not found under {args.data} (expected glas/train, glas/testA)")
    train = load_folder(glas / "train", None)
    order = np.random.default_rng(args.seed).permutation(len(train))
    need = args.base_images + args.pool
    if need > len(train):
        raise SystemExit(f"{need} train images asked for, GlaS has {len(train)}")
    chosen = [_crop(train[i], args.crop) for i in order[:need]]
    test = [_crop(p, args.crop) for p in load_folder(glas / "testA", args.test_images)]
    return chosen[: args.base_images], chosen[args.base_images :], test


def _crop(pair, size):
    image, labels = pair
    return (image, labels) if size is None else (image[:size, :size], labels[:size, :size])


def review(model, pool, device):
    """Segment the pool with uncertainty: ``(labels, mean uncertainty)`` per image."""
    out = []
    for image, _truth in pool:
        result = nr.run_segmentation(image, model, device=device, return_uncertainty=True)
        out.append((result.labels, float(result.uncertainty.mean())))
    return out


def embed(model, pool, device):
    """Each pool image's descriptor: the base model's deepest encoder features (2048 for
    ResNet-101), averaged over the image and scaled to unit length (cosine similarity is
    then a dot product), as suggestive annotation (Yang et al., MICCAI 2017, on GlaS)
    compares images."""
    import torch

    from napari_res101unet.preprocess.normalize import make_normalizer

    net = model.to(device).eval()
    out = []
    with torch.no_grad():
        for image, _truth in pool:
            h, w = (n // 32 * 32 for n in image.shape[:2])
            raw = image[:h, :w].reshape(h, w, -1)
            norm = make_normalizer(raw[None], model.spec.normalization, raw.shape[-1])
            x = torch.from_numpy(np.ascontiguousarray(norm(raw)))[None].to(device)
            feats = net.encoder(x)[-1].mean(dim=(2, 3))[0].float().cpu().numpy()
            out.append(feats / max(float(np.linalg.norm(feats)), 1e-12))
    return np.stack(out)


def cover(features, candidates, k):
    """Greedy max-cover: ``k`` of ``candidates`` whose nearest (cosine) pick is most like
    every pool image, summed over the pool (the representativeness of suggestive
    annotation): picks that stand for the whole pool and differ from each other."""
    sim = features @ features.T
    picks: list[int] = []
    best = np.full(len(features), -np.inf)
    for _ in range(k):
        gains = [np.maximum(best, sim[c]).sum() if c not in picks else -np.inf
                 for c in candidates]  # fmt: skip
        choice = int(candidates[int(np.argmax(gains))])
        picks.append(choice)
        best = np.maximum(best, sim[choice])
    return picks


def refine_on(base, base_pairs, pool, reviewed, picks, args, device):
    """Refine ``base`` on the pool images ``picks`` (their truth pasted in)."""
    first, *others = picks
    image, truth = pool[first]
    edited = truth != reviewed[first][0]  # what the paste changed
    if not edited.any():
        edited[0, 0] = True  # the prediction was perfect: the image still counts as checked
    options = {} if args.refine_lr is None else {"learning_rate": args.refine_lr}
    started = time.monotonic()
    result = nr.refine(
        base,
        image,
        truth,
        edited=edited,
        confirm="slice",  # the whole pasted image is checked
        pairs=[*base_pairs, *(pool[i] for i in others)],
        minutes=args.refine_minutes,
        output=False,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        device=device,
        seed=args.seed,
        **options,
    )
    return result.model, time.monotonic() - started, result.model.spec.training["step"]


def score(name, model, test, device, seconds, steps, extra=None) -> dict:
    s = nr.evaluate(model, test, device=device)
    row = {"method": name, "train_seconds": round(seconds, 1), "steps": steps}
    return {**row, **{k: round(s[k], 4) for k in ("iou", "dice", "mean_iou")}, **(extra or {})}


def train(pairs, minutes, args, device):
    started = time.monotonic()
    model = nr.train(
        pairs,
        epochs=1000,
        max_minutes=minutes,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        encoder_weights=args.encoder_weights,
        device=device,
        seed=args.seed,
    )
    return model, time.monotonic() - started, model.spec.training["step"]


def run(args) -> dict:
    device = resolve_device(args.device)
    base_pairs, pool, test = load(args)
    base, base_s, base_steps = train(base_pairs, args.base_minutes, args, device)
    reviewed = review(base, pool, device)
    ranked = sorted(range(len(pool)), key=lambda i: -reviewed[i][1])  # most uncertain first
    by_unc = ranked[: args.corrected]
    rng = np.random.default_rng(args.seed + 1)
    randomly = [int(i) for i in rng.choice(len(pool), args.corrected, replace=False)]
    features = embed(base, pool, device)
    uncertain_cover = cover(features, ranked[: 2 * args.corrected], args.corrected)
    representative = cover(features, list(range(len(pool))), args.corrected)
    rows = [score("base (before)", base, test, device, base_s, base_steps)]
    for name, picks in (
        ("refined: most uncertain", by_unc),
        ("refined: random", randomly),
        (UNCERTAIN_COVER, uncertain_cover),
        (REPRESENTATIVE, representative),
    ):
        model, secs, steps = refine_on(base, base_pairs, pool, reviewed, picks, args, device)
        rows.append(score(name, model, test, device, secs, steps, {"images": picks}))
    total = args.base_minutes + args.refine_minutes
    pairs = [*base_pairs, *(pool[i] for i in by_unc)]
    model, secs, steps = train(pairs, total, args, device)
    rows.append(score("scratch on base + corrected", model, test, device, secs, steps))
    return {
        "hardware": hardware(device),
        "settings": portable_settings(vars(args), args.data),
        "pool_uncertainty": [round(u, 4) for _, u in reviewed],
        "most_uncertain": by_unc,
        "random": randomly,
        "uncertain_cover": uncertain_cover,
        "representative": representative,
        "test_images": len(test),
        "results": rows,
    }


def over_seeds(args) -> dict:
    """:func:`run` once per seed of ``args.seeds``; each method's mean and spread."""
    runs = []
    for seed in args.seeds:
        one = argparse.Namespace(**{**vars(args), "seed": seed})
        runs.append({"seed": seed, **run(one)})
        print(markdown(runs[-1]), flush=True)
    return summarise(runs)


def merged(folders: list[Path]) -> dict:
    """The runs of several ``--seeds`` results (e.g. seeds run side by side, one process
    and one thread each), summarised together."""
    import json

    runs = []
    for folder in folders:
        runs += json.loads((folder / "refine.json").read_text())["runs"]
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"a seed appears twice in {[str(f) for f in folders]}: {seeds}")
    return summarise(sorted(runs, key=lambda r: r["seed"]))


def summarise(runs: list[dict]) -> dict:
    """Each method's mean, sample sd and gain over the same seed's base."""
    summary = []
    for i, row in enumerate(runs[0]["results"]):
        entry = {"method": row["method"], "seeds": len(runs)}
        for key in ("iou", "dice", "mean_iou"):
            values = np.array([r["results"][i][key] for r in runs])
            gains = values - np.array([r["results"][0][key] for r in runs])
            spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            entry |= {key: round(float(values.mean()), 4), f"{key}_sd": round(spread, 4),
                      f"{key}_gain": round(float(gains.mean()), 4),
                      f"{key}_gains": [round(float(g), 4) for g in gains]}  # fmt: skip
        summary.append(entry)
    first = runs[0]
    return {"hardware": first["hardware"], "settings": first["settings"],
            "test_images": first["test_images"], "runs": runs, "summary": summary}  # fmt: skip


def markdown_seeds(result: dict) -> str:
    s = result["settings"]
    seeds = ", ".join(str(r["seed"]) for r in result["runs"])
    lines = [
        f"GlaS, seeds {seeds}: base {s['base_minutes']} min on {s['base_images']} images; "
        f"{s['corrected']} of {s['pool']} pool images corrected; refine "
        f"{s['refine_minutes']} min; testA ({result['test_images']} images); "
        f"{result['hardware']['device']}",
        "",
        "| method | IoU, mean ± sd | gain over base (per seed) | Dice | mean IoU/img |",
        "|---|---|---|---:|---:|",
    ]
    for r in result["summary"]:
        gains = ", ".join(f"{g:+.3f}" for g in r["iou_gains"])
        lines.append(
            f"| {r['method']} | {r['iou']:.4f} ± {r['iou_sd']:.4f} | {r['iou_gain']:+.4f} "
            f"({gains}) | {r['dice']:.4f} | {r['mean_iou']:.4f} |"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(markdown(r) for r in result["runs"])


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"GlaS, base {s['base_minutes']} min on {s['base_images']} images; "
        f"{s['corrected']} of {s['pool']} pool images corrected; refine "
        f"{s['refine_minutes']} min; testA ({result['test_images']} images); "
        f"{result['hardware']['device']}",
        "",
        "| method | train s | steps | IoU | Dice | mean IoU/img | pool images |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["results"]:
        images = ", ".join(str(i) for i in r.get("images", [])) or "-"
        lines.append(
            f"| {r['method']} | {r['train_seconds']} | {r['steps']} | {r['iou']:.4f} | "
            f"{r['dice']:.4f} | {r['mean_iou']:.4f} | {images} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        result = merged(args.merge)
        write_results(args.out, "refine", result, markdown_seeds(result))
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.seeds:
        result = over_seeds(args)
        write_results(args.out, "refine", result, markdown_seeds(result))
        return 0
    result = run(args)
    write_results(args.out, "refine", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
