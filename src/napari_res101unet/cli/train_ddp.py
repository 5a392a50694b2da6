"""``napari-res101unet train --nproc N``: start N local ranks of the same command."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable


def launch_ranks(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """Check what can be checked in this process (devices, pair shapes: headers only),
    then run ``train`` (``run``: ``cli.train.run``, given so that this module does not
    import it back) in ``args.nproc`` ranks with torch's launcher."""
    from ..training.distributed import env_world
    from ..training.lazy_pairs import folder_pairs, open_pairs
    from ..training.local_ranks import check_nproc, launch

    if env_world() is not None:
        raise ValueError(
            "--nproc starts its own processes; under torchrun leave it out (torchrun's "
            "--nproc_per_node sets the count)"
        )
    check_nproc(args.nproc, args.device)
    for images, masks in ((args.images, args.masks), (args.val_images, args.val_masks)):
        if images is not None:  # mismatched pairs named before any process starts
            pairs, names = folder_pairs(images, masks, binary=args.binary)
            open_pairs(pairs, names)
    rank_args = copy.copy(args)
    rank_args.nproc = 1
    launch(_rank, (rank_args, run), nproc=args.nproc, threads=1)
    return 0


def _rank(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    import torch

    torch.set_num_threads(1)
    return run(args)
