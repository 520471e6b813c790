"""Lava export (lava-nc 0.10.0) — the only module importing lava.

``neuro.compile(spec, backend="lava", weights=w)`` or ``neuro.export(net, "lava")`` builds,
per trial, Lava processes — a ``RingBuffer`` source of the input currents ``W_in x[t]``
wired straight into the ``LIF`` population's ``a_in``, a ``Dense`` recurrent projection, a
``RingBuffer`` sink of the spikes — and runs them in Lava's Loihi-style simulator
(``Loihi2SimCfg``, floating point).  Lava's float LIF is neuro's discretization exactly
(``u ← u(1-du) + a_in``, ``v ← v(1-dv) + u + bias_mant``, spike if ``v > vth``, ``v ← 0``), and
``Dense`` delivers the previous step's spikes, as our recurrent projection does; the input
currents arrive in their own step.  Spikes are identical to the LIF backend's (tested over
1000 steps).  The readout (filtered spikes → ``W_out``) is computed from the recorded spikes.

Lava cannot express (and the export refuses, naming it): rate neurons, reset by
subtraction, a slow second current, refractoriness (``LIF`` has none), and plasticity
during the run.  Fixed point (``Loihi2SimCfg(select_tag="fixed_pt")``, 8-bit weights
with exponents) is not implemented yet.

Python 3.11: lava's ``var_model.py`` uses ``ByteEncoder()`` instances as dataclass
defaults, which 3.11 rejects; an import hook serves that module with
``field(default_factory=ByteEncoder)`` instead, leaving the installed files untouched.
Importing lava sets the multiprocessing start method to ``fork``.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import re
import sys

import numpy as np
import torch

from neuro.lif_params import lif_constants
from neuro.trajectory import Trajectory

_PATCHED = "lava.magma.compiler.var_model"


class _VarModelLoader(importlib.machinery.SourceFileLoader):
    """Compiles var_model.py from its patched source (never from a cached .pyc of the original)."""

    def get_code(self, fullname):
        source = self.get_data(self.path).decode()
        source = re.sub(r"(\w+): ByteEncoder = ByteEncoder\(\)",
                        r"\1: ByteEncoder = field(default_factory=ByteEncoder)", source)
        source = source.replace("from dataclasses import dataclass, InitVar",
                                "from dataclasses import dataclass, InitVar, field")
        return compile(source, self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _PATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        return importlib.util.spec_from_file_location(name, spec.origin,
                                                      loader=_VarModelLoader(name, spec.origin))


def _import_lava():
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    current = multiprocessing.get_start_method(allow_none=True)
    if current not in (None, "fork"):
        raise RuntimeError(f"lava needs the 'fork' multiprocessing start method, but {current!r} is set")
    if current is None:
        multiprocessing.set_start_method("fork")
    original = multiprocessing.set_start_method
    multiprocessing.set_start_method = lambda *a, **k: None      # lava sets it again on import
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF
    finally:
        multiprocessing.set_start_method = original
    return RunSteps, Loihi2SimCfg, Dense, Sink, Source, LIF


def _refuse(spec) -> None:
    n = spec.neuron
    problems = {
        n.model != "lif": f"rate neurons (model {n.model!r}) — Lava runs spiking LIF neurons; compile a spec "
                          f"with neuron model 'lif'",
        n.reset == "subtract": "reset by subtraction (Lava's LIF resets v to 0)",
        n.tau_syn_slow > 0: "a slow second synaptic current (Lava's LIF has one current)",
        n.refractory > 0: "a refractory period (Lava's LIF has none)",
    }
    for bad, what in problems.items():
        if bad:
            raise ValueError(f"cannot export to Lava: {what}")


class LavaNetwork:
    """A LIF network run in Lava's simulator; ``run(inputs)`` returns a ``Trajectory``."""

    backend = "lava"

    def __init__(self, spec, weights, precision: str = "float", dtype=torch.float64, **_):
        _refuse(spec)
        if precision != "float":
            raise NotImplementedError("Lava fixed point (Loihi2SimCfg 'fixed_pt') is not implemented yet; "
                                      "use precision='float'")
        self.spec, self.w, self.dtype = spec, weights, dtype
        self.c = lif_constants(spec.neuron, spec.dt)

    def _trial(self, x: np.ndarray) -> np.ndarray:
        RunSteps, Loihi2SimCfg, Dense, Sink, Source, LIF = _import_lava()
        n, T = self.spec.n_hidden, x.shape[0]
        source = Source(data=(x @ self.w.W_in.T).T)          # input currents W_in x[t], [n, T]
        w_rec = Dense(weights=self.w.W_rec)
        lif = LIF(shape=(n,), du=self.c.du, dv=self.c.dv, vth=self.spec.neuron.v_th, bias_mant=self.w.b,
                  u=np.zeros(n), v=np.zeros(n))
        sink = Sink(shape=(n,), buffer=T)
        source.s_out.connect(lif.a_in)
        lif.s_out.connect(w_rec.s_in)
        w_rec.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        try:
            lif.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
            spikes = np.asarray(sink.data.get()).T             # [T, n]
        finally:
            lif.stop()
        return spikes

    def run(self, inputs) -> Trajectory:
        x = np.asarray(inputs.detach().cpu() if torch.is_tensor(inputs) else inputs, dtype=float)
        spikes = np.stack([self._trial(x[:, b]) for b in range(x.shape[1])], 1).astype(float)
        rates = np.zeros_like(spikes)
        r = np.zeros(spikes.shape[1:])
        for t in range(spikes.shape[0]):
            r = (1 - self.c.d_readout) * r + spikes[t]
            rates[t] = r
        outputs = rates @ self.w.W_out.T + self.w.b_out
        t = lambda a: torch.as_tensor(a, dtype=self.dtype)
        return Trajectory(states=t(np.full_like(spikes, np.nan)), rates=t(rates), outputs=t(outputs),
                          spikes=t(spikes), extra={"note": "Lava's membrane is not recorded"})


def export_lava(net, path=None, precision: str = "float", **_) -> LavaNetwork:
    """The trained LIF network ``net`` as a ``LavaNetwork``."""
    return LavaNetwork(net.spec, net.weights(), precision=precision)
