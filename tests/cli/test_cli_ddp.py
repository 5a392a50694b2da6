"""``train`` under ``torchrun`` and with ``--nproc``, on folders of data left on disk."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_res101unet.cli import main
from napari_res101unet.training.local_ranks import free_port

nib = pytest.importorskip("nibabel")


def _volume_folders(tmp_path, shapes=((6, 64, 64), (6, 64, 64), (6, 64, 64))):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i, (z, y, x) in enumerate(shapes):
        labels = np.zeros((z, 64, 64), np.uint8)
        labels[:, 20:40, 20 + i : 40 + i] = 1
        image = (rng.normal(50, 10, labels.shape) + 100 * labels).astype(np.int16)
        nib.save(nib.Nifti1Image(image[:, :y, :x].T.copy(), np.eye(4)), images / f"c{i}.nii.gz")
        nib.save(nib.Nifti1Image(labels.T.copy(), np.eye(4)), masks / f"c{i}.nii.gz")
    return images, masks


def test_nproc_names_pairs_whose_shapes_disagree_before_any_process_starts(tmp_path, capsys):
    images, masks = _volume_folders(tmp_path, ((6, 64, 64), (6, 64, 48), (6, 64, 64)))
    args = ["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "m")]
    code = main([*args, "--nproc", "2", "--device", "cpu", "--from-disk"])
    err = capsys.readouterr().err
    assert code != 0
    assert "'c1.nii.gz': image shape (6, 64, 48) does not match labels shape (6, 64, 64)" in err


def test_nproc_more_than_the_gpus_is_refused(tmp_path, capsys):
    import torch

    images, masks = _volume_folders(tmp_path)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    args = ["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "m")]
    assert main([*args, "--nproc", str(count + 1), "--device", "cuda"]) != 0
    err = capsys.readouterr().err
    expected = f"needs {count + 1} CUDA devices" if count else "CUDA is not available"
    assert expected in err


@pytest.mark.slow
def test_torchrun_runs_the_same_train_command_on_data_left_on_disk(tmp_path):
    images, masks = _volume_folders(tmp_path)
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
        "-m", "napari_res101unet", "train", "--images", str(images), "--masks", str(masks),
        "-o", str(out), "--from-disk", "--device", "cpu", "--epochs", "2",
        "--patch-size", "64", "--batch-size", "2", "--steps-per-epoch", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("epoch 1/2") for line in lines) == 1  # rank 0 alone prints
    assert sum(line.startswith("best model:") for line in lines) == 1
    assert (tmp_path / "ddp.safetensors").is_file()
    assert (tmp_path / "ddp.last.safetensors").is_file()
    assert (masks / ".c0.nii.gz.fgindex.npz").is_file()
