"""Committed benchmark results name no machine's absolute paths (they travel between machines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

RESULTS = REPO / "benchmarks" / "results"
# POSIX home/work/temp roots and Windows drive paths, as a results file could record them.
ABSOLUTE = re.compile(
    r"(?<![\w.~])/(?:work|home|root|tmp|Users|mnt|data|scratch|opt|var|private)/"
    r"|\b[A-Za-z]:[\\/]"
    r"|\\\\\w"
)


def _result_files() -> list[Path]:
    """Every result file, in the run folders below ``results/`` too."""
    return sorted(
        p
        for p in RESULTS.rglob("*")
        if p.is_file() and p.suffix in (".json", ".txt", ".csv", ".md")
    )


def test_there_are_results_to_check():
    names = {p.relative_to(RESULTS).as_posix() for p in _result_files()}
    assert names >= {"inference-cpu.json", "training-cpu.json"}
    assert any("/" in name for name in names), "the run folders' files are checked too"


@pytest.mark.parametrize("path", _result_files(), ids=lambda p: p.relative_to(RESULTS).as_posix())
def test_results_hold_no_absolute_paths(path):
    hits = [
        f"{path.relative_to(RESULTS).as_posix()}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ABSOLUTE.search(line)
    ]
    assert not hits, "absolute paths in benchmark results:\n" + "\n".join(hits)


def test_pattern_catches_what_it_must_and_spares_relative_paths():
    for bad in ('"/work/shared/data"', "mosaic of /home/ann/glas", r'"C:\\data\\x"', "/root/.x"):
        assert ABSOLUTE.search(bad), bad
    for fine in ('"../shared/data"', "~/.local/share/models/a.safetensors", "glas/testA/images"):
        assert not ABSOLUTE.search(fine), fine


def test_benchmarks_record_portable_paths(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _portable import portable, portable_settings

    data = REPO.parent / "shared" / "data"
    assert portable(data / "glas" / "testA" / "images", data) == "glas/testA/images"
    assert portable(Path.home() / ".local" / "m.safetensors") == "~/.local/m.safetensors"
    assert portable("bench_results/x.json") == "bench_results/x.json"
    settings = {"data": data, "encoder_weights": str(Path(sys.prefix, "w.pth")), "seed": 0}
    recorded = str(portable_settings(settings, data))
    assert not ABSOLUTE.search(recorded) and str(Path.home()) not in recorded, recorded


def test_benchmark_scripts_import_and_parse_their_defaults():
    """The scripts follow the package's layout (a rename would otherwise go unnoticed)."""
    code = (
        "import sys; sys.argv = ['bench']\n"
        "import bench_inference, bench_training\n"
        "print(bench_inference.parse_args([]).size, bench_training.parse_args([]).patch_size)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "benchmarks",
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["2048", "256"]
