"""``segment big.zarr -o labels.zarr``: one large image through the blockwise path."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

from napari_res101unet import save_model  # noqa: E402
from napari_res101unet.cli import main  # noqa: E402
from napari_res101unet.inference.segment import segment  # noqa: E402
from napari_res101unet.io.label_store import open_labels  # noqa: E402

ARGS = ["--tile-size", "64", "--batch-size", "1", "--device", "cpu", "--block-size", "64"]


@pytest.fixture
def big(tmp_path, small_model):
    rng = np.random.default_rng(1)
    image = (rng.random((100, 120, 3)) * 255).astype(np.uint8)
    arr = zarr.create_array(str(tmp_path / "big.zarr"), shape=image.shape, chunks=(32, 32, 3),
                            dtype="uint8")  # fmt: skip
    arr[:] = image
    model = save_model(small_model, tmp_path / "m.safetensors")
    return tmp_path, image, model


@pytest.mark.slow
def test_zarr_input_is_segmented_blockwise_like_in_memory(big, capsys):
    folder, image, model = big
    out = folder / "labels.zarr"
    assert main(["segment", str(folder / "big.zarr"), "-m", str(model), "--out", str(out),
                 *ARGS]) == 0  # fmt: skip
    assert "4 blocks" in capsys.readouterr().out
    expected = segment(image, str(model), tile_size=64, batch_size=1, device="cpu")
    np.testing.assert_array_equal(open_labels(out)[:], expected)


def test_existing_output_store_is_refused_unless_overwrite(big, capsys):
    folder, _, model = big
    out = folder / "labels.zarr"
    out.mkdir()
    (out / "keep").write_text("x")
    code = main(["segment", str(folder / "big.zarr"), "-m", str(model), "-o", str(out), *ARGS])
    assert code != 0 and "--overwrite" in capsys.readouterr().err
    assert (out / "keep").exists()


def test_scheduler_that_does_not_answer_is_an_error_within_seconds(big, capsys):
    folder, _, model = big
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    code = main(["segment", str(folder / "big.zarr"), "-m", str(model), "-o",
                 str(folder / "l.zarr"), "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--scheduler-timeout", "2", *ARGS])  # fmt: skip
    assert code != 0 and f"127.0.0.1:{port}" in capsys.readouterr().err
    assert time.perf_counter() - start < 10
    assert not (folder / "l.zarr").exists()


def test_large_and_ordinary_inputs_are_not_mixed(big, capsys):
    folder, image, model = big
    import tifffile

    tifffile.imwrite(folder / "small.tif", image)
    code = main(["segment", str(folder / "big.zarr"), str(folder / "small.tif"), "-m",
                 str(model), "-o", str(folder / "out")])  # fmt: skip
    assert code != 0 and "command of their own" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_run_a_local_cluster(big, capsys):
    folder, image, model = big
    out = folder / "w.zarr"
    assert main(["segment", str(folder / "big.zarr"), "-m", str(model), "-o", str(out),
                 "--workers", "2", *ARGS]) == 0  # fmt: skip
    assert "dask cluster tcp://" in capsys.readouterr().out
    expected = segment(image, str(model), tile_size=64, batch_size=1, device="cpu")
    np.testing.assert_array_equal(open_labels(out)[:], expected)


@pytest.mark.slow
def test_skip_existing_keeps_a_complete_store_and_its_sidecar_names_the_model(big, capsys):
    from napari_res101unet.io.provenance import file_sha256, read_sidecar

    folder, _, model = big
    out = folder / "labels.zarr"
    cmd = ["segment", str(folder / "big.zarr"), "-m", str(model), "-o", str(out), *ARGS]
    assert main(cmd) == 0
    record = read_sidecar(out)
    assert record["model"]["sha256"] == file_sha256(model)
    assert record["settings"]["block_size"] == 64 and record["blocks"] == 4
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main([*cmd, "--skip-existing"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    # other settings: the store is redone, not refused and not kept
    assert main([*cmd[:-1], "128", "--skip-existing"]) == 0
    assert read_sidecar(out)["settings"]["block_size"] == 128
