"""README and cover image of a bioimage.io package."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._rdf import CITATIONS, EXACT

_COLOURS = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230]],
    np.float32,
)  # fmt: skip


def write_cover(path: Path, raw: np.ndarray, probs: np.ndarray, side: int = 256) -> None:
    """A 2:1 PNG: the test input beside it with the predicted labels overlaid.

    Parameters
    ----------
    raw : (C, Y, X) ndarray
        The raw test input.
    probs : (K, Y, X) ndarray
        The model's probabilities for it.
    """
    from PIL import Image

    gray = _display(raw)
    labels = (probs[0] > 0.5).astype(int) if probs.shape[0] == 1 else probs.argmax(0)
    colour = _COLOURS[labels % len(_COLOURS)]
    alpha = np.where(labels > 0, 0.45, 0.0)[..., None]
    overlay = gray * (1 - alpha) + colour * alpha
    pair = np.concatenate([gray, overlay], axis=1).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pair).resize((2 * side, side), Image.Resampling.NEAREST)
    image.save(path)


def _display(raw: np.ndarray) -> np.ndarray:
    """``(Y, X, 3)`` float in [0, 255] from the raw ``(C, Y, X)`` input (1st/99th pct)."""
    img = raw[:3] if raw.shape[0] >= 3 else raw[:1]
    img = np.moveaxis(img.astype(np.float32), 0, -1)
    lo, hi = np.percentile(img, [1, 99])
    img = (img - lo) / max(hi - lo, 1e-6) * 255
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def readme(spec, setting: dict, weights: list[str], name: str) -> str:
    """The package's documentation (Markdown)."""
    from .. import __version__

    classes = ", ".join(f"{i}: {n}" for i, n in enumerate(spec.class_names))
    head = "sigmoid (one channel: foreground)" if spec.classes == 1 else "softmax"
    lines = [
        f"# {name}",
        "",
        "Res101_UNet: a U-Net (Ronneberger et al. 2015) whose encoder is ResNet-101 "
        "(He et al. 2016), as built by segmentation_models_pytorch "
        "(`segmentation_models_pytorch.Unet(encoder_name='resnet101')`), exported by "
        f"napari-res101unet {__version__}.",
        "",
        "## Input",
        f"- `raw`: `(batch, channel, y, x)` with {spec.in_channels} channel(s); `y` and `x` "
        "must be multiples of 32 (tile larger images).",
        f"- Normalisation (from the checkpoint): `{setting}`; {EXACT[setting['mode']]}. "
        "The preprocessing of this package applies it to raw intensities.",
        "",
        "## Output",
        f"- `probabilities`: `(batch, class, y, x)` float32, {head} already applied by every "
        "weight format (no postprocessing needed); take the argmax over classes for labels.",
        f"- Classes: {classes}.",
        "",
        f"## Weights\n{', '.join(weights)}; all compute the same probabilities.",
        "",
        *_training_lines(spec),
        "## Use",
        "- napari / Python: `napari_res101unet.load_model('<this package>')` opens it.",
        "- bioimage.io: `bioimageio predict` or `bioimageio.core.predict`; also ilastik, "
        "deepImageJ (torchscript), QuPath.",
        "",
        "## Cite",
        *[f"- {c['text']} {c.get('doi') or c.get('url')}" for c in CITATIONS],
        "",
    ]
    return "\n".join(lines)


def _training_lines(spec) -> list[str]:
    record = spec.training or {}
    history = record.get("history") or []
    out = [f"## Training\nEncoder initialisation: {spec.encoder_weights}."]
    if spec.tile_size:
        out.append(f"Patch size: {spec.tile_size}.")
    if history:
        last = history[-1]
        scores = {k: v for k, v in last.items() if isinstance(v, (int, float))}
        out.append(f"Epochs: {len(history)}; last epoch: {scores}.")
    return [*out, ""]
