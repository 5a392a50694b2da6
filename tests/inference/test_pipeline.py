"""The overlapped (CUDA) tile loop, followed on the CPU through a recording seam: the order
of host and device steps, and the same labels as the inline CPU loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from predictors import per_pixel

from napari_res101unet import Cancelled, run_segmentation
from napari_res101unet.inference import pipeline, segment
from napari_res101unet.inference.pipeline import Inline, Streamed, transfers_for


class Recording(Streamed):
    """The streamed steps on the CPU, each one logged (``upload`` is the end of cutting
    and normalising a batch on the host)."""

    def __init__(self, device, log: list) -> None:
        super().__init__(device)
        self.log, self.n_up, self.n_mark = log, 0, 0

    def upload(self, batch):
        self.log.append(("upload", self.n_up))
        self.n_up += 1
        return super().upload(batch)

    def mark(self):
        marker = super().mark()
        marker.event = self.n_mark  # the batch it follows, for the log
        self.log.append(("mark", self.n_mark))
        self.n_mark += 1
        return marker

    def wait(self, marker):
        self.log.append(("wait", marker.event))
        marker.event = None
        super().wait(marker)

    def fetch(self, tensor):
        self.log.append(("fetch", None))
        return super().fetch(tensor)

    def to_host(self, tensor, dest):
        self.log.append(("to_host", tuple(dest.shape)))
        super().to_host(tensor, dest)

    def drain(self):
        self.log.append(("drain", None))
        super().drain()


def _recorded(monkeypatch, image, blend_on_device, **kw):
    log: list = []
    monkeypatch.setattr(segment, "transfers_for", lambda dev: Recording(dev, log))
    calls = []

    def predictor(x):
        log.append(("forward", len(calls)))
        calls.append(len(x))
        return per_pixel(x)

    progress = []
    result = run_segmentation(
        image,
        predictor,
        return_probabilities=True,
        blend_on_device=blend_on_device,
        progress=lambda d, t: (progress.append(d), log.append(("progress", d))),
        **kw,
    )
    return result, log, calls, progress


@pytest.mark.parametrize("blend_on_device", [True, False])
def test_next_batch_is_prepared_while_the_current_one_runs(rng, monkeypatch, blend_on_device):
    image = rng.random((2, 150, 170)).astype(np.float32)
    kw = {"tile_size": 64, "batch_size": 5}
    inline = run_segmentation(image, per_pixel, return_probabilities=True, **kw)
    result, log, calls, progress = _recorded(monkeypatch, image, blend_on_device, **kw)
    n, total = len(calls), result.plan.total_tiles
    assert total == 24 and n == 5  # 2 slices x 12 tiles in batches of 5
    steps = [e for e in log if e[0] not in ("fetch", "to_host")]
    expected = [("upload", 0)]
    for i in range(n):
        expected += [("forward", i), ("mark", i)]
        if i + 1 < n:
            expected.append(("upload", i + 1))  # batch i+1 cut, normalised, copied in...
        if i >= 1:  # ...before the host waits for batch i-1 (one batch in flight)
            expected += [("wait", i - 1), ("progress", progress[i - 1])]
    expected += [("wait", n - 1), ("progress", total), ("drain", None)]
    assert steps == expected
    fetched = sum(e[0] == "fetch" for e in log)
    copied = [e[1] for e in log if e[0] == "to_host"]
    if blend_on_device:  # tile outputs stay on the device; each slice's labels and
        assert fetched == 0  # probabilities come back once, when the slice is done
        assert copied == [(150, 170)] * 4
    else:  # every batch's outputs come back to be blended on the host
        assert fetched == n and copied == []
    assert np.array_equal(result.labels, inline.labels)
    assert np.abs(result.probabilities - inline.probabilities).max() == 0.0


def test_streamed_cancel_stops_before_the_next_forward(monkeypatch):
    monkeypatch.setattr(segment, "transfers_for", lambda dev: Streamed(dev))
    calls = []

    def predictor(x):
        calls.append(len(x))
        return per_pixel(x)

    with pytest.raises(Cancelled):
        run_segmentation(
            np.zeros((200, 200), np.float32),
            predictor,
            tile_size=64,
            batch_size=2,
            should_stop=lambda: len(calls) >= 2,
        )
    assert len(calls) == 2


def test_the_cpu_runs_inline_without_threads(rng):
    assert type(transfers_for(torch.device("cpu"))) is Inline
    assert not Inline.overlapped and Streamed.overlapped
    threads = []

    def predictor(x):
        threads.append(threading.active_count())
        return per_pixel(x)

    before = threading.active_count()
    run_segmentation(rng.random((200, 200)).astype(np.float32), predictor, tile_size=64)
    assert threads and set(threads) == {before}


def test_cuda_gets_the_streamed_pipeline():
    assert pipeline.Streamed.__mro__[1] is Inline
    if torch.cuda.is_available():
        assert isinstance(transfers_for(torch.device("cuda")), Streamed)


class _Event:
    def __init__(self, log: list, name: str) -> None:
        self.log, self.name = log, name

    def synchronize(self) -> None:
        self.log.append(("sync", self.name))


class FakeCudaOps:
    """Stands in for :class:`CudaOps` (no CUDA here): tensors stay on the CPU, and every
    pinned allocation, copy, event and wait is logged."""

    def __init__(self, log: list) -> None:
        self.log, self.n_in, self.n_events = log, 0, 0

    def pinned(self, shape, dtype=torch.float32):
        self.log.append(("pin", tuple(shape)))
        return torch.empty(shape, dtype=dtype)

    def copy_in(self, buf):
        i, self.n_in = self.n_in, self.n_in + 1
        self.log.append(("copy_in", i, buf.data_ptr()))
        return buf.clone(), _Event(self.log, f"in{i}")

    def copy_out(self, tensor):
        self.log.append(("copy_out", tuple(tensor.shape)))
        return tensor.clone()

    def event(self):
        i, self.n_events = self.n_events, self.n_events + 1
        return _Event(self.log, f"batch{i}")

    def synchronize(self):
        self.log.append(("synchronize",))


@pytest.mark.parametrize("blend_on_device", [True, False])
def test_pinned_slots_copies_and_events_follow_the_cuda_rules(rng, monkeypatch, blend_on_device):
    image = rng.random((2, 150, 170)).astype(np.float32)
    kw = {"tile_size": 64, "batch_size": 5, "return_probabilities": True}
    inline = run_segmentation(image, per_pixel, **kw)
    log: list = []
    monkeypatch.setattr(
        segment, "transfers_for", lambda dev: Streamed(dev, slots=2, ops=FakeCudaOps(log))
    )
    result = run_segmentation(image, per_pixel, blend_on_device=blend_on_device, **kw)
    assert np.array_equal(result.labels, inline.labels)
    assert np.abs(result.probabilities - inline.probabilities).max() == 0.0

    ins = [e for e in log if e[0] == "copy_in"]
    assert len(ins) == 5  # 24 tiles in batches of 5
    ptr = [e[2] for e in ins]
    assert ptr[0] == ptr[2] and ptr[1] == ptr[3] and ptr[0] != ptr[1]  # two pinned slots
    # 2 slots, then one more for the smaller last batch (4 tiles): no pinning per batch
    assert [e[1][0] for e in log if e[0] == "pin"] == [5, 5, 4]
    at = {e: i for i, e in enumerate(log)}
    for i in range(2, 5):  # a slot is refilled only once its previous copy has left it
        assert at[("sync", f"in{i - 2}")] < at[ins[i]]
    for i in range(1, 5):  # batch i is copied in before the host waits for batch i-1
        assert at[ins[i]] < at[("sync", f"batch{i - 1}")]
    assert log[-1] == ("synchronize",)
    outs = [e[1] for e in log if e[0] == "copy_out"]
    if blend_on_device:  # labels and probabilities of each slice, once
        assert outs == [(150, 170)] * 4
    else:  # each batch's tile outputs
        assert outs == [(5, 1, 64, 64)] * 4 + [(4, 1, 64, 64)]


class _OneCopyTooMany(FakeCudaOps):
    def copy_in(self, buf):
        if self.n_in == 1:
            self.n_in += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return super().copy_in(buf)


def test_out_of_memory_while_copying_in_retries_smaller(rng, monkeypatch):
    image = rng.random((150, 170)).astype(np.float32)
    expected = run_segmentation(image, per_pixel, tile_size=64).labels
    log: list = []
    monkeypatch.setattr(
        segment, "transfers_for", lambda dev: Streamed(dev, ops=_OneCopyTooMany(log))
    )
    result = run_segmentation(image, per_pixel, tile_size=64, batch_size=4)
    assert any("retried smaller" in n for n in result.notes)
    assert result.plan.batch_size == 2
    assert np.array_equal(result.labels, expected)


NORMALISATIONS = [
    (np.uint8, 3, 3, {"mode": "imagenet"}),
    (np.uint8, 3, 1, {"mode": "imagenet"}),  # RGB to gray first
    (np.int16, 1, 1, {"mode": "window"}),  # clipped
    (np.float32, 1, 1, {"mode": "percentile"}),  # with NaN pixels
    (np.float16, 2, 2, {"mode": "minmax"}),
]


@pytest.mark.parametrize(("dtype", "channels", "model_channels", "setting"), NORMALISATIONS)
def test_device_normalisation_matches_the_host(rng, dtype, channels, model_channels, setting):
    from napari_res101unet.inference.pipeline import DeviceNormalizer
    from napari_res101unet.preprocess.normalize import make_normalizer

    raw = rng.normal(100, 400, (2, 40, 50, channels))
    if dtype == np.uint8:
        raw = rng.integers(0, 256, raw.shape)
    data = raw.astype(dtype)
    if dtype == np.float32:
        data[0, :3, :4] = np.nan
    norm = make_normalizer(data, setting, model_channels)
    assert DeviceNormalizer.applies(norm, data.dtype)
    host = norm(data)
    dev = DeviceNormalizer(norm, torch.device("cpu"))(torch.from_numpy(data))
    assert dev.shape == host.shape and dev.dtype == torch.float32
    assert dev.is_contiguous(memory_format=torch.channels_last)
    if model_channels == 1 and channels == 3:  # a 3-term dot product: summation order
        np.testing.assert_allclose(dev.numpy(), host, rtol=0, atol=1e-5)
    else:
        assert np.array_equal(dev.numpy(), host, equal_nan=False)


def test_raw_uint8_tiles_are_copied_and_normalised_on_the_device(rng, monkeypatch):
    from napari_res101unet.inference.pipeline import DeviceNormalizer

    image = rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)
    kw = {"tile_size": 64, "batch_size": 5, "normalization": "imagenet"}
    inline = run_segmentation(image, per_pixel, return_probabilities=True, **kw)
    log: list = []
    monkeypatch.setattr(segment, "transfers_for", lambda dev: Streamed(dev, ops=FakeCudaOps(log)))
    result = run_segmentation(image, per_pixel, return_probabilities=True, **kw)
    pinned = [e[1] for e in log if e[0] == "pin"]
    assert pinned[0] == (5, 64, 64, 3)  # raw tiles, a quarter of the float32 bytes
    assert np.array_equal(result.labels, inline.labels)
    assert np.abs(result.probabilities - inline.probabilities).max() == 0.0
    from napari_res101unet.preprocess.normalize import make_normalizer

    norm = make_normalizer(image[None], {"mode": "imagenet"}, 3)
    assert DeviceNormalizer.applies(norm, np.uint8)
    assert not DeviceNormalizer.applies(norm, np.uint16)  # torch lacks it: host path
    assert not DeviceNormalizer.applies(lambda t: t, np.uint8)  # not a Normalizer
