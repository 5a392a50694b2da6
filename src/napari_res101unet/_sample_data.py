"""npe2 sample data (File > Open Sample > Res101-UNet): image + Labels layer pairs.

The arrays come from :func:`napari_res101unet.samples.load_sample`; this module only
adds the napari layer settings. No torch, no Qt.
"""

from __future__ import annotations

from typing import Any

from .samples import load_sample

LayerData = tuple[Any, dict, str]


def liver_ct() -> list[LayerData]:
    """42 liver CT slices (40 train, 2 held out) with their liver masks."""
    sample = load_sample("liver_ct")
    split = sample["split"]
    metadata = {key: sample[key] for key in ("volume_ids", "split", "source_files", "license")}
    metadata["note"] = f"train slices {split['train']}, held-out slices {split['test']}"
    image = {
        "name": "liver CT",
        "scale": sample["spacing"],
        "contrast_limits": (0, 255),
        "colormap": "gray",
        "metadata": metadata,
    }
    labels = {
        "name": "liver CT mask",
        "scale": sample["spacing"],
        "opacity": 0.4,
        "metadata": {**metadata, "class_names": ["background", "liver"]},
    }
    return [(sample["image"], image, "image"), (sample["labels"], labels, "labels")]


def nuclei() -> list[LayerData]:
    """A fluorescence nuclei image with its instance mask."""
    sample = load_sample("nuclei")
    metadata = {key: sample[key] for key in ("source_files", "license")}
    image = {
        "name": "nuclei",
        "scale": sample["spacing"],
        "colormap": "gray",
        "metadata": metadata,
    }
    labels = {"name": "nuclei mask", "scale": sample["spacing"], "metadata": metadata}
    return [(sample["image"], image, "image"), (sample["labels"], labels, "labels")]
