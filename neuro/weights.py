"""Seeded weight initialization: one draw of arrays that every backend compiles from.

Conventions (shapes follow ``y = W x``):

- ``W_in``  ``[N, n_in]``, ``W_rec`` ``[N, N]`` (row = postsynaptic), ``W_out`` ``[n_out, N]``;
- ``b`` ``[N]`` hidden bias, ``b_out`` ``[n_out]`` readout bias (zeros when disabled);
- ``mask_*`` fixed 0/1 sparsity masks; ``signs`` ``[N]`` presynaptic Dale signs (+1/-1) or None;
- ``B`` ``[N, n_out]`` fixed random feedback matrix for the readout error, or None.

Under Dale's law the arrays store the *effective* signed weights; backends keep
the magnitudes as parameters and re-apply ``|W| · signs`` (Song, Yang & Wang 2016).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .spec import ConnectionSpec, NetworkSpec, excitatory_count, validate


@dataclass
class Weights:
    W_in: np.ndarray
    W_rec: np.ndarray
    W_out: np.ndarray
    b: np.ndarray
    b_out: np.ndarray
    mask_in: np.ndarray
    mask_rec: np.ndarray
    mask_out: np.ndarray
    signs: np.ndarray | None = None
    B: np.ndarray | None = None
    extra: dict = field(default_factory=dict)   # backend-specific arrays (e.g. LIF slow/fast W)

    ARRAYS = ("W_in", "W_rec", "W_out", "b", "b_out", "mask_in", "mask_rec", "mask_out", "signs", "B")

    def copy(self) -> "Weights":
        return replace(self, **{k: (None if getattr(self, k) is None else getattr(self, k).copy())
                                for k in self.ARRAYS}, extra={k: v.copy() for k, v in self.extra.items()})

    def to_npz(self, path) -> None:
        arrays = {k: getattr(self, k) for k in self.ARRAYS if getattr(self, k) is not None}
        arrays.update({f"extra.{k}": v for k, v in self.extra.items()})
        np.savez(path, **arrays)

    @classmethod
    def from_npz(cls, path) -> "Weights":
        with np.load(path) as z:
            data = {k: z[k] for k in z.files}
        extra = {k[len("extra."):]: data.pop(k) for k in list(data) if k.startswith("extra.")}
        return cls(**data, extra=extra)


def _draw(rng: np.random.Generator, conn: ConnectionSpec, shape: tuple[int, int]) -> np.ndarray:
    fan_in = shape[1]
    if conn.init == "zeros":
        return np.zeros(shape)
    if conn.init == "uniform":
        bound = conn.gain / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)
    if conn.init == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((max(shape), max(shape))))
        q = q * np.sign(np.diag(r))
        return conn.gain * q[: shape[0], : shape[1]]
    # normal: variance gain²/(density·fan_in) before masking → gain²/fan_in after
    return rng.normal(0.0, conn.gain / np.sqrt(conn.density * fan_in), size=shape)


def _mask(rng: np.random.Generator, density: float, shape: tuple[int, int]) -> np.ndarray:
    if density >= 1.0:
        return np.ones(shape)
    return (rng.random(shape) < density).astype(float)


def dale_signs(spec: NetworkSpec) -> np.ndarray:
    """+1 for the first ``round(f_E · N)`` (excitatory) units, -1 for the rest."""
    n_exc = excitatory_count(spec)
    return np.where(np.arange(spec.n_hidden) < n_exc, 1.0, -1.0)


def init_weights(spec: NetworkSpec, seed: int = 0) -> Weights:
    """Draw the network's weights from its spec, reproducibly.

    - Recurrent: ``W_rec ~ N(0, g²/N)`` with g = ``recurrent.gain`` (the gain of the
      initialization paper), times a fixed Bernoulli(density) mask.
    - Input and readout: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (times their gain),
      PyTorch's ``nn.Linear`` default that Yang & Wang's 2020 primer code
      (``RNN + DynamicalSystemAnalysis.ipynb``) relies on; biases likewise when enabled.
    - Dale's law (Song, Yang & Wang 2016): magnitudes ``|W|`` with fixed presynaptic
      signs; inhibitory columns are scaled by ``n_E/n_I`` so every unit's expected
      recurrent input is zero (E/I balance).  Self-connections stay.
    - Random feedback ``B ~ N(0, gain²/n_out)`` when ``feedback.kind == "random"``.
    """
    validate(spec)
    rng = np.random.default_rng(seed)
    n, n_in, n_out = spec.n_hidden, spec.n_inputs, spec.n_outputs

    W_in = _draw(rng, spec.input, (n, n_in))
    W_rec = _draw(rng, spec.recurrent, (n, n))
    W_out = _draw(rng, spec.readout, (n_out, n))
    mask_in = _mask(rng, spec.input.density, W_in.shape)
    mask_rec = _mask(rng, spec.recurrent.density, W_rec.shape)
    mask_out = _mask(rng, spec.readout.density, W_out.shape)
    b = rng.uniform(-1, 1, n) / np.sqrt(n_in) if spec.input.bias else np.zeros(n)
    b_out = rng.uniform(-1, 1, n_out) / np.sqrt(n) if spec.readout.bias else np.zeros(n_out)

    signs = None
    if spec.dale.enabled:
        signs = dale_signs(spec)
        n_exc = int((signs > 0).sum())
        balance = np.where(signs > 0, 1.0, n_exc / (n - n_exc))
        W_rec = np.abs(W_rec) * balance[None, :] * signs[None, :]
        W_in = np.abs(W_in)
        W_out = np.abs(W_out)
        mask_out = mask_out * (signs > 0)[None, :]  # only excitatory units project out (Song et al.)

    extra = {}
    if spec.neuron.model == "lif" and spec.neuron.tau_syn_slow > 0:
        # the slow recurrent current of DePasquale et al. 2016: its own draw, the recurrent mask and signs
        W_slow = _draw(rng, spec.recurrent, (n, n))
        if signs is not None:
            W_slow = np.abs(W_slow) * balance[None, :] * signs[None, :]
        extra["W_slow"] = W_slow * mask_rec

    B = None
    if spec.feedback.kind == "random":
        B = rng.normal(0.0, spec.feedback.gain / np.sqrt(n_out), size=(n, n_out))

    return Weights(W_in=W_in * mask_in, W_rec=W_rec * mask_rec, W_out=W_out * mask_out, b=b, b_out=b_out,
                   mask_in=mask_in, mask_rec=mask_rec, mask_out=mask_out, signs=signs, B=B, extra=extra)
