"""The site's "What you can trust" page lists the guarantees of issue 14 (its Reliability
guarantees section, once the README's Reliability section), and the settings it names
exist with the values it states."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_reliability_section_states_what_the_code_does():
    from napari_res101unet.engine import client
    from napari_res101unet.evaluation.pixel import MAX_CLASSES
    from napari_res101unet.io import _limits
    from napari_res101unet.model import SPEC_LIMITS

    text = (REPO / "docs" / "trust.md").read_text(encoding="utf-8")
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    assert nav.index("trust.md") < nav.index("benchmarks/index.md")  # before the figures
    section = text.split("## Reliability guarantees", 1)[1].split("\n## ", 1)[0]
    for phrase in (
        "--overwrite",
        "overwrite=True",
        "saves nothing",
        "synced",
        "symlink",
        "permissions",
        "optimizer state",
        "torch>=2.6",
        "CheckpointError",
        "unreadable: ...",
        "NAPARI_RES101UNET_MAX_PIXELS",
        "max_pixels=N",
        "builtins.eval",
        "numpy.py",
        "stopped: cancelled",
    ):
        assert phrase in section, phrase
    assert _limits.DEFAULT_MAX_PIXELS == 2**31 and "2**31 values" in section
    assert f"{int(client.START_TIMEOUT)} s" in section
    assert f"{int(client.SHUTDOWN_GRACE)} s" in section
    assert f"{SPEC_LIMITS['in_channels']} input channels" in section
    assert f"{SPEC_LIMITS['classes']} classes" in section
    assert f"more than {MAX_CLASSES} classes" in section
