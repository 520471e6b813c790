"""Atomic file writes: a killed process never leaves a half-written file behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def _atomic(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path, text: str) -> None:
    _atomic(path, lambda fh: fh.write(text.encode()))


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))
