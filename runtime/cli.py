"""Command-line entries of the runtime side."""

from __future__ import annotations


def add_commands(commands) -> None:
    """Register ``live``, ``reenact`` and ``bench`` on the main parser."""
