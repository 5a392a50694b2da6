"""``train`` and ``evaluate`` subcommands (filled in with the training engine)."""

from __future__ import annotations


def add_commands(sub, commands) -> None:
    """Register the training subcommands on the ``napari-res101unet`` parser."""
