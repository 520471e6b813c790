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

import base64
import io
from pathlib import Path

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
    """A Brian2 model of a LIF network; with ``path``, also a standalone Brian2 script there
    (``write_brian2_script``: numpy and brian2 are all it needs where it runs)."""
    if path is not None:
        write_brian2_script(net, path)
    return Brian2Model(net, codegen=codegen)


# -- Brian2 script -----------------------------------------------------------------------------

def _arrays_b64(**arrays) -> str:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return base64.b64encode(buf.getvalue()).decode()


_SCRIPT = '''"""{name}: a LIF network exported by neuro to Brian2 (standalone: needs numpy and brian2 only).

    python {file} --inputs x.npy --out result.npz     # x: [T, B, {n_in}] input array
    python {file} --steps 500 --out result.npz        # T steps without input

dt = {dt!r} ms, {n} neurons.  Each step (Brian2's schedule: groups, thresholds, synapses, resets):
u <- (1-du) u + W_in x[t] + W_rec s[t-1];  v <- (1-dv) v + u + b (0 while refractory);
spike when v > v_th, then {reset_doc}; readout y = W_out r + b_out with r the spikes filtered by (1-d_r).
The result holds spikes, v (before reset) and r, each [T, B, N], and outputs [T, B, {n_out}].
"""
import argparse
import base64
import io

import brian2 as b2
import numpy as np

DT_MS = {dt!r}
V_TH = {v_th!r}
DU, DV, DU_SLOW, D_READOUT = {du!r}, {dv!r}, {du_slow!r}, {d_readout!r}
REFRACTORY_STEPS = {refractory}
RESET = {reset!r}
WEIGHTS = np.load(io.BytesIO(base64.b64decode(
    "{weights}")))


def network(currents):
    n = WEIGHTS["b"].shape[0]
    slow = DU_SLOW > 0
    dt = DT_MS * b2.ms
    stim = b2.TimedArray(currents, dt=dt)
    eqs = "u : 1\\nv : 1\\nr : 1\\nI_rec : 1\\nref : 1\\nb : 1" + ("\\nu_slow : 1\\nI_slow : 1" if slow else "")
    step = (f"u = {{1 - DU!r}} * u + stim(t, i) + I_rec\\nI_rec = 0\\n"
            + (f"u_slow = {{1 - DU_SLOW!r}} * u_slow + I_slow\\nI_slow = 0\\n" if slow else "")
            + f"v = ({{1 - DV!r}} * v + u + b{{' + u_slow' if slow else ''}}) * int(ref <= 0)\\n"
            + "ref = ref - 1\\n"
            + f"r = {{1 - D_READOUT!r}} * r")
    reset = ("v = 0" if RESET == "zero" else f"v = v - {{V_TH!r}}") + f"\\nr = r + 1\\nref = {{REFRACTORY_STEPS}}"
    group = b2.NeuronGroup(n, eqs, threshold=f"v > {{V_TH!r}}", reset=reset, dt=dt, namespace={{"stim": stim}})
    group.b = WEIGHTS["b"]
    group.run_regularly(step, when="groups", dt=dt)
    objects = [group]
    projections = [("rec", "I_rec", WEIGHTS["W_rec"])] + ([("slow", "I_slow", WEIGHTS["W_slow"])] if slow else [])
    for name, target, W in projections:
        post, pre = np.nonzero(W)
        if len(pre):
            syn = b2.Synapses(group, group, "w : 1", on_pre=f"{{target}}_post += w", dt=dt, name=f"syn_{{name}}*")
            syn.connect(i=pre, j=post)
            syn.w = W[post, pre]
            objects.append(syn)
    spikes = b2.SpikeMonitor(group)
    volt = b2.StateMonitor(group, "v", record=True, when="thresholds", dt=dt)
    filt = b2.StateMonitor(group, "r", record=True, when="end", dt=dt)
    return b2.Network(*objects, spikes, volt, filt), spikes, volt, filt


def run(x):
    """Simulate each trial of x [T, B, n_in]; returns spikes, v, r [T, B, N] and outputs [T, B, n_out]."""
    T, B = x.shape[:2]
    n = WEIGHTS["b"].shape[0]
    spikes, volts, rates = np.zeros((T, B, n)), np.zeros((T, B, n)), np.zeros((T, B, n))
    for trial in range(B):
        net, mon, volt, filt = network(x[:, trial] @ WEIGHTS["W_in"].T)
        net.run(T * DT_MS * b2.ms)
        steps = np.round(np.asarray(mon.t / b2.ms) / DT_MS).astype(int)
        spikes[steps, trial, np.asarray(mon.i)] = 1.0
        volts[:, trial] = np.asarray(volt.v).T
        rates[:, trial] = np.asarray(filt.r).T
    return {{"spikes": spikes, "v": volts, "r": rates, "outputs": rates @ WEIGHTS["W_out"].T + WEIGHTS["b_out"]}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--inputs", help=".npy array of inputs [T, B, {n_in}]")
    p.add_argument("--steps", type=int, default=500, help="without --inputs: T steps of zero input, one trial")
    p.add_argument("--out", default="{stem}_result.npz", help="where to save the result (.npz)")
    p.add_argument("--codegen", default="numpy", help="Brian2 code generation target (numpy, cython)")
    a = p.parse_args()
    b2.prefs.codegen.target = a.codegen
    x = np.load(a.inputs).astype(float) if a.inputs else np.zeros((a.steps, 1, {n_in}))
    result = run(x)
    np.savez(a.out, **result)
    rate = result["spikes"].mean() * 1000.0 / DT_MS
    print(f"{{x.shape[0]}} steps x {{x.shape[1]}} trials: {{int(result['spikes'].sum())}} spikes "
          f"({{rate:.1f}} Hz per neuron); saved to {{a.out}}")


if __name__ == "__main__":
    main()
'''


def brian2_script(net) -> str:
    """The text of a standalone Brian2 script for the LIF network ``net`` (see the module docstring)."""
    spec = net.spec
    if spec.neuron.model != "lif":
        raise ValueError(f"cannot export to Brian2: rate neurons (model {spec.neuron.model!r}); compile the spec "
                         f"with neuron model 'lif'")
    c = lif_constants(spec.neuron, spec.dt)
    w = net.weights()
    arrays = {k: np.asarray(getattr(w, k), dtype=np.float64) for k in ("W_in", "W_rec", "W_out", "b", "b_out")}
    if c.du_slow > 0:
        arrays["W_slow"] = np.asarray(w.extra["W_slow"], dtype=np.float64)
    b64 = _arrays_b64(**arrays)
    wrapped = '"\n    "'.join(b64[i:i + 100] for i in range(0, len(b64), 100))
    return _SCRIPT.format(name=spec.name, file="SCRIPT.py", stem="network", n_in=spec.n_inputs,
                          n_out=spec.n_outputs, n=spec.n_hidden, dt=float(spec.dt), v_th=float(spec.neuron.v_th),
                          du=c.du, dv=c.dv, du_slow=c.du_slow, d_readout=c.d_readout,
                          refractory=c.refractory_steps, reset=spec.neuron.reset,
                          reset_doc="v = 0" if spec.neuron.reset == "zero" else "v -= v_th",
                          weights=wrapped)


def write_brian2_script(net, path) -> Path:
    path = Path(path)
    text = brian2_script(net).replace("SCRIPT.py", path.name).replace("network_result.npz",
                                                                      f"{path.stem}_result.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path

