"""Atomic file writes and safe checkpoints.

A killed process never leaves a half-written file behind: every file is written to a
temporary name in its folder and renamed into place, with the permissions of the user's
umask (``mkstemp`` alone would leave it 0600, unreadable to collaborators on a cluster).

Checkpoints hold plain data only — tensors, numbers, strings, booleans, None, lists,
tuples and dicts of them — and are read back with ``torch.load(weights_only=True)``, so
opening a run folder never runs code from it.  ``load_checkpoint`` turns a missing,
empty, truncated, garbage or code-carrying file into a ``CheckpointError`` naming it.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely; the message names the file and what to do."""


_umask_lock = threading.Lock()


def _file_mode() -> int:
    """0666 minus the process umask (read without changing it for other threads for long)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def _atomic(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_PLAIN = (int, float, bool, str, bytes, type(None), torch.Tensor, torch.dtype, torch.Size)


def check_plain(obj, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` unless ``obj`` is plain data that ``torch.load(weights_only=True)`` reads back."""
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)):
                raise TypeError(f"{where}: key {k!r} is not a string or number")
            check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}; checkpoints hold tensors and plain data only")


def atomic_torch_save(obj, path) -> None:
    """Save plain data (see ``check_plain``) atomically; anything else is refused before writing."""
    check_plain(obj)
    _atomic(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by ``atomic_torch_save``, read with ``weights_only=True``.

    Raises ``CheckpointError`` naming the file when it is missing, empty, truncated, not a
    checkpoint, or holds anything but tensors and plain data (which is never unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (or is not a file)" if not path.exists()
                              else f"{path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the run did not finish writing it; "
                              f"delete it to start the run afresh")
    try:
        with warnings.catch_warnings():
            # a raw pickle (not torch.save's zip) makes torch warn about its protocol before our error names it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e) or "GLOBAL" in str(e):
            raise CheckpointError(f"{path} holds objects other than tensors and plain data; it was not loaded "
                                  f"(it could run code). Only load it if you trust its origin") from None
        raise CheckpointError(f"{path} is not a readable checkpoint ({first}); delete it to start afresh") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError,
            AttributeError, TypeError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({first}); "
                              f"delete it to start afresh") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a neuro checkpoint (it holds a {type(state).__name__}, not a table)")
    return state


def atomic_write_text(path, text: str) -> None:
    _atomic(path, lambda fh: fh.write(text.encode()))


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))
