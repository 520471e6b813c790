"""PyNN export (the route to SpiNNaker via sPyNNaker and to BrainScaleS) — the only module importing PyNN.

``neuro.export(net, "pynn")`` returns a ``PyNNModel``: ``build(sim, currents)`` creates the network in
PyNN's API on any simulator module (``pyNN.brian2``, ``pyNN.nest``, ``pyNN.spiNNaker``…),
``run(inputs)`` simulates it on PyNN's Brian2 backend and returns a ``Trajectory``, and
``write_script(path)`` writes a standalone PyNN script holding the weights.

Parameter map (our unit of voltage is 1 mV, of current 1 nA; c_m = τ_mem·dv, so that a current u held
for one step moves v exactly as our map does, and a constant current gives our steady state):

| neuro (per step, ``neuro/lif_params.py``) | PyNN ``IF_curr_exp`` | value |
|---|---|---|
| τ_mem, decay ``1 - dv = e^(-dt/τ_mem)`` | ``tau_m`` (ms) | τ_mem |
| τ_syn, decay ``1 - du = e^(-dt/τ_syn)`` | ``tau_syn_E``, ``tau_syn_I`` (ms) | τ_syn |
| ``v ← (1-dv) v + u``: a current held for a step moves v by u | ``cm`` (nF) | τ_mem·dv = τ_mem(1 - e^(-dt/τ_mem)) ≈ dt |
| threshold ``v > v_th``, reset to 0 | ``v_thresh``, ``v_reset``, ``v_rest`` (mV) | v_th, 0, 0 |
| (no refractory period: refused) | ``tau_refrac`` (ms) | 0 |
| voltage bias b per step | ``i_offset`` (nA) | b |
| W_rec (row = post), s[t-1] acts at step t | ``Projection`` weights (nA), delay | W_rec, dt |
| W_in x[t] into u | ``StepCurrentSource`` per neuron (nA) | the input current filtered by τ_syn |
| Dale's law: signs of presynaptic columns | separate ``exc``/``inh`` populations, receptor types | |

What PyNN's continuous-time neuron does differently: it integrates the linear ODEs
``τ_m dv/dt = v_rest - v + τ_m I/c_m``, ``τ_syn dI/dt = -I`` exactly between events, so the synaptic
current decays *within* a step while our map adds the step's current to v whole (exponential
Euler); the difference is O(dt/τ_syn) per step and vanishes as dt → 0 (the tests bound per-neuron
spike times at dt = 0.1 ms).  Reset by subtraction, a slow second current and rate neurons have no
``IF_curr_exp`` counterpart, and a refractory period is not validated: all are refused by name.
"""
from __future__ import annotations

import numpy as np
import torch

import pyNN
import pyNN.brian2 as pynn_brian2

from neuro.lif_params import lif_constants
from neuro.trajectory import Trajectory


class PyNNExportError(ValueError):
    """A network PyNN's IF_curr_exp cannot express; the message names the feature."""


def _refuse(spec) -> None:
    n = spec.neuron
    problems = {
        n.model != "lif": f"rate neurons (model {n.model!r}): PyNN's IF_curr_exp spikes; compile the spec with "
                          f"neuron model 'lif'",
        n.reset == "subtract": "reset by subtraction (IF_curr_exp resets to v_reset)",
        n.refractory > 0: "a refractory period (IF_curr_exp's tau_refrac clamps v for a continuous time, "
                          "not validated against our whole-step count)",
        n.tau_syn_slow > 0: "a second (slow) synaptic current (IF_curr_exp has one current per receptor, "
                            "both with the fast time constant here)",
    }
    for bad, what in problems.items():
        if bad:
            raise PyNNExportError(f"cannot export to PyNN: {what}")


class PyNNModel:
    def __init__(self, net, codegen: str = "numpy"):
        _refuse(net.spec)
        self.codegen = codegen
        self.spec = net.spec
        self.w = net.weights()
        self.c = lif_constants(net.spec.neuron, net.spec.dt)

    # -- the parameter map --------------------------------------------------------------
    def cell_parameters(self) -> dict:
        n, dt = self.spec.neuron, self.spec.dt
        return {"tau_m": n.tau_mem, "tau_syn_E": n.tau_syn, "tau_syn_I": n.tau_syn, "cm": n.tau_mem * self.c.dv,
                "v_rest": 0.0, "v_reset": 0.0, "v_thresh": n.v_th, "tau_refrac": 0.0}

    def groups(self) -> dict[str, np.ndarray]:
        """Neuron indices of each population: ``exc``/``inh`` under Dale's law, else one ``hidden``."""
        N = self.spec.n_hidden
        if self.w.signs is not None and self.spec.dale.enabled:
            signs = np.asarray(self.w.signs)
            return {"exc": np.flatnonzero(signs > 0), "inh": np.flatnonzero(signs < 0)}
        return {"hidden": np.arange(N)}

    def input_currents(self, inputs) -> np.ndarray:
        """``[T, N]`` input-driven synaptic current of one trial: W_in x filtered by τ_syn (nA)."""
        a = np.asarray(inputs, float) @ self.w.W_in.T
        u = np.zeros_like(a)
        for t in range(a.shape[0]):
            u[t] = (1 - self.c.du) * (u[t - 1] if t else 0.0) + a[t]
        return u

    def connections(self) -> list[tuple[str, str, str, list]]:
        """(pre population, post population, receptor, [(i, j, weight nA, delay ms)]) for each Projection."""
        dt, W = self.spec.dt, self.w.W_rec
        groups = self.groups()
        out = []
        for pre, pre_idx in groups.items():
            for post, post_idx in groups.items():
                block = W[np.ix_(post_idx, pre_idx)]
                for receptor, part in (("excitatory", block > 0), ("inhibitory", block < 0)):
                    j, i = np.nonzero(part)
                    if len(i):
                        out.append((pre, post, receptor,
                                    [(int(a), int(b), float(block[b, a]), dt) for a, b in zip(i, j)]))
        return out

    # -- building and running -----------------------------------------------------------
    def build(self, sim, currents: np.ndarray | None = None):
        """Create the populations, projections and (for ``currents`` ``[T, N]``) input current sources in
        the PyNN simulator module ``sim`` (after ``sim.setup``); returns the populations by name."""
        params = self.cell_parameters()
        pops = {}
        for name, idx in self.groups().items():
            pop = sim.Population(len(idx), sim.IF_curr_exp(**params), label=name)
            pop.set(i_offset=self.w.b[idx])
            pop.initialize(v=0.0)
            pops[name] = pop
        for pre, post, receptor, conns in self.connections():
            sim.Projection(pops[pre], pops[post], sim.FromListConnector(conns, column_names=["weight", "delay"]),
                           sim.StaticSynapse(), receptor_type=receptor)
        if currents is not None:
            T, dt = currents.shape[0], self.spec.dt
            times = dt * np.arange(T)
            for name, idx in self.groups().items():
                for k, neuron in enumerate(idx):
                    src = sim.StepCurrentSource(times=times, amplitudes=currents[:, neuron])
                    src.inject_into(pops[name][k:k + 1])
        return pops

    def run(self, inputs) -> Trajectory:
        """Simulate every trial of ``inputs`` ``[T, B, n_in]`` on PyNN's Brian2 backend."""
        x = inputs.detach().cpu().numpy() if torch.is_tensor(inputs) else np.asarray(inputs)
        T, B, _ = x.shape
        N, dt = self.spec.n_hidden, self.spec.dt
        spikes = np.zeros((T, B, N))
        for b in range(B):
            sim = pynn_brian2
            sim.setup(timestep=dt, min_delay=dt)
            sim.simulator.brian2.prefs.codegen.target = self.codegen
            pops = self.build(sim, self.input_currents(x[:, b]))
            for pop in pops.values():
                pop.record("spikes")
            sim.run(T * dt)
            for name, idx in self.groups().items():
                for k, train in enumerate(pops[name].get_data("spikes").segments[0].spiketrains):
                    steps = np.rint(np.asarray(train.magnitude) / dt).astype(int)
                    spikes[steps[(steps >= 0) & (steps < T)], b, idx[k]] = 1.0
            sim.end()
        s = torch.as_tensor(spikes)
        r = torch.zeros_like(s)
        d = self.c.d_readout
        for t in range(T):
            r[t] = (1 - d) * (r[t - 1] if t else 0) + s[t]
        out = r @ torch.as_tensor(self.w.W_out).T + torch.as_tensor(self.w.b_out)
        return Trajectory(states=None, rates=r, outputs=out, spikes=s)

    def write_script(self, path) -> None:
        """A standalone PyNN script: the parameter table, the weights and the network (no input).
        ``python FILE [SIMULATOR [DURATION_MS]]`` builds it on ``SIMULATOR`` (``pyNN.brian2`` unless given)
        and, for a duration, runs it and prints each population's spike count."""
        lines = [f'"""{self.spec.name}: {self.spec.n_hidden} IF_curr_exp neurons exported by neuro '
                 f'(PyNN {pyNN.__version__}); dt = {self.spec.dt} ms."""',
                 "import sys", "import importlib",
                 "sim = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else 'pyNN.brian2')",
                 f"sim.setup(timestep={self.spec.dt!r}, min_delay={self.spec.dt!r})",
                 f"params = {self.cell_parameters()!r}", "pops = {}"]
        for name, idx in self.groups().items():
            lines += [f"pops[{name!r}] = sim.Population({len(idx)}, sim.IF_curr_exp(**params), label={name!r})",
                      f"pops[{name!r}].set(i_offset={[float(v) for v in self.w.b[idx]]!r})",
                      f"pops[{name!r}].initialize(v=0.0)"]
        for pre, post, receptor, conns in self.connections():
            lines.append(f"sim.Projection(pops[{pre!r}], pops[{post!r}], sim.FromListConnector({conns!r}, "
                         f"column_names=['weight', 'delay']), sim.StaticSynapse(), receptor_type={receptor!r})")
        lines += ["for pop in pops.values():", "    pop.record('spikes')",
                  "duration = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0   # ms; 0: build only",
                  "if duration:",
                  "    sim.run(duration)",
                  "    for name, pop in pops.items():",
                  "        n = sum(len(t) for t in pop.get_data('spikes').segments[0].spiketrains)",
                  "        print(f'{name}: {pop.size} neurons, {n} spikes in {duration:g} ms')",
                  "sim.end()"]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")


def export_pynn(net, path=None, codegen: str = "numpy", **_) -> PyNNModel:
    """``net`` as a PyNN network (``PyNNModel``); a standalone PyNN script is written to ``path`` when given."""
    model = PyNNModel(net, codegen)
    if path is not None:
        model.write_script(path)
    return model
