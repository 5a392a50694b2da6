"""benchmarks/gpu_check.py, the prepared GPU check, exercised without a GPU: the no-CUDA
exit and the dry run of its parts on the CPU."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import REPO


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", REPO / "benchmarks" / "gpu_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_measures_nothing(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == gpu_check.NO_CUDA == 2
    err = capsys.readouterr().err
    assert "no CUDA device here" in err and "Nothing was measured" in err and "--dry-run" in err
    assert not (tmp_path / "out").exists()


def test_arguments(gpu_check):
    args = gpu_check.parse_args([])
    assert (args.device, args.size, args.memory_sizes) == ("cuda", 2048, [2048, 4096, 8192])
    assert not args.skip_tests and not args.dry_run
    dry = gpu_check.parse_args(["--dry-run"])
    assert dry.device == "cpu" and dry.skip_tests and dry.skip_training and dry.size < 512
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--only", "everything"])


def test_dry_run_of_the_cpu_parts_writes_json_and_a_table(gpu_check, tmp_path):
    parts = ["precision", "blending", "efficiency", "peak_memory", "oom_retry"]
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path), "--only", *parts]) == 0
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry_run"] is True and list(result["parts"]) == parts
    got = result["parts"]
    assert got["blending"]["labels_differing"] == 0
    assert got["precision"]["float32"] > 0 and got["precision"]["mixed"] > 0
    assert all(e["efficiency"] > 0 for e in got["efficiency"])
    assert [m["size"] for m in got["peak_memory"]] == [128, 256]
    assert got["oom_retry"]["simulated"] and "retried smaller" in got["oom_retry"]["notes"][-1]
    table = (tmp_path / "gpu_check.md").read_text()
    assert "DRY RUN" in table and "| blending | labels_differing | 0 |" in table


@pytest.mark.slow
def test_full_dry_run_including_monai(gpu_check, tmp_path):
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 0
    parts = json.loads((tmp_path / "gpu_check.json").read_text())["parts"]
    assert set(parts) == set(gpu_check.PARTS)
    assert "skipped" in parts["gpu_tests"] and "skipped" in parts["training"]
    assert "skipped" in parts["compiled"]
    monai = parts["versus_monai"]
    assert "skipped" in monai or monai["float32"]["monai_mp_s"] > 0
