"""Training on every local GPU from one process (the Train widget's "all GPUs" choice).

:func:`fit_all_gpus` starts one rank per CUDA device with
:func:`~napari_res101unet.training.local_ranks.launch` and runs
:func:`~napari_res101unet.training.run.fit` in each; rank 0's events come back through a
queue to ``callback`` here, and ``should_stop`` here reaches rank 0 (which stops every
rank together) through a shared flag.
"""

from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace

from ..config import TrainSettings
from .run import TrainRun
from .state import TrainingEvent


def fit_all_gpus(run: TrainRun, settings: TrainSettings) -> SimpleNamespace:
    """:func:`fit` in one rank per CUDA device; returns an object whose ``spec`` is the
    trained model's (the weights are in ``run.output``)."""
    import multiprocessing

    import torch

    from ..inference.cluster import safe_child_paths
    from .local_ranks import launch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:
        raise ValueError(f"'all GPUs' needs at least 2 CUDA devices; this machine has {count}")
    callback, should_stop = run.callback, run.should_stop
    run = dataclasses.replace(run, device="cuda", callback=None, should_stop=None)
    with safe_child_paths():  # the manager's process, spawned on macOS and Windows
        manager = multiprocessing.Manager()
    events, stop = manager.Queue(), manager.Event()
    done = threading.Event()

    def relay() -> None:
        while not done.is_set():
            if should_stop is not None and should_stop():
                stop.set()
            try:
                data = events.get(timeout=0.2)
            except Exception:  # queue.Empty (a proxy: the exception class varies)
                continue
            if callback is not None:
                callback(TrainingEvent(**data))

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        results = launch(_rank, (run, settings, events, stop), nproc=count)
    finally:
        done.set()
        thread.join(5)
        while not events.empty() and callback is not None:
            callback(TrainingEvent(**events.get()))
        manager.shutdown()
    return SimpleNamespace(spec=results[0])


def _rank(run: TrainRun, settings: TrainSettings, events, stop):
    from .run import fit

    hooks = {"callback": lambda event: events.put(event.as_dict()), "should_stop": stop.is_set}
    return fit(dataclasses.replace(run, **hooks), settings).spec
