"""Small real images with masks, shipped in the package (engine side: no napari, no torch).

``load_sample("liver_ct")``
    42 axial CT slices of MSD Task03 / LiTS (uint8, windowed, 256x256) with liver masks;
    ``split["train"]`` holds 40 slices of 20 scans, ``split["test"]`` 2 slices of 2 other
    scans (CC BY-SA 4.0; see ``LICENSE-liver_ct.md``).
``load_sample("nuclei")``
    A 512x512 fluorescence image of nuclei with its instance mask, from StarDist / the
    2018 Data Science Bowl (BSD-3-Clause; see ``LICENSE-nuclei.md``).

Example
-------
>>> from napari_res101unet.samples import load_sample
>>> liver = load_sample("liver_ct")
>>> train = liver["image"][liver["split"]["train"]]      # (40, 256, 256) uint8
>>> masks = liver["labels"][liver["split"]["train"]]     # (40, 256, 256) 0/1
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

SAMPLES = {
    "liver_ct": ("liver_ct.tif", "liver_ct_mask.tif", "liver_ct.json"),
    "nuclei": ("nuclei.tif", "nuclei_mask.tif", "nuclei.json"),
}
DESCRIPTIONS = {
    "liver_ct": "Liver CT slices + liver masks (MSD Task03 / LiTS, CC BY-SA 4.0)",
    "nuclei": "Nuclei + instance mask (StarDist / DSB 2018, BSD-3-Clause)",
}
LICENSES = {"liver_ct": "CC BY-SA 4.0", "nuclei": "BSD-3-Clause"}


def load_sample(name: str) -> dict[str, Any]:
    """Load a packaged sample.

    Parameters
    ----------
    name : {"liver_ct", "nuclei"}

    Returns
    -------
    dict
        ``image`` : (Z, Y, X) uint8 for ``liver_ct`` (independent 2D slices), (Y, X)
        uint8 for ``nuclei``;
        ``labels`` : uint8 of the same shape (liver: 0/1; nuclei: instance ids);
        ``spacing`` : tuple of float, one per axis (pixel units: no physical size known);
        ``name``, ``description``, ``license``, ``license_file`` and what the sample's
        JSON adds: ``source_files``, ``source``; for ``liver_ct`` also ``volume_ids``
        (one per slice) and ``split`` (``{"train": [...], "test": [...]}`` slice indices,
        disjoint volumes).

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the valid ones).
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    import tifffile

    image_file, mask_file, info_file = SAMPLES[name]
    folder = resources.files(__name__)
    info = json.loads(folder.joinpath(info_file).read_text(encoding="utf-8"))
    with resources.as_file(folder.joinpath(image_file)) as path:
        image = tifffile.imread(path)
    with resources.as_file(folder.joinpath(mask_file)) as path:
        labels = tifffile.imread(path)
    return {
        **info,
        "name": name,
        "image": np.ascontiguousarray(image),
        "labels": np.ascontiguousarray(labels),
        "spacing": tuple(float(s) for s in info["spacing"]),
        "description": DESCRIPTIONS[name],
        "license": LICENSES[name],
        "license_file": f"LICENSE-{name}.md",
    }
