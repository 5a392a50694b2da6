"""The documentation site builds with warnings as errors, holds everything the old README
said, and the README stays short and renders off GitHub (PyPI, the napari hub)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = REPO / "docs"
SITE_URL = "https://napari-res101unet.github.io/napari-res101unet/"
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)
MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")

sys.path.insert(0, str(REPO / "scripts"))
from readme_commands import normalise  # noqa: E402


def _page(path: Path) -> str:
    """A page's Markdown with its ``--8<--`` snippets put in, as pymdownx.snippets does."""
    text = path.read_text(encoding="utf-8")
    return SNIPPET.sub(lambda m: (REPO / m.group(1)).read_text(encoding="utf-8"), text)


def site_text() -> str:
    """Every page of the site, snippets included, whitespace normalised."""
    return normalise("\n".join(_page(p) for p in sorted(DOCS.rglob("*.md"))))


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(site)],
        cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    names = ("segment", "train", "refine", "evaluate", "load_model", "read_image",
             "segment_layer", "train_from_layers", "refine_layer", "rank_uncertain")  # fmt: skip
    for name in names:
        assert f'id="napari_res101unet.{name}"' in api, name
    assert "_S.tile_size" not in api and "= D.epochs" not in api  # real defaults shown
    config = (site / "api" / "config" / "index.html").read_text(encoding="utf-8")
    from napari_res101unet.config import TrainSettings

    for field in TrainSettings.__dataclass_fields__.values():  # each field's help, once
        assert f'id="napari_res101unet.config.TrainSettings.{field.name}"' in config
        help_text = field.metadata["help"].replace("<", "&lt;").replace(">", "&gt;")
        assert help_text in config, field.name


def test_every_command_and_table_row_of_the_old_readme_is_in_the_site():
    moved = json.loads((REPO / "tests" / "readme_moved.json").read_text(encoding="utf-8"))
    text = site_text()
    missing = [
        f"{section}: {entry}"
        for section, found in moved["sections"].items()
        for entry in found["commands"] + found["rows"]
        if normalise(entry) not in text
    ]
    assert not missing, "not in docs/:\n" + "\n".join(missing)
    counts = [len(f["commands"]) + len(f["rows"]) for f in moved["sections"].values()]
    assert len(counts) >= 15 and sum(counts) > 150  # the list was really collected


def test_every_benchmark_result_is_on_a_benchmarks_page():
    pages = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (DOCS / "benchmarks").glob("*.md")
        if p.name not in ("index.md", "running.md")  # the overview, benchmarks/README.md
    )
    included = set(SNIPPET.findall(pages))
    results = REPO / "benchmarks" / "results"
    tables = [p for p in results.rglob("*") if p.suffix in (".md", ".txt")]
    assert tables
    for path in tables:
        assert path.relative_to(REPO).as_posix() in included, path
    for section in re.split(r"^## ", pages, flags=re.M)[1:]:  # command, date, machine
        if "--8<--" in section or "|---" in section:
            assert all(f"**{k}**" in section for k in ("Command", "Date", "Machine")), section[:80]


def test_the_readme_is_short_and_its_links_work_off_github():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = MD_LINK.findall(text) + re.findall(r"<(https://[^>]+)>", text)
    assert links
    for link in links:  # PyPI and the napari hub resolve no relative link
        assert link.startswith("https://"), link
        if link.startswith(SITE_URL):
            page = link[len(SITE_URL) :].strip("/")
            candidates = [DOCS / f"{page}.md", DOCS / page / "index.md"] if page else []
            assert not page or any(c.exists() for c in candidates), link
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all(i.startswith("https://raw.githubusercontent.com/") for i in images)
    for image in images:
        assert (REPO / image.split("/main/", 1)[1]).exists(), image
    assert "```bash" in text and "python -m pytest" in text and "napari-res101unet demo" in text


def test_the_package_points_at_the_site():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib on 3.10
    assert f'Documentation = "{SITE_URL}"' in pyproject.split("[project.urls]")[1]
    assert f"site_url: {SITE_URL}" in (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    hub = (REPO / ".napari-hub" / "config.yml").read_text(encoding="utf-8")
    for label in ("segmentation", "medical imaging", "histology", "deep learning"):
        assert f"- {label}" in hub.lower(), label
    assert "visibility: public" in hub


def test_docstrings_become_markdown():
    pytest.importorskip("griffe")
    from docs_griffe import markdown_docstring

    text = ":func:`~napari_res101unet.segment` and :class:`napari_res101unet.config.X`::"
    assert markdown_docstring(text) == "`segment` and `napari_res101unet.config.X`:"
    wrapped = "objects (label\n    > 0)\n>>> x"
    assert markdown_docstring(wrapped) == "objects (label\n    \\> 0)\n>>> x"
