"""``benchmarks/liver_per_slice.py``: the split by scan it shares with ``bench_training``
and the paired bootstrap over scans that says how sure a difference of pooled IoU is."""

from __future__ import annotations

import sys

import numpy as np

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_training
import liver_per_slice as lps


def test_the_split_keeps_every_scan_on_one_side(tmp_path):
    (tmp_path / "images").mkdir()
    for volume in range(10):
        for z in range(3):
            (tmp_path / "images" / f"flipped_{volume}_{z}.jpg").touch()
    (tmp_path / "images" / "notes.txt").touch()  # not a slice: ignored
    train, test, volumes = bench_training.liver_files(tmp_path, seed=0)
    assert len(volumes) == 10 and len(train) + len(test) == 30 and len(test) == 6
    assert not {bench_training.liver_volume(p) for p in train} & {
        bench_training.liver_volume(p) for p in test
    }
    assert bench_training.liver_files(tmp_path, seed=0)[1] == test  # the seed fixes it
    assert bench_training.liver_files(tmp_path, seed=1)[1] != test


def test_pooled_iou_sums_the_counts_before_dividing():
    counts = np.array([[90, 5, 5], [0, 10, 0]])  # a big hit and a slice of false alarm
    assert lps.pooled_iou(counts) == 90 / 110
    assert lps.pooled_iou(np.zeros((2, 3), int)) == 0.0


def test_the_bootstrap_of_a_model_against_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 100, (12, 3))
    scans = np.repeat(np.arange(4), 3)
    d, low, high, p_ge = lps.paired_bootstrap(a, a, scans, 500, seed=0)
    assert (d, low, high, p_ge) == (0.0, 0.0, 0.0, 1.0)


def test_the_bootstrap_separates_a_clear_winner_and_not_a_scan_level_tie():
    scans = np.repeat(np.arange(6), 4)
    good = np.tile([80, 10, 10], (24, 1))
    bad = np.tile([60, 20, 20], (24, 1))
    d, low, high, p_ge = lps.paired_bootstrap(good, bad, scans, 2000, seed=0)
    assert d > 0 and 0 < low <= d <= high and p_ge == 1.0
    # A wins three scans by as much as it loses the other three: the interval holds 0.
    a = np.where((scans < 3)[:, None], good, bad)
    b = np.where((scans < 3)[:, None], bad, good)
    d, low, high, p_ge = lps.paired_bootstrap(a, b, scans, 2000, seed=0)
    assert d == 0.0 and low < 0 < high and 0.3 < p_ge < 0.8


def test_default_pairs_put_ours_first_and_pair_only_the_same_cell():
    names = ["liver-10min-ours", "liver-10min-plain", "liver-25min-ours", "liver-25min-plain"]
    assert lps.default_pairs(names) == [
        ("liver-10min-ours", "liver-10min-plain"),
        ("liver-25min-ours", "liver-25min-plain"),
    ]
    assert lps.default_pairs(["liver-40min-ours_noaug", "liver-40min-plain"]) == [
        ("liver-40min-ours_noaug", "liver-40min-plain")
    ]
