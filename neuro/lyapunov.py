"""Lyapunov spectrum by the QR (Benettin) method on a model's one-step Jacobian.

For a map ``h[t+1] = F(h[t], x[t])`` with Jacobians ``J_t = ∂F/∂h (h[t], x[t])``,
k orthonormal tangent vectors are pushed through the Jacobians and
re-orthonormalized, ``J_t Q_t = Q_{t+1} R_{t+1}``; the exponents are the time
averages ``λ_i = (1/T) Σ log |R_ii|`` (Benettin et al. 1980, Meccanica 15;
Vogt et al. 2022, "On Lyapunov exponents for RNNs", Front. Appl. Math. Stat. 8,
Algorithm 1 — the method the initialization paper uses).  They come out per
time step (natural log) and per second (``λ · 1000 / dt`` with dt in ms).

Only Jacobian–vector products are used: the model's analytic ``jacobian_vp``
(rate backend: ``J V = α V + (1-α) W_rec (f'(h) ⊙ V)``) or, for any model with a
one-step map ``step(h, x)``, ``torch.func.jvp`` vmapped over the k columns.  One
step costs O(N²·k) and the QR O(N·k²), so a spectrum costs O(T·N²·k); no N×N
Jacobian is formed (``dense_jacobian_spectrum`` does, as the benchmark's plain
reference).  A spiking model plugs in through the same ``step`` with its
surrogate derivative in place of the spike's; its spectrum is then that of the
surrogate ("pseudo-") Jacobian, not of the discontinuous map.

Models with leading ensemble dimensions (weights ``[E, N, N]``, states
``[E, B, N]``) give one spectrum per member.

A state or tangent vector that stops being finite (float32 overflows near 3e38,
e.g. an unbounded ReLU network above its stability edge) makes the exponents
meaningless: ``lyapunov_spectrum`` then recomputes in float64 and says so in
``note`` (and a warning), or raises ``NonFiniteError`` naming the step where
float64 overflows too.
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from neuro.progress import tqdm

from neuro.contract import require

__all__ = ["LyapunovResult", "LinearMap", "NonFiniteError", "lyapunov_spectrum", "dense_jacobian_spectrum"]


@dataclass
class LyapunovResult:
    """The k leading exponents, per time step (natural log), sorted descending.

    ``exponents [..., k]`` are averaged over the B trajectories (``...`` = the
    model's ensemble dimensions, usually none); ``per_trajectory [..., B, k]``
    keeps them apart; ``running [n, ..., k]`` is the batch-averaged estimate
    after each re-orthonormalization, over ``running_steps [n]`` counted steps
    (for convergence plots).
    """

    exponents: np.ndarray
    per_trajectory: np.ndarray
    running: np.ndarray
    running_steps: np.ndarray
    dt: float | None = None        # ms
    note: str = ""                 # e.g. that the spectrum was recomputed in float64

    @property
    def max_exponent(self):
        """The largest exponent per time step (a float; an array ``[...]`` for ensembles)."""
        top = self.exponents[..., 0]
        return float(top) if top.ndim == 0 else top

    @property
    def per_second(self) -> np.ndarray:
        """Exponents in 1/s: ``λ · 1000 / dt`` (dt in ms)."""
        if self.dt is None:
            raise ValueError("per_second needs the model's dt in ms; this map has none")
        return self.exponents * (1000.0 / self.dt)


class LinearMap:
    """The map ``h → A h (+ B x)`` as a model (oracle tests, linearizations).  Its
    Lyapunov exponents are the sorted ``log|eigenvalues(A)|``."""

    def __init__(self, A, B=None, dt: float | None = None):
        self.A = torch.as_tensor(A)
        if self.A.dim() < 2 or self.A.shape[-1] != self.A.shape[-2]:
            raise ValueError(f"A must be a square matrix [..., N, N], got shape {tuple(self.A.shape)}")
        self.B = None if B is None else torch.as_tensor(B)
        self.dt = dt

    @property
    def n_hidden(self) -> int:
        return self.A.shape[-1]

    def effective(self) -> dict:
        return {"A": self.A} if self.B is None else {"A": self.A, "B": self.B}

    def step(self, h, x=None, params=None):
        p = self.effective() if params is None else params
        out = h @ p["A"].transpose(-1, -2)
        return out if (self.B is None or x is None) else out + x @ p["B"].transpose(-1, -2)

    def jacobian_vp(self, h, V, params=None):
        p = self.effective() if params is None else params
        return torch.matmul(p["A"].unsqueeze(-3), V)


class _CallableModel:
    """A plain function ``f(h)`` or ``f(h, x)`` as a model (its state size comes from h0)."""

    def __init__(self, fn, n_hidden: int):
        self.fn, self.n_hidden = fn, n_hidden
        try:
            n_args = len([p for p in inspect.signature(fn).parameters.values()
                          if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        except (TypeError, ValueError):
            n_args = 2
        self.takes_input = n_args >= 2

    def step(self, h, x=None):
        return self.fn(h, x) if self.takes_input else self.fn(h)


class BoundMap:
    """A model's one-step map and Jacobian–vector product with its parameters fixed once
    (``params``: the model's ``effective()`` weights, cast to ``dtype``; flossing passes
    them with their autograd graph)."""

    def __init__(self, model, dtype=None, params=None, h0=None, inputs=None):
        if hasattr(model, "provides"):      # a compiled network: its declared contract decides
            require("Lyapunov analysis", ("steppable",), model)
        if not hasattr(model, "step"):
            if not callable(model):
                raise ValueError(f"model must expose step(h, x) or be a callable map h -> h_next, "
                                 f"got {type(model).__name__}")
            if h0 is None:
                raise ValueError("a plain callable map needs h0 (its initial state [B, N]) to know its size")
            model = _CallableModel(model, torch.as_tensor(h0).shape[-1])
        self.model = model
        self.n = int(getattr(model, "state_size", model.n_hidden))   # LIF: the packed [u, v(, u_s)] state
        self.has_params = hasattr(model, "effective")
        if self.has_params and params is None:
            params = model.effective()
        if self.has_params:
            ref = next(v for v in params.values() if torch.is_tensor(v))
            self.dtype = dtype or ref.dtype
            self.device = ref.device
            params = {k: (v.to(self.dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
                      for k, v in params.items()}
        else:   # no parameters to cast: compute in the dtype of the given states or inputs
            refs = [torch.as_tensor(a) for a in (h0, inputs) if a is not None]
            refs = [r for r in refs if r.is_floating_point()]
            self.dtype = dtype or (refs[0].dtype if refs else torch.get_default_dtype())
            self.device = refs[0].device if refs else torch.device("cpu")
        self.params = params
        spec = getattr(model, "spec", None)
        self.dt = getattr(spec, "dt", getattr(model, "dt", None))
        self.n_inputs = getattr(spec, "n_inputs", None)

    def step(self, h, x):
        return self.model.step(h, x, self.params) if self.has_params else self.model.step(h, x)

    def jvp(self, h, x, V):
        """``J V`` for tangent vectors ``V [..., B, N, k]``."""
        if hasattr(self.model, "jacobian_vp"):
            return (self.model.jacobian_vp(h, V, self.params) if self.has_params
                    else self.model.jacobian_vp(h, V))
        tangent = lambda v: torch.func.jvp(lambda hh: self.step(hh, x), (h,), (v,))[1]
        return torch.func.vmap(tangent, in_dims=-1, out_dims=-1)(V)

    def zero_input(self, h):
        if self.n_inputs is None:
            return None
        return torch.zeros(h.shape[:-1] + (self.n_inputs,), dtype=h.dtype, device=h.device)


def _check_int(name, value, low, high=None):
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low \
        and (high is None or value <= high)
    if not ok:
        rng = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {rng}, got {value!r}")
    return int(value)


def prepare(m: BoundMap, inputs, steps, batch_size, h0, k, seed):
    """Checked inputs, length T, initial state and random orthonormal tangent vectors ``Q [..., B, N, k]``."""
    gen = torch.Generator().manual_seed(int(seed))
    if inputs is not None:
        inputs = torch.as_tensor(inputs)
        if inputs.dim() < 3:
            raise ValueError(f"inputs must be [T, B, n_in], got shape {tuple(inputs.shape)}")
        inputs = inputs.to(dtype=m.dtype, device=m.device)
        T, batch_size = inputs.shape[0], inputs.shape[-2]
        if T < 1:
            raise ValueError("inputs must have at least one time step")
    else:
        T = _check_int("steps (autonomous run length)", steps, 1) if steps is not None else None
        if T is None:
            raise ValueError("steps must be an integer >= 1 for an autonomous spectrum (no inputs given)")
    batch_size = _check_int("batch_size", batch_size, 1)
    k = m.n if k is None else _check_int("k", k, 1, m.n)
    # random states and tangent vectors are drawn per trajectory [B, ...] and shared by ensemble
    # members, so a member's spectrum equals that of the same network alone
    if h0 is None:
        if inputs is not None and hasattr(m.model, "initial_state"):
            h0 = m.model.initial_state(batch_size)
        elif inputs is not None:
            h0 = torch.zeros(batch_size, m.n)
        else:
            h0 = torch.randn(batch_size, m.n, generator=gen, dtype=torch.float64)
    h0 = torch.as_tensor(h0).to(dtype=m.dtype, device=m.device)
    if h0.dim() == 1:
        h0 = h0.unsqueeze(0)
    if h0.shape[-1] != m.n:
        raise ValueError(f"h0 must be [..., B, {m.n}], got shape {tuple(h0.shape)}")
    with torch.no_grad():   # the state shape after broadcasting against the model's ensemble dims
        x0 = inputs[0] if inputs is not None else m.zero_input(h0)
        shape = torch.broadcast_shapes(h0.shape, m.step(h0, x0).shape)
    h0 = h0.expand(shape).clone()
    Q = torch.linalg.qr(torch.randn(shape[-2:] + (k,), generator=gen, dtype=torch.float64))[0]
    return inputs, T, h0, Q.to(dtype=m.dtype, device=m.device).expand(shape + (k,)).clone()


class NonFiniteError(ValueError):
    """The state or the tangent vectors stopped being finite (overflow); the exponents would be wrong."""

    def __init__(self, message: str, step: int, dtype):
        super().__init__(message)
        self.step, self.dtype = step, dtype


def _check_finite(h, Q, t, dtype) -> None:
    if not bool(torch.isfinite(h).all()):
        what = "state"
    elif not bool(torch.isfinite(Q).all()):
        what = "tangent vectors"
    else:
        return
    hint = "use fewer steps or a lower gain" + ("" if dtype == torch.float64 else ", or dtype=torch.float64")
    raise NonFiniteError(f"the {what} became non-finite at step {t} in {str(dtype).replace('torch.', '')} "
                         f"(the trajectory overflows), so its Lyapunov exponents are not defined; {hint}", t, dtype)


def _log_growth(V):
    Q, R = torch.linalg.qr(V)
    return Q, torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())


def tangent_dynamics(m: BoundMap, inputs, T, h, Q, warmup=0, reortho_every=1, detach_states=True,
                     record=False, progress=False):
    """Run the state and the tangent vectors for T steps; return ``(Σ log|R_ii| [..., B, k], counted
    steps, running estimates, their step counts)``.  The first ``warmup`` steps align Q and are not
    counted.  ``detach_states`` computes the states h_t without autograd (they enter the Jacobians as
    constants); Q keeps its graph whenever grad is enabled."""
    logs = torch.zeros(Q.shape[:-2] + Q.shape[-1:], dtype=Q.dtype, device=Q.device)
    running, running_steps = [], []
    counted = 0
    zero = m.zero_input(h) if inputs is None else None
    for t in tqdm(range(T), disable=not progress, desc="Lyapunov", leave=False, mininterval=1.0):
        x = inputs[t] if inputs is not None else zero
        Q = m.jvp(h, x, Q)
        if detach_states:
            with torch.no_grad():
                h = m.step(h, x)
        else:
            h = m.step(h, x)
        _check_finite(h.detach(), Q.detach(), t, h.dtype)
        if t < warmup:
            if (t + 1) % reortho_every == 0 or t == warmup - 1:
                Q = torch.linalg.qr(Q)[0]
        elif (t + 1 - warmup) % reortho_every == 0 or t == T - 1:
            Q, growth = _log_growth(Q)
            logs = logs + growth
            counted = t + 1 - warmup
            if record:      # Σ log|R_ii| so far; the running means are taken once at the end
                running.append(logs.detach())
                running_steps.append(counted)
    return logs, counted, running, running_steps


def _sorted_desc(a: np.ndarray) -> np.ndarray:
    return -np.sort(-a, axis=-1)


def lyapunov_spectrum(model, inputs=None, k: int | None = None, warmup: int = 0, reortho_every: int = 1,
                      steps: int | None = None, batch_size: int = 1, h0=None, seed: int = 0, dtype=None,
                      progress: bool = False) -> LyapunovResult:
    """The k leading Lyapunov exponents along trajectories of ``model`` (QR method).

    model: anything with ``step(h, x) -> h_next`` (optionally ``jacobian_vp(h, V)``,
        ``effective()``, ``initial_state(B)``, ``spec.dt``), e.g. a rate network, a
        ``LinearMap(A)``, or a plain callable ``f(h)`` / ``f(h, x)`` (then h0 is required).
    inputs: ``[T, B, n_in]`` drive B trajectories (task inputs), from h0 (default: the
        model's initial state).  Without inputs the model runs autonomously (zero input)
        for ``steps`` steps from h0 (default: N(0, 1) states, ``batch_size`` of them).
        With inputs, ``steps`` is ignored.
    k: number of leading exponents (default: all N).
    warmup: the first ``warmup`` of the T steps align the tangent vectors and are not
        counted (the exponents average over the remaining T - warmup steps).
    reortho_every: steps between QR decompositions (1 = every step; larger is cheaper
        and exact in exact arithmetic, but may overflow in strongly chaotic regimes).
    dtype: compute in this dtype (e.g. ``torch.float64``) whatever the model's dtype.
    Returns a ``LyapunovResult`` (exponents per time step, natural log, sorted descending).
    """
    warmup = _check_int("warmup", warmup, 0)
    reortho_every = _check_int("reortho_every", reortho_every, 1)
    given = inputs
    with torch.no_grad():
        m = BoundMap(model, dtype=dtype, h0=h0, inputs=inputs)
        inputs, T, h, Q = prepare(m, inputs, steps, batch_size, h0, k, seed)
        if warmup >= T:
            raise ValueError(f"warmup must be shorter than the trajectory ({T} steps), got {warmup}")
        note = ""
        try:
            logs, counted, running, running_steps = tangent_dynamics(m, inputs, T, h, Q, warmup, reortho_every,
                                                                     record=True, progress=progress)
        except NonFiniteError as e:
            if m.dtype == torch.float64 or not m.dtype.is_floating_point:
                raise
            first = str(m.dtype).replace('torch.', '')
            note = (f"the {first} trajectory overflowed at step {e.step}; "
                    f"the spectrum was recomputed in float64")
            warnings.warn(f"neuro.lyapunov_spectrum: {note}", RuntimeWarning, stacklevel=2)
            m = BoundMap(model, dtype=torch.float64, h0=h0, inputs=given)
            inputs, T, h, Q = prepare(m, given, steps, batch_size, h0, k, seed)
            try:
                logs, counted, running, running_steps = tangent_dynamics(m, inputs, T, h, Q, warmup,
                                                                         reortho_every, record=True,
                                                                         progress=progress)
            except NonFiniteError as e64:
                raise NonFiniteError(f"{e64} (recomputed in float64 after {first} "
                                     f"overflowed at step {e.step})", e64.step, e64.dtype) from None
    per_traj = _sorted_desc((logs / counted).cpu().double().numpy())
    running_steps = np.array(running_steps)
    running = torch.stack(running).cpu().double().numpy()
    running = _sorted_desc(running / running_steps.reshape((-1,) + (1,) * (running.ndim - 1))).mean(-2)
    return LyapunovResult(exponents=per_traj.mean(-2), per_trajectory=per_traj, running=running,
                          running_steps=running_steps, dt=m.dt, note=note)


def dense_jacobian_spectrum(model, inputs=None, k: int | None = None, steps: int | None = None,
                            batch_size: int = 1, h0=None, seed: int = 0, dtype=None) -> np.ndarray:
    """The plain reference: form the full N×N Jacobian of the one-step map every step
    (``torch.func.jacrev``, vmapped over the batch), multiply, QR.  O(T·N³); for the
    benchmark and for cross-checks.  Returns the batch-averaged exponents ``[k]``."""
    with torch.no_grad():
        m = BoundMap(model, dtype=dtype, h0=h0, inputs=inputs)
        inputs, T, h, Q = prepare(m, inputs, steps, batch_size, h0, k, seed)
        if h.dim() != 2:
            raise ValueError("dense_jacobian_spectrum handles states [B, N] only (no ensemble dimensions)")
        logs = torch.zeros(Q.shape[0], Q.shape[-1], dtype=Q.dtype, device=Q.device)
        for t in range(T):
            x = inputs[t] if inputs is not None else m.zero_input(h)
            if x is None:
                J = torch.func.vmap(torch.func.jacrev(lambda hh: m.step(hh[None], None)[0]))(h)
            else:
                J = torch.func.vmap(torch.func.jacrev(lambda hh, xx: m.step(hh[None], xx[None])[0]))(h, x)
            Q, growth = _log_growth(J @ Q)
            logs += growth
            h = m.step(h, x)
    return _sorted_desc((logs / T).cpu().double().numpy()).mean(0)
