"""Brian2 as the reference simulator for neuro's LIF networks (the only module importing brian2).

``neuro.export(net, "brian2")`` returns a ``Brian2Model`` whose ``run(inputs)`` builds a
Brian2 network per trial and returns the same ``Trajectory`` as the other backends.
Brian2 integrates ODEs; our discretization (``neuro/lif_params.py``) is a map, so the
neurons carry no differential equations and the map is the group's per-step code:

- ``NeuronGroup`` with dimensionless u, v (, u_s), r, a refractory counter; a
  ``run_regularly`` in the ``groups`` slot applies ``u ← (1-du)u + I_in + I_rec``,
  ``v ← (1-dv)v + u + b`` (held at 0 while refractory) and ``r ← (1-d_r) r``;
- threshold ``v > v_th`` (strict), reset ``v = 0`` (or ``v -= v_th``), ``r += 1``;
- recurrent ``Synapses`` with the trained weights, ``on_pre: I_rec_post += w``: Brian2
  propagates spikes in the ``synapses`` slot after thresholds, so they act on the next
  step — exactly our "every projection delivers the previous step's spikes";
- the external input enters as a ``TimedArray`` of input currents ``W_in x[t]``.

The schedule is Brian2's default (groups → thresholds → synapses → resets), so spikes
match the LIF backend exactly (up to the order of floating-point sums, which a test
bounds).  Tests use the numpy code-generation target; the benchmark uses Cython.
"""
from __future__ import annotations

import numpy as np
import torch

import brian2 as b2

from neuro.lif_params import lif_constants
from neuro.trajectory import Trajectory


class Brian2Model:
    def __init__(self, net, codegen: str = "numpy"):
        if net.spec.neuron.model != "lif":
            raise ValueError(f"cannot export to Brian2: rate neurons (model {net.spec.neuron.model!r}); "
                             f"compile the spec with neuron model 'lif'")
        self.spec = net.spec
        self.w = net.weights()
        self.c = lif_constants(net.spec.neuron, net.spec.dt)
        self.codegen = codegen

    def _network(self, currents: np.ndarray):
        spec, c, w = self.spec, self.c, self.w
        n = spec.n_hidden
        slow = c.du_slow > 0
        dt = spec.dt * b2.ms
        stim = b2.TimedArray(currents, dt=dt)
        eqs = "u : 1\nv : 1\nr : 1\nI_rec : 1\nref : 1\nb : 1" + ("\nu_slow : 1\nI_slow : 1" if slow else "")
        step = (f"u = {1 - c.du!r} * u + stim(t, i) + I_rec\nI_rec = 0\n"
                + (f"u_slow = {1 - c.du_slow!r} * u_slow + I_slow\nI_slow = 0\n" if slow else "")
                + f"v = ({1 - c.dv!r} * v + u + b{' + u_slow' if slow else ''}) * int(ref <= 0)\n"
                + "ref = ref - 1\n"
                + f"r = {1 - c.d_readout!r} * r")
        reset = ("v = 0" if spec.neuron.reset == "zero" else f"v = v - {spec.neuron.v_th!r}") \
            + f"\nr = r + 1\nref = {c.refractory_steps}"
        group = b2.NeuronGroup(n, eqs, threshold=f"v > {spec.neuron.v_th!r}", reset=reset, dt=dt,
                               namespace={"stim": stim})
        group.b = w.b
        group.run_regularly(step, when="groups", dt=dt)
        objects = [group]
        for name, target, W in (("rec", "I_rec", w.W_rec),) + ((("slow", "I_slow", w.extra["W_slow"]),) if slow else ()):
            post, pre = np.nonzero(W)
            if len(pre):
                syn = b2.Synapses(group, group, "w : 1", on_pre=f"{target}_post += w", dt=dt, name=f"syn_{name}*")
                syn.connect(i=pre, j=post)
                syn.w = W[post, pre]
                objects.append(syn)
        spikes = b2.SpikeMonitor(group)
        volt = b2.StateMonitor(group, "v", record=True, when="thresholds", dt=dt)
        filt = b2.StateMonitor(group, "r", record=True, when="end", dt=dt)
        objects += [spikes, volt, filt]
        return b2.Network(*objects), spikes, volt, filt

    def set_codegen(self):
        """Select this model's code-generation target; returns the brian2 module (for benchmarks)."""
        b2.prefs.codegen.target = self.codegen
        return b2

    def run(self, inputs) -> Trajectory:
        """Simulate each trial of ``inputs [T, B, n_in]``; returns float64 tensors ``[T, B, ·]``."""
        self.set_codegen()
        x = np.asarray(inputs.detach().cpu() if torch.is_tensor(inputs) else inputs, dtype=float)
        T, B = x.shape[:2]
        n = self.spec.n_hidden
        spikes = np.zeros((T, B, n))
        volts = np.zeros((T, B, n))
        rates = np.zeros((T, B, n))
        for trial in range(B):
            network, mon, volt, filt = self._network(x[:, trial] @ self.w.W_in.T)
            network.run(T * self.spec.dt * b2.ms)
            steps = np.round(np.asarray(mon.t / b2.ms) / self.spec.dt).astype(int)
            spikes[steps, trial, np.asarray(mon.i)] = 1.0
            volts[:, trial] = np.asarray(volt.v).T
            rates[:, trial] = np.asarray(filt.r).T
        outputs = rates @ self.w.W_out.T + self.w.b_out
        t = lambda a: torch.as_tensor(a)
        return Trajectory(states=t(volts), rates=t(rates), outputs=t(outputs), spikes=t(spikes))


def export_brian2(net, path=None, codegen: str = "numpy", **_) -> Brian2Model:
    """A Brian2 model of a LIF network (``path`` is unused: Brian2 networks live in Python)."""
    return Brian2Model(net, codegen=codegen)
