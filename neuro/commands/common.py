"""Argument helpers shared by CLI subcommands (they live in ``neuro.resolve``, below the CLI)."""
from __future__ import annotations

from pathlib import Path

from neuro.resolve import fit_spec_to_task, load_spec_arg, task_for

__all__ = ["fit_spec_to_task", "load_spec_arg", "task_for", "check_out_dir", "OutputDirError"]


class OutputDirError(ValueError):
    """An output folder that cannot be written (a file, under a file, read-only, full)."""


def check_out_dir(out, need_bytes: int = 0) -> None:
    """Make sure ``out`` is (or can become) a writable folder with ``need_bytes`` free; else one line why."""
    import shutil
    import tempfile
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is a file, not a folder; choose another path")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputDirError(f"--out {out} lies under {parent}, which is a file; choose another path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OutputDirError(f"--out {out} cannot be written ({e.strerror or e}); choose another path") from None
    if need_bytes:
        free = shutil.disk_usage(out).free
        if free < need_bytes:
            raise OutputDirError(f"--out {out}: the disk has {free / 2**20:.1f} MiB free, the run needs about "
                                 f"{need_bytes / 2**20:.1f} MiB for its checkpoint; free space or choose another path")
