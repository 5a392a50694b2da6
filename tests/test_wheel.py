"""The package as a user gets it: build the sdist and wheel, install the wheel, find the plugin.

``python -m build --no-isolation`` builds the sdist, then the wheel from the unpacked sdist
(so a file missing from the sdist is missing from the wheel too). The wheel goes into a
fresh venv made with ``venv --without-pip``; a ``.pth`` file in it points at this test
runner's site-packages so the dependencies (torch alone is gigabytes) are seen without a
reinstall, and the wheel is installed with ``pip --no-deps --no-index``: nothing is
downloaded. A ``.pth`` path line only extends ``sys.path`` (``.pth`` files inside that
folder, such as an editable install's hook, are not run), and the venv's own site-packages
comes first, so the package imported there is the wheel's, never the source tree's; the
test checks that. The commands run from a temporary folder, without ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
VERSION = version("napari-res101unet")

SAMPLES = [
    f"samples/{name}"
    for name in (
        "liver_ct.tif",
        "liver_ct_mask.tif",
        "liver_ct.json",
        "LICENSE-liver_ct.md",
        "nuclei.tif",
        "nuclei_mask.tif",
        "nuclei.json",
        "LICENSE-nuclei.md",
    )
]
_SKIP = shutil.ignore_patterns(
    ".git", ".venv*", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "out"
)


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and wheel built from a copy of the source tree (the tree stays clean)."""
    pytest.importorskip("build", reason="the `build` package is in the testing extra")
    root = tmp_path_factory.mktemp("build")
    src = root / "tree"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for name in ("src", "tests"):
        shutil.copytree(REPO / name, src / name, ignore=_SKIP)
    out = root / "dist"
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)]
    proc = subprocess.run(
        cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=300, env=_clean_env()
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def venv_python(dists, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (dependencies seen through a .pth file)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    runner_sites = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    lines = dict.fromkeys(p for p in runner_sites if Path(p).is_dir())
    Path(purelib, "_test_runner_site.pth").write_text("\n".join(lines) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", str(dists["wheel"])])
    return python


def test_sdist_has_the_licence_manifest_and_samples(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    package = "src/napari_res101unet/"
    expected = {"LICENSE", "pyproject.toml", package + "napari.yaml"}
    expected |= {package + s for s in SAMPLES}
    assert expected <= names, sorted(expected - names)


def test_wheel_has_the_licence_manifest_and_samples(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(info).decode()
    expected = {"napari_res101unet/napari.yaml", *(f"napari_res101unet/{s}" for s in SAMPLES)}
    assert expected <= names, sorted(expected - names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "Classifier: Framework :: napari" in metadata
    assert "Project-URL: Source, " in metadata
    assert "Requires-Dist: napari[all]" in metadata  # the one-line install with Qt
    assert "Requires-Dist: torch>=" in metadata  # a floor, never a pin


def test_installed_wheel_is_the_package_imported(venv_python, tmp_path):
    code = "import napari_res101unet as m; print(m.__file__)"
    where = Path(_run([venv_python, "-c", code], cwd=tmp_path))
    assert Path(sys.prefix) not in where.parents
    assert REPO not in where.parents
    assert where.parents[1].name == "site-packages"
    samples = where.parent / "samples"
    assert {s.split("/")[1] for s in SAMPLES} <= {p.name for p in samples.iterdir()}


def test_npe2_validates_the_manifest_by_importing_every_command(venv_python, tmp_path):
    out = _run([venv_python, "-m", "npe2", "validate", "napari-res101unet", "--imports"], tmp_path)
    assert "valid" in out


def test_napari_plugin_manager_lists_the_plugin_without_torch(venv_python, tmp_path):
    code = (
        "import sys\n"
        "from npe2 import PluginManager\n"
        "pm = PluginManager.instance(); pm.discover()\n"
        "m = pm.get_manifest('napari-res101unet')\n"
        "widgets = sorted(w.display_name for w in m.contributions.widgets)\n"
        "print(m.package_metadata.version, widgets)\n"
        "from napari_res101unet._sample_data import liver_ct\n"
        "print(liver_ct()[0][0].shape, 'torch' in sys.modules)\n"
    )
    out = _run([venv_python, "-c", code], tmp_path).splitlines()
    assert out == [f"{VERSION} ['Segment', 'Train']", "(42, 256, 256) False"]


def test_console_script_runs_from_the_installed_wheel(venv_python, tmp_path):
    script = venv_python.parent / ("napari-res101unet" + (".exe" if os.name == "nt" else ""))
    assert _run([script, "--version"], tmp_path) == f"napari-res101unet {VERSION}"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_NO_INDEX"] = "1"
    return env


def _run(cmd: list, cwd: Path | None = None) -> str:
    args = [str(c) for c in cmd]
    env = _clean_env()
    proc = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip()
