"""NIR (Neuromorphic Intermediate Representation) export and import — the only module importing ``nir``.

NIR describes neurons by continuous-time ODEs and hides dt; frameworks disagree
on how (snnTorch assumes dt = 1e-4 s and r = τ/dt, Rockpool recovers dt from τ
and r, Norse uses r = 1).  neuro uses snnTorch's convention, so that snnTorch,
the most common client, reads our graphs unchanged:

- a per-step decay d (``du``, ``dv`` of ``neuro.lif_params``; the readout's d_r) is
  written as ``τ = DT / d`` with ``DT = 1e-4 s``, and ``r = τ_mem/DT``, ``w_in = τ_syn/DT``,
  so that a forward-Euler step of length DT reproduces our discrete map exactly:
  ``I ← (1-du) I + W s``, ``v ← (1-dv) v + I + dv·v_leak``;
- our voltage bias b is ``dv · v_leak``; the readout filter is an ``LI`` node
  (``τ = DT/d_r``, ``r = τ/DT``) followed by an ``Affine`` readout;
- the network's real dt (ms) is stored in ``graph.metadata["neuro.dt_ms"]``; a graph
  without it (e.g. from snnTorch) is read with dt = 0.1 ms, snnTorch's assumption.

Graph: Input → Linear(W_in) → CubaLIF ⇄ Linear(W_rec); CubaLIF → LI → Affine(W_out, b_out)
→ Output.  Recurrent input arrives one step late, as in snnTorch's ``RSynaptic`` and
our contract.  NIR has no reset by subtraction, no refractory period, no second
synaptic current and no rate nonlinearity: exporting any of these is refused.
"""
from __future__ import annotations

import math
from pathlib import Path

import nir
import numpy as np

from neuro.lif_params import lif_constants
from neuro.spec import ConnectionSpec, NetworkSpec, NeuronSpec, PopulationSpec
from neuro.weights import Weights

DT = 1e-4           # s: the time step NIR's τ values are expressed against (snnTorch's convention)
DEFAULT_DT_MS = 0.1


def _refuse(spec: NetworkSpec) -> None:
    n = spec.neuron
    problems = {
        n.model != "lif": f"rate neurons (model {n.model!r}): NIR has no rate nonlinearity; compile the spec "
                          f"with neuron model 'lif'",
        n.reset == "subtract": "reset by subtraction (NIR's CubaLIF resets to v_reset)",
        n.refractory > 0: "a refractory period (NIR's CubaLIF has none)",
        n.tau_syn_slow > 0: "a second (slow) synaptic current (NIR's CubaLIF has one current)",
    }
    for bad, what in problems.items():
        if bad:
            raise ValueError(f"cannot export to NIR: {what}")


def export_nir(net, path=None, **_) -> "nir.NIRGraph":
    """The LIF network as a NIR graph; written to ``path`` (HDF5, ``.nir``) when given."""
    spec = net.spec
    _refuse(spec)
    c = lif_constants(spec.neuron, spec.dt)
    w = net.weights()
    n, ones = spec.n_hidden, np.ones(spec.n_hidden)
    tau_syn, tau_mem = DT / c.du * ones, DT / c.dv * ones
    nodes = {
        "input": nir.Input(input_type=np.array([spec.n_inputs])),
        "w_in": nir.Linear(weight=w.W_in),
        "lif": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=w.b / c.dv,
                           v_threshold=spec.neuron.v_th * ones, v_reset=np.zeros(n), w_in=tau_syn / DT),
        "w_rec": nir.Linear(weight=w.W_rec),
        "w_out": nir.Affine(weight=w.W_out, bias=w.b_out),
        "output": nir.Output(output_type=np.array([spec.n_outputs])),
    }
    edges = [("input", "w_in"), ("w_in", "lif")]
    if np.any(w.W_rec != 0):      # a feed-forward network stays a plain chain (what every client reads)
        edges += [("lif", "w_rec"), ("w_rec", "lif")]
    else:
        del nodes["w_rec"]
    if c.d_readout < 1.0:
        tau_r = DT / c.d_readout * ones
        nodes["readout_filter"] = nir.LI(tau=tau_r, r=tau_r / DT, v_leak=np.zeros(n))
        edges += [("lif", "readout_filter"), ("readout_filter", "w_out")]
    else:
        edges += [("lif", "w_out")]
    edges += [("w_out", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={"neuro.dt_ms": float(spec.dt), "neuro.convention": "snntorch-dt-1e-4"})
    if path is not None:
        nir.write(str(path), graph)
    return graph


# -- import ------------------------------------------------------------------------------

def _flatten(graph, prefix=""):
    """Nodes and edges of nested graphs in one namespace; a nested graph's name stands for its
    Input (as an edge target) and its Output (as a source)."""
    nodes, edges = {}, []
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, full + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = prefix + src, prefix + dst
        if isinstance(graph.nodes.get(src), nir.NIRGraph):
            s = s + "." + next(k for k, v in graph.nodes[src].nodes.items() if isinstance(v, nir.Output))
        if isinstance(graph.nodes.get(dst), nir.NIRGraph):
            d = d + "." + next(k for k, v in graph.nodes[dst].nodes.items() if isinstance(v, nir.Input))
        edges.append((s, d))
    return nodes, edges


def _follow(name, nodes, edges, forward=True):
    """Neighbours of a node, looking through Input/Output/Identity pass-through nodes."""
    found = []
    for s, d in edges:
        other = d if forward and s == name else s if not forward and d == name else None
        if other is None:
            continue
        node = nodes[other]
        if isinstance(node, (nir.Input, nir.Output)) and _follow(other, nodes, edges, forward):
            found += _follow(other, nodes, edges, forward)
        else:
            found.append(other)
    return found


def _uniform(values, what: str) -> float:
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if not np.allclose(values, values.flat[0], rtol=1e-12, atol=0):
        raise ValueError(f"cannot import from NIR: per-neuron {what} (neuro takes one value per population)")
    return float(values.flat[0])


def _matrix(node, what: str) -> np.ndarray:
    if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
        raise ValueError(f"cannot import from NIR: the {what} projection has a bias (a constant input "
                         f"current); neuro's bias enters the voltage")
    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise ValueError(f"cannot import from NIR: the {what} projection is a {type(node).__name__}, "
                         f"expected Linear or Affine")
    return np.asarray(node.weight, dtype=float)


def _tau_ms(decay: float, dt_ms: float, what: str) -> float:
    if not 0 < decay < 1:
        raise ValueError(f"cannot import from NIR: {what} decays by {decay} per step; needs 0 < d < 1")
    return -dt_ms / math.log1p(-decay)


def load_nir(source, dt: float | None = None, snntorch_reset_delay: bool = False) -> tuple[NetworkSpec, Weights]:
    """Read a NIR graph (path or ``nir.NIRGraph``) of one CubaLIF population into ``(spec, weights)``.

    ``dt`` (ms) overrides the graph's ``neuro.dt_ms`` metadata.  NIR resets at the spike;
    snnTorch simulates its neurons with a one-step reset delay by default (``reset_delay=True``:
    the membrane is zeroed on the step after a spike), which is a one-step refractory period
    in neuro's terms: ``snntorch_reset_delay=True`` reproduces snnTorch's simulation.
    (snnTorch 1.0.0's ``RSynaptic`` with ``reset_delay=False`` does not run.)"""
    graph = source if isinstance(source, nir.NIRGraph) else nir.read(str(Path(source)))
    nodes, edges = _flatten(graph)
    lifs = [k for k, v in nodes.items() if isinstance(v, nir.CubaLIF)]
    if len(lifs) != 1:
        others = sorted({type(v).__name__ for v in nodes.values()})
        raise ValueError(f"cannot import from NIR: neuro reads one recurrent CubaLIF population, found "
                         f"{len(lifs)} CubaLIF nodes (node types: {others})")
    name, lif = lifs[0], nodes[lifs[0]]
    dt_ms = float(dt or graph.metadata.get("neuro.dt_ms", DEFAULT_DT_MS)) if hasattr(graph, "metadata") \
        else float(dt or DEFAULT_DT_MS)
    du, dv = DT / _uniform(lif.tau_syn, "tau_syn"), DT / _uniform(lif.tau_mem, "tau_mem")
    if _uniform(lif.v_reset, "v_reset") != 0:
        raise ValueError("cannot import from NIR: v_reset must be 0 (neuro resets to zero)")
    # gains NIR puts on the current (w_in·DT/τ_syn) and on the voltage (r·DT/τ_mem), folded into the weights
    gain = (np.asarray(lif.w_in, float) * DT / np.asarray(lif.tau_syn, float)) * \
        (np.asarray(lif.r, float) * DT / np.asarray(lif.tau_mem, float))
    preds = _follow(name, nodes, edges, forward=False)
    rec = [p for p in preds if name in _follow(p, nodes, edges, forward=False)]
    inp = [p for p in preds if p not in rec]
    if len(rec) > 1 or len(inp) != 1:
        raise ValueError(f"cannot import from NIR: expected one input and at most one recurrent projection "
                         f"into {name!r}, found inputs {inp} and recurrent {rec}")
    W_in = gain[:, None] * _matrix(nodes[inp[0]], "input")
    W_rec = gain[:, None] * _matrix(nodes[rec[0]], "recurrent") if rec else np.zeros((len(gain), len(gain)))
    after = [s for s in _follow(name, nodes, edges) if s not in rec]
    if len(after) != 1:
        raise ValueError(f"cannot import from NIR: expected one readout path from {name!r}, found {after}")
    tau_readout, readout_gain = 0.0, 1.0
    node = nodes[after[0]]
    if isinstance(node, nir.LI):
        d_r = DT / _uniform(node.tau, "readout tau")
        readout_gain = _uniform(np.asarray(node.r) * DT / np.asarray(node.tau), "readout gain")
        tau_readout = _tau_ms(d_r, dt_ms, "the readout filter")
        nxt = _follow(after[0], nodes, edges)
        node = nodes[nxt[0]] if len(nxt) == 1 else None
    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise ValueError("cannot import from NIR: the readout must be a Linear/Affine node (after an optional LI)")
    W_out = readout_gain * np.asarray(node.weight, float)
    b_out = np.asarray(node.bias, float) if isinstance(node, nir.Affine) else np.zeros(W_out.shape[0])
    b = dv * np.asarray(lif.v_leak, float) * np.ones(W_rec.shape[0])
    n, n_in, n_out = W_rec.shape[0], W_in.shape[1], W_out.shape[0]
    neuron = NeuronSpec(model="lif", tau_syn=_tau_ms(du, dt_ms, "the synaptic current"),
                        tau_mem=_tau_ms(dv, dt_ms, "the membrane"), v_th=_uniform(lif.v_threshold, "v_threshold"),
                        reset="zero", refractory=dt_ms if snntorch_reset_delay else 0.0, tau_readout=tau_readout)
    spec = NetworkSpec(name="nir_import", dt=dt_ms, n_inputs=n_in, n_outputs=n_out,
                       populations=[PopulationSpec(name="hidden", size=n, neuron=neuron)],
                       input=ConnectionSpec(init="uniform", bias=bool(np.any(b != 0))),
                       recurrent=ConnectionSpec(init="normal"),
                       readout=ConnectionSpec(init="uniform", bias=bool(np.any(b_out != 0))))
    weights = Weights(W_in=W_in, W_rec=W_rec, W_out=W_out, b=b, b_out=b_out, mask_in=np.ones_like(W_in),
                      mask_rec=np.ones_like(W_rec), mask_out=np.ones_like(W_out))
    return spec, weights
