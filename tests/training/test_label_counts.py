"""Label statistics never allocate by the largest label value (issue 14, item 7): an
instance id of 2**31 is counted, refused or scored in small memory, in a process whose
address space is limited to 2 GiB (np.bincount would need 16 GiB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_res101unet
from napari_res101unet.preprocess.pairs import check_pairs, resolve_classes

SRC = Path(napari_res101unet.__file__).resolve().parents[1]  # the package under test


def test_value_counts_is_sparse_and_agrees_with_bincount():
    from napari_res101unet.preprocess.pairs import value_counts

    small = np.array([0, 0, 3, 3, 3, 7], np.uint8)
    values, counts = value_counts(small)
    assert values.tolist() == [0, 3, 7] and counts.tolist() == [2, 3, 1]
    huge = np.array([0, 2**31, 2**31, 5], np.int64)
    values, counts = value_counts(huge)
    assert values.tolist() == [0, 5, 2**31] and counts.tolist() == [1, 1, 2]


def test_classes_from_gapped_labels_keep_their_messages():
    labels = np.array([[0, 1, 255], [255, 3, 0]], np.uint8)
    checked = check_pairs([(np.ones((2, 3)), labels)], ignore_index=255)
    assert checked[0].values.tolist() == [0, 1, 3] and checked[0].counts.tolist() == [2, 1, 1]
    with pytest.raises(ValueError, match=r"use the values \{0, 1, 3\} \(largest 3\)"):
        resolve_classes(checked, None, 255)
    with pytest.raises(ValueError, match="has label 3, beyond classes=3"):
        resolve_classes(checked, 3, 255)
    assert resolve_classes(checked, 4, 255) == 4


_SCRIPT = """
import resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from napari_res101unet.preprocess.pairs import check_pairs, resolve_classes
from napari_res101unet.evaluation import pixel as metrics
labels = np.zeros((64, 64), np.int64)
labels[10:20, 10:20] = 2**31
labels[30:40, 30:40] = 7
checked = check_pairs([(np.ones((64, 64), np.float32), labels)], ignore_index=None)
assert checked[0].values.tolist() == [0, 7, 2**31], checked[0].values
try:
    resolve_classes(checked, None, None)
except ValueError as exc:
    assert "instance or 0/255 mask" in str(exc) and "largest 2147483648" in str(exc), exc
else:
    raise SystemExit("no error")
try:
    resolve_classes(checked, 3, None)
except ValueError as exc:
    assert "has label 2147483648, beyond classes=3" in str(exc), exc
try:
    metrics.iou(labels, labels)
except ValueError as exc:
    assert "instance mask" in str(exc), exc
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_an_instance_id_of_2_to_the_31_needs_no_gigabytes():
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
