"""Crash-safe file writes: a complete old file or a complete new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path


def durable_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` and fsync it (the caller renames it into place)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    durable_write(tmp, data)
    os.replace(tmp, path)
