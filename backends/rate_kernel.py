"""The rate rollout's compiled kernel (``rate_kernel.c``): built on first use, loaded with ctypes.

The C file is compiled once per machine with the system's C compiler (``-O3 -march=native``)
into ``~/.cache/neuro`` (``NEURO_CACHE`` overrides) and reused by every later process; the
shared object is written atomically, so parallel sweep workers never load a partial file.
Where no compiler is found, or with ``NEURO_KERNEL=0``, ``library()`` is None and the rate
backend runs on PyTorch ops (same numbers to float rounding, slower; one warning says so).

It covers the common case only: float32 on the CPU, ReLU units, N a multiple of 16 —
``usable`` says when.  Members of an ensemble are split across ``torch.get_num_threads()``
threads (ctypes releases the GIL during each call).
"""
from __future__ import annotations

import concurrent.futures as cf
import ctypes
import hashlib
import os
import platform
import subprocess
import sysconfig
import tempfile
import threading
import warnings
from pathlib import Path

import torch

_SOURCE = Path(__file__).with_name("rate_kernel.c")
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC"]
_INT, _PTR, _FLOAT = ctypes.c_int, ctypes.c_void_p, ctypes.c_float
_lib = None
_tried = False
_lock = threading.Lock()
_pool: cf.ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0          # a forked child (Lava forks) inherits the pool object but not its threads


def _cache_dir() -> Path:
    if os.environ.get("NEURO_CACHE"):
        return Path(os.environ["NEURO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuro"


def _cpu_identity() -> str:
    """What -march=native compiles for: a binary built on another CPU must not be reused here."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({line for line in info if line.startswith(("flags", "model name"))}))
    except OSError:
        return platform.machine() + platform.processor()


def _digest(path: Path) -> str:
    data = path.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def _verified(target: Path) -> bool:
    """Whether the cached library is the one we built: its size and SHA-256 match the record written
    next to it (a truncated or replaced file would crash the process when loaded)."""
    record = target.with_name(target.name + ".sha256")
    try:
        return record.read_text().strip() == _digest(target)
    except OSError:
        return False


def _compile() -> ctypes.CDLL:
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    key = hashlib.sha256(_SOURCE.read_bytes() + " ".join([cc, *_FLAGS]).encode()
                         + _cpu_identity().encode()).hexdigest()[:16]
    cache = _cache_dir()
    target = cache / f"rate_kernel-{key}.so"
    if target.exists() and not _verified(target):
        warnings.warn(f"neuro: the cached rate kernel {target} does not match its recorded size and hash "
                      f"(truncated or replaced); rebuilding it", RuntimeWarning)
    if not target.exists() or not _verified(target):
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            built = Path(tmp) / target.name
            run = subprocess.run([cc, *_FLAGS, "-o", str(built), str(_SOURCE)], capture_output=True, text=True,
                                 timeout=300)
            if run.returncode != 0:
                raise RuntimeError(f"{cc} failed: {run.stderr.strip()[:500]}")
            os.chmod(built, 0o755)
            record = Path(tmp) / "record"
            record.write_text(_digest(built))
            # the record first: a process that sees the new library also sees its record
            os.replace(record, target.with_name(target.name + ".sha256"))
            os.replace(built, target)
        if not _verified(target):
            raise RuntimeError(f"the rebuilt kernel {target} does not match its record (another process "
                               f"is writing the cache?)")
    lib = ctypes.CDLL(str(target))
    lib.rollout_forward.argtypes = [_INT] * 6 + [_PTR] * 6 + [_FLOAT] + [_PTR] * 3 + [_INT] * 2
    lib.rollout_backward.argtypes = [_INT] * 6 + [_PTR] * 8 + [_FLOAT, _INT, _INT] + [_PTR] * 5 + [_INT] * 2
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None where it cannot be built here (see the module docstring)."""
    global _lib, _tried
    if not _tried:
        with _lock:
            if not _tried:
                if os.environ.get("NEURO_KERNEL", "1") != "0":
                    try:
                        _lib = _compile()
                    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                        warnings.warn(f"neuro: the compiled rate kernel is unavailable ({exc}); the rate backend "
                                      f"runs on PyTorch ops instead (same results, slower)", RuntimeWarning)
                _tried = True
    return _lib


def usable(x: torch.Tensor, W: torch.Tensor, f) -> bool:
    """Whether the kernel handles this rollout: float32 CPU tensors, ReLU, N a multiple of 16."""
    return (f is torch.relu and x.dtype == torch.float32 and x.device.type == "cpu"
            and W.dtype == torch.float32 and W.shape[-1] % 16 == 0 and library() is not None)


def _ptr(t: torch.Tensor | None):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _over_members(E: int, call) -> None:
    """``call(e0, e1)`` over [0, E), split across torch's thread count."""
    global _pool, _pool_size, _pool_pid
    workers = min(torch.get_num_threads(), E)
    if workers <= 1:
        call(0, E)
        return
    if _pool is None or _pool_size < workers or _pool_pid != os.getpid():
        _pool, _pool_size, _pool_pid = cf.ThreadPoolExecutor(workers), workers, os.getpid()
    bounds = [E * i // workers for i in range(workers + 1)]
    for job in [_pool.submit(call, a, b) for a, b in zip(bounds, bounds[1:]) if b > a]:
        job.result()


class KernelInputError(ValueError):
    """Arrays that do not fit the kernel's layout (the C code trusts its sizes: it is never called with them)."""


def _expect(name: str, t, shape: tuple) -> None:
    if t is None:
        raise KernelInputError(f"rate kernel: {name} is missing")
    if not torch.is_tensor(t) or t.dtype != torch.float32 or t.device.type != "cpu":
        raise KernelInputError(f"rate kernel: {name} must be a float32 CPU tensor, got "
                               f"{getattr(t, 'dtype', type(t).__name__)} on {getattr(t, 'device', '?')}")
    if tuple(t.shape) != tuple(shape):
        raise KernelInputError(f"rate kernel: {name} must have shape {tuple(shape)}, got {tuple(t.shape)} "
                               f"(inputs must have the network's n_inputs as their last dimension)")


def _check_sizes(T, E, B, N, NI, O) -> None:
    if N % 16 or min(T, E, B, N, NI, O) < 1:
        raise KernelInputError(f"rate kernel: sizes T={T}, E={E}, B={B}, N={N} (a multiple of 16), NI={NI}, "
                               f"O={O} must all be >= 1")
    if max(T * E * B * max(N, NI, O), E * (N + NI + 1) * N) >= 2**31 - 1:
        raise KernelInputError("rate kernel: arrays too large for its 32-bit indices; "
                               "run with NEURO_KERNEL=0 or split the batch")


def forward(x, W, W_in, b, W_out, b_out, h0, noise, alpha: float):
    """``states [T,E,B,N]``, ``rates [T+1,E,B,N]``, ``outputs [T,E,B,O]`` (see ``rate_kernel.c``).
    Every array's dtype, device and shape is checked before the call (``KernelInputError``)."""
    if not torch.is_tensor(x) or x.dim() != 4 or not torch.is_tensor(W) or W.dim() != 3:
        raise KernelInputError(f"rate kernel: x must be [T, E, B, NI] and W [E, N, N], got shapes "
                               f"{tuple(getattr(x, 'shape', ()))} and {tuple(getattr(W, 'shape', ()))}")
    T, E, B, NI = x.shape
    N = W.shape[-1]
    O = W_out.shape[-2] if torch.is_tensor(W_out) and W_out.dim() == 3 else 0
    _check_sizes(T, E, B, N, NI, O)
    for name, t, shape in (("x", x, (T, E, B, NI)), ("W_rec", W, (E, N, N)), ("W_in", W_in, (E, N, NI)),
                           ("b", b, (E, N)), ("W_out", W_out, (E, O, N)), ("b_out", b_out, (E, O)),
                           ("h0", h0, (E, B, N))):
        _expect(name, t, shape)
    if noise is not None:
        _expect("noise", noise, (T, E, B, N))
    x, h0 = x.contiguous(), h0.contiguous()
    noise = None if noise is None else noise.contiguous()
    wt = ((1.0 - alpha) * torch.cat([W, W_in, b.unsqueeze(-1)], -1)).transpose(-1, -2).contiguous()
    wout, bout = W_out.contiguous(), b_out.contiguous()
    states, rates, outputs = x.new_empty((T, E, B, N)), x.new_empty((T + 1, E, B, N)), x.new_empty((T, E, B, O))
    lib = library()
    _over_members(E, lambda e0, e1: lib.rollout_forward(
        T, E, B, N, NI, O, _ptr(x), _ptr(wt), _ptr(wout), _ptr(bout), _ptr(h0), _ptr(noise), alpha,
        _ptr(states), _ptr(rates), _ptr(outputs), e0, e1))
    return states, rates, outputs


def adjoint(x, states, rates, back_w, read_w, g_outputs, g_states, g_rates, alpha: float, eprop: bool, k):
    """``λ [T,E,B,N]`` and the unscaled sums ``Σ λᵀ r``, ``Σ λᵀ [x | 1]`` (as ``[E, N, NI+1]``),
    ``Σ g_yᵀ r`` — what ``_Rollout.backward`` needs (see ``rate_kernel.c``)."""
    T, E, B, NI = x.shape
    N, O = states.shape[-1], read_w.shape[-2]
    _check_sizes(T, E, B, N, NI, O)
    for name, t, shape in (("x", x, (T, E, B, NI)), ("states", states, (T, E, B, N)),
                           ("rates", rates, (T + 1, E, B, N)), ("back_w", back_w, (E, N, N)),
                           ("read_w", read_w, (E, O, N))):
        _expect(name, t, shape)
    for name, t, shape in (("g_outputs", g_outputs, (T, E, B, O)), ("g_states", g_states, (T, E, B, N)),
                           ("g_rates", g_rates, (T, E, B, N))):
        if t is not None:
            _expect(name, t, shape)
    c = lambda t: None if t is None else t.contiguous()
    states, rates = states.contiguous(), rates.contiguous()
    x, back_w, read_w = x.contiguous(), back_w.contiguous(), read_w.contiguous()
    g_outputs, g_states, g_rates = c(g_outputs), c(g_states), c(g_rates)
    lam = torch.empty_like(states)
    g_rec = states.new_zeros((E, N, N))
    g_drive = states.new_zeros((E, NI + 1, N))
    g_out = states.new_zeros((E, O, N))
    lib = library()

    def call(e0, e1):
        scratch = states.new_empty((B, N))
        lib.rollout_backward(T, E, B, N, NI, O, _ptr(x), _ptr(states), _ptr(rates), _ptr(back_w), _ptr(read_w),
                             _ptr(g_outputs), _ptr(g_states), _ptr(g_rates), alpha, int(bool(eprop)), int(k or 0),
                             _ptr(lam), _ptr(g_rec), _ptr(g_drive), _ptr(g_out), _ptr(scratch), e0, e1)
    _over_members(E, call)
    return lam, g_rec, g_drive.transpose(-1, -2), g_out
