"""Lyapunov spectrum by the QR (Benettin) method on a model's one-step Jacobian.

For a map ``h[t+1] = F(h[t], x[t])`` with Jacobians ``J_t = ∂F/∂h``, k orthonormal
tangent vectors ``Q`` are pushed through ``J_t`` and re-orthonormalized,
``J_t Q_t = Q_{t+1} R_{t+1}``; the exponents are the time averages of
``log |diag R|`` (Benettin et al. 1980; Vogt et al. 2022 for RNNs).  They come
out per time step (natural log) and per second (divided by dt).

Only Jacobian–vector products are used: the rate backend's analytic
``J V = α V + (1-α) W_rec (f'(h) ⊙ V)`` or, for any model with a one-step map
``step(h, x)``, ``torch.func.jvp`` vmapped over the k columns — O(T·N²·k), never
an N×N Jacobian per step.  A LIF model plugs in through the same ``step`` with
its surrogate derivative in place of the spike's, which makes its spectrum a
surrogate ("pseudo") spectrum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm


@dataclass
class LyapunovResult:
    exponents: np.ndarray          # [k], per time step (natural log), sorted descending, mean over trajectories
    per_trajectory: np.ndarray     # [B, k]
    running: np.ndarray            # [n_qr, k] running estimate after each re-orthonormalization
    dt: float | None = None        # ms

    @property
    def max_exponent(self) -> float:
        return float(self.exponents[0])

    @property
    def per_second(self) -> np.ndarray:
        """Exponents in 1/s (requires dt in ms)."""
        if self.dt is None:
            raise ValueError("per_second needs the model's dt; this map has none")
        return self.exponents * 1000.0 / self.dt


class LinearMap:
    """``h → A h + B x`` as a model (oracle tests, linearizations)."""

    def __init__(self, A, B=None):
        self.A = torch.as_tensor(A)
        self.B = None if B is None else torch.as_tensor(B)
        self.dt = None

    @property
    def n_hidden(self) -> int:
        return self.A.shape[-1]

    def step(self, h, x=None):
        out = h @ self.A.T
        return out if (self.B is None or x is None) else out + x @ self.B.T

    def jacobian_vp(self, h, V):
        return torch.matmul(self.A, V)


def _jvp(model, h, x, V):
    """``J V`` with ``V [..., B, N, k]``: analytic when the model has it, else vmapped jvp of ``step``."""
    if hasattr(model, "jacobian_vp"):
        return model.jacobian_vp(h, V)
    step = lambda hh: model.step(hh, x)
    tangent = lambda v: torch.func.jvp(step, (h,), (v,))[1]
    return torch.func.vmap(tangent, in_dims=-1, out_dims=-1)(V)


def _model_dtype(model, inputs=None):
    """The dtype/device of the model's tensors (else of the inputs, else torch's default)."""
    tensors = [getattr(model, name) for name in ("W_rec", "A") if torch.is_tensor(getattr(model, name, None))]
    if not tensors and hasattr(model, "trainable"):
        tensors = list(model.trainable().values())
    if not tensors and torch.is_tensor(inputs):
        tensors = [inputs]
    if tensors:
        return tensors[0].dtype, tensors[0].device
    return torch.get_default_dtype(), "cpu"


def _setup(model, inputs, steps, batch_size, h0, k, seed, dtype):
    mdtype, device = _model_dtype(model, inputs)
    dtype = dtype or mdtype
    n = model.n_hidden
    gen = torch.Generator().manual_seed(seed)
    if inputs is not None:
        inputs = torch.as_tensor(inputs).to(dtype=dtype, device=device)
        T, batch_size = inputs.shape[0], inputs.shape[1]
    else:
        if steps is None or steps < 1:
            raise ValueError(f"steps must be an integer >= 1 for an autonomous spectrum, got {steps!r}")
        T = steps
    k = n if k is None else k
    if not (isinstance(k, int) and 1 <= k <= n):
        raise ValueError(f"k must be an integer in [1, {n}], got {k!r}")
    if h0 is None:
        h0 = torch.zeros(batch_size, n, dtype=dtype) if inputs is not None else \
            torch.randn(batch_size, n, generator=gen, dtype=dtype)
    h0 = torch.as_tensor(h0).to(dtype=dtype, device=device)
    Q = torch.linalg.qr(torch.randn(h0.shape[0], n, k, generator=gen, dtype=dtype))[0].to(device)
    return inputs, T, h0, Q


def _input(model, inputs, t, h):
    if inputs is not None:
        return inputs[t]
    n_in = getattr(getattr(model, "spec", None), "n_inputs", None)
    return None if n_in is None else torch.zeros(h.shape[:-1] + (n_in,), dtype=h.dtype, device=h.device)


def lyapunov_spectrum(model, inputs=None, k: int | None = None, warmup: int = 0, reortho_every: int = 1,
                      steps: int | None = None, batch_size: int = 1, h0=None, seed: int = 0, dtype=None,
                      progress: bool = False) -> LyapunovResult:
    """The k leading Lyapunov exponents along trajectories of ``model``.

    ``inputs [T, B, n_in]`` drive B trajectories (task inputs); without inputs the
    model runs autonomously for ``steps`` steps from ``h0`` (default: N(0, 1)).
    The first ``warmup`` steps align the tangent vectors and are not counted;
    ``reortho_every`` steps pass between QR decompositions.
    """
    if not (isinstance(warmup, int) and warmup >= 0):
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    if not (isinstance(reortho_every, int) and reortho_every >= 1):
        raise ValueError(f"reortho_every must be an integer >= 1, got {reortho_every!r}")
    inputs, T, h, Q = _setup(model, inputs, steps, batch_size, h0, k, seed, dtype)
    if warmup >= T:
        raise ValueError(f"warmup ({warmup}) must be shorter than the trajectory ({T} steps)")
    logs = torch.zeros(Q.shape[0], Q.shape[-1], dtype=Q.dtype, device=Q.device)
    running, counted = [], 0
    with torch.no_grad():
        for t in tqdm(range(T), disable=not progress, desc="Lyapunov", leave=False):
            x = _input(model, inputs, t, h)
            Q = _jvp(model, h, x, Q)
            h = model.step(h, x)
            if (t + 1) % reortho_every == 0 or t == T - 1:
                Q, R = torch.linalg.qr(Q)
                if t >= warmup:
                    logs += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
                    counted = t + 1 - warmup
                    running.append((logs / counted).mean(0).cpu().numpy())
    per_traj = (logs / counted).cpu().numpy()
    per_traj = -np.sort(-per_traj, axis=-1)
    return LyapunovResult(exponents=per_traj.mean(0), per_trajectory=per_traj, running=np.array(running),
                          dt=getattr(getattr(model, "spec", None), "dt", getattr(model, "dt", None)))


def full_jacobian_spectrum(model, inputs=None, k=None, steps=None, batch_size=1, h0=None, seed=0):
    """Reference implementation forming the N×N Jacobian every step (torch.func.jacrev) — for the benchmark."""
    inputs, T, h, Q = _setup(model, inputs, steps, batch_size, h0, k, seed, None)
    logs = torch.zeros(Q.shape[0], Q.shape[-1], dtype=Q.dtype)
    with torch.no_grad():
        for t in range(T):
            x = _input(model, inputs, t, h)
            J = torch.stack([torch.func.jacrev(lambda hh: model.step(hh.unsqueeze(0), None if x is None else
                                                                    x[b:b + 1]).squeeze(0))(h[b])
                             for b in range(h.shape[0])])
            Q, R = torch.linalg.qr(J @ Q)
            logs += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
            h = model.step(h, x)
    out = -np.sort(-(logs / T).numpy(), axis=-1)
    return out.mean(0)
