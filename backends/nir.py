"""NIR (Neuromorphic Intermediate Representation) export and import — the only module importing ``nir``.

NIR describes neurons in continuous time.  A ``CubaLIF`` node is

    τ_syn dI/dt = -I + w_in · x(t)
    τ_mem dv/dt = (v_leak - v) + r · I          spike when v > v_threshold, then v ← v_reset

with τ in seconds; the simulation step dt is the consumer's choice.  Our discrete map
(``neuro/lif_params.py``) is that ODE integrated over one step dt with its input held
for the step, each variable exactly (exponential Euler), the current first:

    I[t] = e^(-dt/τ_syn) I[t-1] + (1 - e^(-dt/τ_syn)) w_in x[t]
    v[t] = e^(-dt/τ_mem) v[t-1] + (1 - e^(-dt/τ_mem)) (v_leak + r I[t])

which is neuro's ``u ← (1-du) u + W x``, ``v ← (1-dv) v + u + b`` with ``1 - du = e^(-dt/τ_syn)``,
``1 - dv = e^(-dt/τ_mem)``, ``u = dv·r·I``, ``b = dv·v_leak`` and

    W_neuro = du · dv · r · w_in · W_nir.

Conventions (``convention=``; the graph's metadata names the one it was written in):

- ``"nir"`` (default): the standard above, physical τ = the spec's τ_mem, τ_syn (ms → s).  NIR
  leaves the split of the input gain among ``r``, ``w_in`` and the weights free; we write
  ``r = τ_mem/dt - 1`` and ``W_nir = W/(1-du)``, ``w_in`` the rest, because Rockpool 3.1.0 reads
  a graph's dt as ``τ_mem/(1 + r)`` and adds its inputs before the synaptic decay, so that it
  runs our graphs at our dt with our weights.  Reading needs dt: the ``neuro.dt_ms`` metadata,
  or ``dt=`` (a graph with neither is refused).
- ``"snntorch"``: snnTorch 1.0's private encoding, forward Euler at a fixed 1e-4 s step:
  ``τ = 1e-4 s / d`` for a per-step decay d, ``r = τ_mem/1e-4 s``, ``w_in = τ_syn/1e-4 s``, so that
  snnTorch's ``import_from_nir`` reads our graphs unchanged; the real dt (ms) is in the metadata
  (snnTorch's own graphs carry none: read with dt = 0.1 ms).  A graph without ``neuro.convention``
  whose CubaLIF has exactly snnTorch's ``r`` and ``w_in`` is read this way, with a warning.
- ``"rockpool"`` (reading only): Rockpool 3.1.0's ``to_nir``: its own discrete map
  ``I ← e^(-dt/τ_syn)(I + W x)``, ``v ← e^(-dt/τ_mem) v + I + v_leak``, reset by subtracting the
  threshold, dt encoded as ``r = τ_mem e^(-dt/τ_mem)/dt``.

Which consumers discretize how: Norse 1.1.0's ``from_nir`` integrates the ODE with forward Euler
(``I += dt/τ_syn (w_in x - I)``, ``v += dt/τ_mem (v_leak - v + r I)``) at the dt it is given;
Rockpool 3.1.0 uses exact exponential decays like us (in its convention above, resetting by
subtraction); snnTorch 1.0 is forward Euler at 1e-4 s; Sinabs 3.1.3 has no CubaLIF.  At dt = 1 ms, τ_syn = 5 ms, τ_mem = 20 ms forward Euler decays the
current by 0.8 per step instead of 0.8187 and the membrane by 0.95 instead of 0.9512, and scales
the input by dt/τ = 0.2 and 0.05 instead of 0.1813 and 0.0488: a standard graph run in Norse is
a slightly different network (the README gives the measured spike agreement).

Graph: Input → Linear(W_in) → CubaLIF ⇄ Linear(W_rec); CubaLIF → LI → Affine(W_out, b_out)
→ Output.  Recurrent input arrives one step late, as in snnTorch's ``RSynaptic`` and
our contract.  NIR has no reset by subtraction, no refractory period, no second
synaptic current and no rate nonlinearity: exporting any of these is refused.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import nir
import numpy as np

from neuro.lif_params import lif_constants
from neuro.spec import ConnectionSpec, NetworkSpec, NeuronSpec, PopulationSpec
from neuro.weights import Weights

DT = 1e-4           # s: snnTorch's fixed step, against which its τ values are expressed
SNNTORCH_DT_MS = 0.1
CONVENTIONS = ("nir", "snntorch", "rockpool")
EXPORT_CONVENTIONS = ("nir", "snntorch")


class NIRError(ValueError):
    """A NIR graph neuro cannot read or a network it cannot write; the message names the problem."""


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
            raise NIRError(f"cannot export to NIR: {what}")


def export_nir(net, path=None, convention: str = "nir", **_) -> "nir.NIRGraph":
    """The LIF network as a NIR graph (``convention`` "nir" or "snntorch", see the module doc);
    written to ``path`` (HDF5, ``.nir``) when given."""
    if convention not in EXPORT_CONVENTIONS:
        raise NIRError(f"cannot export to NIR: convention must be one of {EXPORT_CONVENTIONS}, got {convention!r}")
    spec = net.spec
    _refuse(spec)
    c = lif_constants(spec.neuron, spec.dt)
    w = net.weights()
    n, ones = spec.n_hidden, np.ones(spec.n_hidden)
    if convention == "snntorch":
        tau_syn, tau_mem = DT / c.du * ones, DT / c.dv * ones
        r, w_in, W_in, W_rec = tau_mem / DT, tau_syn / DT, w.W_in, w.W_rec
        v_leak = w.b / c.dv
    else:
        dt_s = spec.dt * 1e-3
        tau_syn, tau_mem = spec.neuron.tau_syn * 1e-3 * ones, spec.neuron.tau_mem * 1e-3 * ones
        r = (tau_mem / dt_s - 1) if spec.neuron.tau_mem > spec.dt else ones.copy()
        keep = 1.0 - c.du                       # Rockpool adds inputs before the synaptic decay
        W_in, W_rec = w.W_in / keep, w.W_rec / keep
        w_in = keep / (c.du * c.dv * r)
        v_leak = w.b / c.dv
    nodes = {
        "input": nir.Input(input_type=np.array([spec.n_inputs])),
        "w_in": nir.Linear(weight=W_in),
        "lif": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                           v_threshold=spec.neuron.v_th * ones, v_reset=np.zeros(n), w_in=w_in),
        "w_rec": nir.Linear(weight=W_rec),
        "w_out": nir.Affine(weight=w.W_out, bias=w.b_out),
        "output": nir.Output(output_type=np.array([spec.n_outputs])),
    }
    edges = [("input", "w_in"), ("w_in", "lif")]
    if np.any(w.W_rec != 0):
        # the recurrent population as a nested graph Input → CubaLIF ⇄ Linear → Output, the form
        # snnTorch's RSynaptic export and Rockpool's import use; a feed-forward network stays a chain
        nodes["lif"] = nir.NIRGraph(
            nodes={"input": nir.Input(input_type=np.array([n])), "lif": nodes["lif"], "w_rec": nodes["w_rec"],
                   "output": nir.Output(output_type=np.array([n]))},
            edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    del nodes["w_rec"]
    if c.d_readout < 1.0:
        if convention == "snntorch":
            tau_r = DT / c.d_readout * ones
            r_r = tau_r / DT
        else:
            tau_r, r_r = spec.neuron.tau_readout * 1e-3 * ones, ones / c.d_readout
        nodes["readout_filter"] = nir.LI(tau=tau_r, r=r_r, v_leak=np.zeros(n))
        edges += [("lif", "readout_filter"), ("readout_filter", "w_out")]
    else:
        edges += [("lif", "w_out")]
    edges += [("w_out", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={"neuro.dt_ms": float(spec.dt), "neuro.convention": convention})
    if path is not None:
        nir.write(str(path), graph)
    return graph


# -- import ------------------------------------------------------------------------------

def _read(source) -> "nir.NIRGraph":
    if isinstance(source, nir.NIRGraph):
        return source
    path = Path(source)
    if not path.is_file():
        raise NIRError(f"cannot import from NIR: {path} is not a file")
    try:
        graph = nir.read(str(path))
    except Exception as e:         # h5py/nir raise OSError, KeyError, … on a file that is not a NIR graph
        raise NIRError(f"cannot import from NIR: {path} is not a NIR graph (HDF5 written by nir.write): "
                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")) from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"cannot import from NIR: {path} holds a single {type(graph).__name__} node, not a graph")
    return graph


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
        if s not in nodes or d not in nodes:
            raise NIRError(f"cannot import from NIR: the edge {src!r} → {dst!r} names a node the graph lacks")
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


def _array(values, what: str, positive: bool = False) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise NIRError(f"cannot import from NIR: {what} is not numeric") from None
    if not np.all(np.isfinite(a)):
        raise NIRError(f"cannot import from NIR: {what} has non-finite values (NaN or inf)")
    if positive and not np.all(a > 0):
        raise NIRError(f"cannot import from NIR: {what} must be > 0, got {a.min():g}")
    return a


def _uniform(values, what: str, positive: bool = False) -> float:
    values = _array(values, what, positive)
    if not np.allclose(values, values.flat[0], rtol=1e-12, atol=0):
        raise NIRError(f"cannot import from NIR: per-neuron {what} (neuro takes one value per population)")
    return float(values.flat[0])


def _matrix(node, what: str) -> np.ndarray:
    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise NIRError(f"cannot import from NIR: the {what} projection is a {type(node).__name__}, "
                       f"expected Linear or Affine")
    if isinstance(node, nir.Affine) and np.any(_array(node.bias, f"the {what} bias") != 0):
        raise NIRError(f"cannot import from NIR: the {what} projection has a bias (a constant input "
                       f"current); neuro's bias enters the voltage")
    W = _array(node.weight, f"the {what} weight")
    if W.ndim != 2:
        raise NIRError(f"cannot import from NIR: the {what} weight has shape {W.shape}, expected a matrix")
    return W


def _tau_ms(decay: float, dt_ms: float, what: str) -> float:
    if not 0 < decay < 1:
        raise NIRError(f"cannot import from NIR: {what} decays by {decay} per step; needs 0 < d < 1")
    return -dt_ms / math.log1p(-decay)


def _is_snntorch(lif) -> bool:
    """snnTorch 1.0's export marks: r = τ_mem / 1e-4 s and w_in = τ_syn / 1e-4 s exactly."""
    try:
        r, w_in = np.asarray(lif.r, float), np.asarray(lif.w_in, float)
        return bool(np.allclose(r * DT, lif.tau_mem, rtol=1e-9, atol=0)
                    and np.allclose(w_in * DT, lif.tau_syn, rtol=1e-9, atol=0))
    except (TypeError, ValueError):
        return False


def _rockpool_dt_s(tau_mem: float, r: float) -> float:
    """Rockpool writes r = τ e^(-dt/τ)/dt, decreasing in dt: solve for dt by bisection."""
    lo, hi = 1e-12 * tau_mem, 1e3 * tau_mem
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if tau_mem * math.exp(-mid / tau_mem) / mid > r else (lo, mid)
    return math.sqrt(lo * hi)


def load_nir(source, dt: float | None = None, convention: str | None = None,
             snntorch_reset_delay: bool = False) -> tuple[NetworkSpec, Weights]:
    """Read a NIR graph (path or ``nir.NIRGraph``) of one CubaLIF population into ``(spec, weights)``.

    ``dt`` (ms) is the step to simulate at; it overrides the graph's ``neuro.dt_ms`` metadata.
    ``convention`` ("nir", "snntorch", "rockpool"; see the module doc) defaults to the graph's
    ``neuro.convention`` metadata, else snnTorch's when the CubaLIF carries its marks (with a
    warning), else the standard.  NIR resets at the spike; snnTorch simulates its neurons with a
    one-step reset delay by default (``reset_delay=True``: the membrane is zeroed on the step after a
    spike), which is a one-step refractory period in neuro's terms: ``snntorch_reset_delay=True``
    reproduces snnTorch's simulation. (snnTorch 1.0.0's ``RSynaptic`` with ``reset_delay=False`` does
    not run.)"""
    if convention is not None and convention not in CONVENTIONS:
        raise NIRError(f"cannot import from NIR: convention must be one of {CONVENTIONS}, got {convention!r}")
    if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NIRError(f"cannot import from NIR: dt must be a positive number of ms, got {dt!r}")
    graph = _read(source)
    metadata = dict(getattr(graph, "metadata", None) or {})
    nodes, edges = _flatten(graph)
    lifs = [k for k, v in nodes.items() if isinstance(v, nir.CubaLIF)]
    if len(lifs) != 1:
        others = sorted({type(v).__name__ for v in nodes.values()})
        raise NIRError(f"cannot import from NIR: neuro reads one recurrent CubaLIF population, found "
                       f"{len(lifs)} CubaLIF nodes (node types: {others})")
    name, lif = lifs[0], nodes[lifs[0]]
    if convention is None:
        convention = str(metadata.get("neuro.convention", ""))
        if convention == "snntorch-dt-1e-4":          # graphs written before the conventions were named
            convention = "snntorch"
        if convention not in CONVENTIONS:
            convention = "snntorch" if _is_snntorch(lif) else "nir"
            if convention == "snntorch":
                warnings.warn("reading the NIR graph in snnTorch's convention (its CubaLIF has r = tau_mem/1e-4 s "
                              "and w_in = tau_syn/1e-4 s); pass convention='nir' to read it by the standard",
                              stacklevel=2)
    tau_syn = _uniform(lif.tau_syn, "tau_syn", positive=True)
    tau_mem = _uniform(lif.tau_mem, "tau_mem", positive=True)
    v_th = _uniform(lif.v_threshold, "v_threshold")
    if _uniform(lif.v_reset, "v_reset") != 0:
        raise NIRError("cannot import from NIR: v_reset must be 0 (neuro resets to zero)")
    r = _array(lif.r, "r")
    w_in = _array(lif.w_in, "w_in")
    v_leak = _array(lif.v_leak, "v_leak")
    if dt is None and "neuro.dt_ms" in metadata:
        dt = float(metadata["neuro.dt_ms"])
    reset, refractory = "zero", 0.0
    if convention == "snntorch":
        dt_ms = float(dt or SNNTORCH_DT_MS)
        du, dv = DT / tau_syn, DT / tau_mem
        gain = (w_in * DT / tau_syn) * (r * DT / tau_mem)      # forward Euler at 1e-4 s
        keep_in, b_scale = 1.0, dv
        refractory = dt_ms if snntorch_reset_delay else 0.0
    else:
        if convention == "rockpool" and dt is None:
            # Rockpool stores r in float32: the dt it encodes, to float32's 7 significant digits
            dt = float(f"{1e3 * _rockpool_dt_s(tau_mem, _uniform(r, 'r', positive=True)):.7g}")
        if dt is None:
            raise NIRError("cannot import from NIR: the graph does not say its time step (no 'neuro.dt_ms' "
                           "metadata); pass dt= in ms (NIR's time constants are physical, dt is the simulator's)")
        dt_ms = float(dt)
        du, dv = -math.expm1(-dt_ms * 1e-3 / tau_syn), -math.expm1(-dt_ms * 1e-3 / tau_mem)
        if convention == "rockpool":
            gain, keep_in, b_scale, reset = np.ones_like(r), 1.0 - du, 1.0, "subtract"
        else:
            gain, keep_in, b_scale = du * dv * r * w_in, 1.0, dv
    preds = _follow(name, nodes, edges, forward=False)
    rec = [p for p in preds if name in _follow(p, nodes, edges, forward=False)]
    inp = [p for p in preds if p not in rec]
    if len(rec) > 1 or len(inp) != 1:
        raise NIRError(f"cannot import from NIR: expected one input and at most one recurrent projection "
                       f"into {name!r}, found inputs {inp} and recurrent {rec}")
    W_in = keep_in * gain[:, None] * _matrix(nodes[inp[0]], "input")
    n = W_in.shape[0]
    W_rec = keep_in * gain[:, None] * _matrix(nodes[rec[0]], "recurrent") if rec else np.zeros((n, n))
    if W_rec.shape != (n, n):
        raise NIRError(f"cannot import from NIR: the recurrent weight has shape {W_rec.shape}, expected {(n, n)}")
    after = [s for s in _follow(name, nodes, edges) if s not in rec]
    if len(after) != 1:
        raise NIRError(f"cannot import from NIR: expected one readout path from {name!r}, found {after}")
    tau_readout, readout_gain = 0.0, 1.0
    node = nodes[after[0]]
    if isinstance(node, nir.LI):
        tau_r = _uniform(node.tau, "readout tau", positive=True)
        if np.any(_array(node.v_leak, "readout v_leak") != 0):
            raise NIRError("cannot import from NIR: the readout LI has v_leak != 0 (neuro's readout filter has none)")
        if convention == "snntorch":
            d_r = DT / tau_r
            readout_gain = _uniform(_array(node.r, "readout r") * DT / tau_r, "readout gain")
        else:
            d_r = -math.expm1(-dt_ms * 1e-3 / tau_r)
            readout_gain = d_r * _uniform(node.r, "readout r")
        tau_readout = _tau_ms(d_r, dt_ms, "the readout filter")
        nxt = _follow(after[0], nodes, edges)
        node = nodes[nxt[0]] if len(nxt) == 1 else None
    if isinstance(node, nir.Output) and tau_readout == 0:       # the spikes are the graph's output
        node = nir.Linear(weight=np.eye(n))
    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise NIRError("cannot import from NIR: the readout must be a Linear/Affine node (after an optional LI)")
    W_out = readout_gain * _array(node.weight, "the readout weight")
    b_out = _array(node.bias, "the readout bias") if isinstance(node, nir.Affine) else np.zeros(W_out.shape[0])
    b = b_scale * v_leak * np.ones(n)
    n_in, n_out = W_in.shape[1], W_out.shape[0]
    neuron = NeuronSpec(model="lif", tau_syn=_tau_ms(du, dt_ms, "the synaptic current"),
                        tau_mem=_tau_ms(dv, dt_ms, "the membrane"), v_th=v_th,
                        reset=reset, refractory=refractory, tau_readout=tau_readout)
    spec = NetworkSpec(name="nir_import", dt=dt_ms, n_inputs=n_in, n_outputs=n_out,
                       populations=[PopulationSpec(name="hidden", size=n, neuron=neuron)],
                       input=ConnectionSpec(init="uniform", bias=bool(np.any(b != 0))),
                       recurrent=ConnectionSpec(init="normal"),
                       readout=ConnectionSpec(init="uniform", bias=bool(np.any(b_out != 0))))
    weights = Weights(W_in=W_in, W_rec=W_rec, W_out=W_out, b=b, b_out=b_out, mask_in=np.ones_like(W_in),
                      mask_rec=np.ones_like(W_rec), mask_out=np.ones_like(W_out))
    return spec, weights
