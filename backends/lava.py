"""Lava export (lava-nc 0.10.0) — the only module importing lava.

``neuro.compile(spec, backend="lava", weights=w)`` or ``neuro.export(net, "lava")`` builds Lava
processes — a ``RingBuffer`` source of the input currents ``W_in x[t]`` wired straight into the
``LIF`` population's ``a_in``, a recurrent projection (``Dense`` for one trial; a block-diagonal
``Sparse`` when several trials run side by side as parallel populations), a ``RingBuffer`` sink of
the spikes — and runs them in Lava's Loihi-style simulator (``Loihi2SimCfg``).

Floating point (``precision="float"``, tag ``floating_pt``): Lava's float LIF
(``lava/proc/lif/models.py``) is neuro's discretization exactly (``u ← u(1-du) + a_in``,
``v ← v(1-dv) + u + bias_mant``, spike if ``v > vth``, ``v ← 0``), and its connection processes
deliver the previous step's spikes, as our recurrent projection does; the input currents arrive in
their own step.  Spikes equal the LIF backend's (tested over 1000 steps).  A refractory period runs
on ``LIFRefractory`` (v held at 0 for ``refractory_steps`` after a spike, as in the contract).

Fixed point (``precision="fixed"``, tag ``fixed_pt``, Lava's bit-accurate Loihi models): every
quantity is an integer on one scale ``S = vth_mant / v_th`` (a_in units per unit of current):

- threshold ``vth_mant`` (17 bit; the chip compares ``v > vth_mant << 6``), so u and v carry
  ``64 S`` units per unit and the 24-bit state spans ``±2²³ / (64 S)``;
- recurrent weights: 8-bit mantissas times ``2^weight_exp`` (Loihi's shared weight exponent).  The
  exponent and ``S`` are chosen together so that ``max |W_rec|`` lands on the top of the
  ``weight_bits`` grid (mixed-sign weights: even integers in [-256, 254] at 8 bits, step
  ``2^(9-bits)``; one-signed: step ``2^(8-bits)``), rounded to nearest (Lava then truncates
  nothing), with ``weight_exp >= 0`` so no accumulated input is floored;
- decays: ``du_int = round(4096 du) - 1`` (Lava adds 1 to the current decay), ``dv_int = round(4096 dv)``;
- bias: ``bias_mant · 2^bias_exp = round(64 S b)`` per neuron (13-bit mantissa, exponent 0..7);
- input currents ``round(S · W_in x[t])``, 16-bit graded input computed off-chip (``W_in`` is not
  quantized to 8 bits: on a chip the input layer is the host's or an encoder's job).

``precision="float", weight_bits=b`` runs Lava's float models on the same weight grid, which
separates weight quantization from Loihi's integer state arithmetic.

The readout (filtered spikes → ``W_out``) is computed from the recorded spikes, in float64.

Lava cannot express (and the export refuses, naming it): rate neurons, reset by subtraction, a slow
second current, refractoriness in fixed point (``LIFRefractory`` has only a float model).

On-chip learning: ``onchip_eprop_trial`` runs e-prop (Bellec et al. 2020) as a ``Loihi3FLearningRule``
on a ``LearningDense``, with a LIF model that sends the pseudo-derivative and the third factor as its y
values and a host process for the readout, in floating point or on Lava's bit-approximate fixed-point
learning engine (the mapping, its approximations and the integer scales are in ``neuro/onchip.py``).

Python 3.11: lava's ``var_model.py`` uses ``ByteEncoder()`` instances as dataclass defaults, which
3.11 rejects; an import hook serves that module with ``field(default_factory=ByteEncoder)`` instead,
leaving the installed files untouched.  Importing lava sets the multiprocessing start method to
``fork`` (an already set other method is an error).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import math
import multiprocessing
import re
import sys
from dataclasses import dataclass

import numpy as np
import torch
from neuro.progress import tqdm

from neuro.contract import refuse_options
from neuro.lif_params import lif_constants
from neuro.trajectory import Trajectory

_PATCHED = "lava.magma.compiler.var_model"
PRECISIONS = ("float", "fixed")
_TAGS = {"float": "floating_pt", "fixed": "fixed_pt"}
_VTH_MAX = 2 ** 17 - 1          # 17-bit threshold mantissa
_UV_MAX = 2 ** 23 - 1           # 24-bit signed current and voltage
_A_IN_MAX = 2 ** 15 - 1         # 16-bit graded input
_MAX_BLOCK_ENTRIES = 4_000_000  # cap on (neurons per run)² for the block-diagonal batch


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


class _Lava:
    """The lava names this module uses, imported once."""

    def __init__(self):
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF, LIFRefractory
        from lava.proc.sparse.process import Sparse
        from lava.utils.weightutils import SignMode
        self.__dict__.update(locals())


_lava = None


def _import_lava() -> _Lava:
    global _lava
    if _lava is not None:
        return _lava
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
        _lava = _Lava()
    finally:
        multiprocessing.set_start_method = original
    return _lava


def _refuse(spec, precision: str) -> None:
    n = spec.neuron
    if n.model != "lif":
        raise ValueError(f"cannot export to Lava: rate neurons (model {n.model!r}) — Lava runs spiking LIF "
                         f"neurons; compile a spec with neuron model 'lif'")
    problems = {
        n.reset == "subtract": "reset by subtraction (Lava's LIF resets v to 0)",
        n.tau_syn_slow > 0: "a slow second synaptic current (Lava's LIF has one current)",
        n.refractory > 0 and precision == "fixed":
            "a refractory period in fixed point (Lava's LIFRefractory has only a floating-point model)",
    }
    for bad, what in problems.items():
        if bad:
            raise ValueError(f"cannot export to Lava: {what}")


# -- Loihi fixed point -------------------------------------------------------------------------

@dataclass(frozen=True)
class LoihiQuantization:
    """The integer parameters of one LIF network on Loihi (see the module docstring).

    ``scale`` = a_in units per unit of current (``vth_mant / v_th``); u and v carry ``64·scale``
    units per unit.  ``W_rec_mant · 2^weight_exp`` are the recurrent weights in a_in units.
    """

    scale: float
    vth_mant: int
    weight_exp: int
    weight_bits: int
    sign_mode: str                  # "mixed" | "excitatory" | "inhibitory"
    W_rec_mant: np.ndarray          # integers on the weight_bits grid
    du: int
    dv: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray

    @property
    def W_rec(self) -> np.ndarray:
        """The quantized recurrent weights in real units (what a float run with ``weight_bits`` uses)."""
        return self.W_rec_mant * 2.0 ** self.weight_exp / self.scale

    @property
    def bias(self) -> np.ndarray:
        return self.bias_mant * 2.0 ** self.bias_exp / (64 * self.scale)

    @property
    def state_range(self) -> float:
        """|u| and |v| (real units) beyond which the 24-bit state wraps (u) or clips (v)."""
        return _UV_MAX / (64 * self.scale)

    def input_current(self, currents: np.ndarray) -> np.ndarray:
        """Real input currents → 16-bit graded a_in integers."""
        return np.clip(np.rint(currents * self.scale), -_A_IN_MAX, _A_IN_MAX).astype(np.int32)


def _sign_mode(W: np.ndarray) -> str:
    if W.min() >= 0:
        return "excitatory"
    return "inhibitory" if W.max() <= 0 else "mixed"


def weight_grid(sign_mode: str, bits: int) -> tuple[int, int]:
    """(step, largest magnitude) of Loihi's 8-bit weight mantissas at ``bits`` bits."""
    if sign_mode == "mixed":                      # sign bit included, even values in [-256, 254]
        step = 2 ** (9 - bits)
        return step, 256 - step
    step = 2 ** (8 - bits)
    return step, (255 // step) * step


def loihi_quantization(spec, weights, weight_bits: int = 8, vth_target: int = 256) -> LoihiQuantization:
    """Choose Loihi's integers for a LIF network (``vth_target``: the threshold mantissa to aim at;
    larger means finer state, smaller state range ``±2²³/(64·vth)`` thresholds)."""
    if not (isinstance(weight_bits, int) and 1 <= weight_bits <= 8):
        raise ValueError(f"weight_bits must be an integer in [1, 8], got {weight_bits!r}")
    if not (isinstance(vth_target, int) and 1 <= vth_target <= _VTH_MAX):
        raise ValueError(f"vth_target must be an integer in [1, {_VTH_MAX}], got {vth_target!r}")
    n, c = spec.neuron, lif_constants(spec.neuron, spec.dt)
    W = np.asarray(weights.W_rec, dtype=float)
    mode = _sign_mode(W)
    if mode == "mixed" and weight_bits < 2:
        raise ValueError("weight_bits must be >= 2 for mixed-sign recurrent weights (one bit is the sign)")
    step, top = weight_grid(mode, weight_bits)
    w_max = float(np.abs(W).max())
    if w_max == 0:
        exp, vth = 0, vth_target
    else:
        # smallest exponent >= 0 whose grid top, mapped to w_max, gives a threshold >= vth_target
        exp = max(0, math.ceil(math.log2(w_max * vth_target / (top * n.v_th))))
        vth = int(top * 2 ** exp * n.v_th / w_max)
    if not 1 <= vth <= _VTH_MAX:
        raise ValueError(f"cannot export to Lava fixed point: threshold mantissa {vth} outside [1, {_VTH_MAX}] "
                         f"(max |W_rec| = {w_max:.3g}, v_th = {n.v_th}); lower vth_target")
    scale = vth / n.v_th
    mant = np.clip(np.rint(W * scale / 2 ** exp / step) * step, -256 if mode == "mixed" else -top, top)
    bias_total = np.rint(np.asarray(weights.b, dtype=float) * 64 * scale)
    bias_exp = np.clip(np.ceil(np.log2(np.maximum(np.abs(bias_total), 1) / 4095)), 0, 7).astype(int)
    bias_mant = np.clip(np.rint(bias_total / 2.0 ** bias_exp), -4096, 4095).astype(int)
    du = int(np.clip(round(4096 * c.du) - 1, 0, 4095))
    dv = int(np.clip(round(4096 * c.dv), 0, 4095))
    return LoihiQuantization(scale=scale, vth_mant=vth, weight_exp=exp, weight_bits=weight_bits, sign_mode=mode,
                             W_rec_mant=mant.astype(int), du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp)


# -- the network ------------------------------------------------------------------------------

class LavaNetwork:
    """A LIF network run in Lava's simulator; ``run(inputs)`` returns a ``Trajectory``.

    precision: ``"float"`` (Lava's floating-point models) or ``"fixed"`` (Loihi bit-accurate).
    weight_bits: quantize the recurrent weights to Loihi's grid at this width (always in fixed point,
        default 8 there; in float only when given).
    vth_target: the threshold mantissa the fixed-point scale aims at (see ``loihi_quantization``).
    trials_per_run: batch elements simulated side by side as parallel populations in one Lava run
        (block-diagonal recurrent weights); default: as many as keep (n·trials)² under 4·10⁶.
    """

    backend = "lava"
    neuron_model = "lif"
    provides = frozenset({"runs"})      # neuro.contract: runs only (no gradients, no stepping)

    def __init__(self, spec, weights, precision: str = "float", weight_bits: int | None = None,
                 vth_target: int = 256, trials_per_run: int | None = None, progress: bool = True,
                 dtype=torch.float64, **_):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        _refuse(spec, precision)
        if trials_per_run is not None and not (isinstance(trials_per_run, int) and trials_per_run >= 1):
            raise ValueError(f"trials_per_run must be an integer >= 1, got {trials_per_run!r}")
        self.spec, self.w, self.dtype, self.precision, self.progress = spec, weights, dtype, precision, progress
        self.c = lif_constants(spec.neuron, spec.dt)
        self.quantization = None
        if precision == "fixed" or weight_bits is not None:
            self.quantization = loihi_quantization(spec, weights, 8 if weight_bits is None else weight_bits,
                                                   vth_target)
        n = spec.n_hidden
        self.trials_per_run = trials_per_run or max(1, int(math.sqrt(_MAX_BLOCK_ENTRIES)) // n)

    @property
    def n_hidden(self) -> int:
        return self.spec.n_hidden

    def weights(self):
        """The weights this network runs with (recurrent and bias as quantized, if they are)."""
        w = self.w.copy()
        if self.quantization is not None:
            w.W_rec = self.quantization.W_rec.copy()
            if self.precision == "fixed":
                w.b = self.quantization.bias.copy()
        return w

    # -- one Lava run: B trials side by side ------------------------------------------------
    def _processes(self, currents: np.ndarray, trials: int):
        """Source, LIF, recurrent projection and sink for ``currents [T, trials, n]`` (real units)."""
        lv, n, q = _import_lava(), self.n_hidden, self.quantization
        T = currents.shape[0]
        neuron = self.spec.neuron
        flat = currents.reshape(T, trials * n).T                  # [trials·n, T], trial-major
        if self.precision == "fixed":
            source = lv.Source(data=q.input_current(flat))
            lif_args = dict(du=q.du, dv=q.dv, vth=q.vth_mant, bias_mant=np.tile(q.bias_mant, trials),
                            bias_exp=np.tile(q.bias_exp, trials))
            W, conn = q.W_rec_mant.astype(float), dict(weight_exp=q.weight_exp, num_weight_bits=q.weight_bits,
                                                       sign_mode=getattr(lv.SignMode, q.sign_mode.upper()))
        else:
            source = lv.Source(data=flat)
            lif_args = dict(du=self.c.du, dv=self.c.dv, vth=neuron.v_th, bias_mant=np.tile(self.w.b, trials))
            W, conn = (self.w.W_rec if q is None else q.W_rec), {}
        zeros = np.zeros(trials * n)
        if self.c.refractory_steps > 0:
            lif = lv.LIFRefractory(shape=(trials * n,), u=zeros, v=zeros,
                                   refractory_period=self.c.refractory_steps, **lif_args)
        else:
            lif = lv.LIF(shape=(trials * n,), u=zeros, v=zeros, **lif_args)
        if trials == 1:
            rec = lv.Dense(weights=np.array(W), **conn)
        else:
            import scipy.sparse
            rec = lv.Sparse(weights=scipy.sparse.block_diag([scipy.sparse.csr_matrix(W)] * trials, format="csr"),
                            **conn)
        sink = lv.Sink(shape=(trials * n,), buffer=T)
        source.s_out.connect(lif.a_in)
        lif.s_out.connect(rec.s_in)
        rec.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        return lif, sink

    def _run_trials(self, currents: np.ndarray) -> np.ndarray:
        """Spikes ``[T, trials, n]`` for input currents ``[T, trials, n]`` in one Lava run."""
        lv = _import_lava()
        T, trials, n = currents.shape
        lif, sink = self._processes(currents, trials)
        try:
            lif.run(condition=lv.RunSteps(num_steps=T), run_cfg=lv.Loihi2SimCfg(select_tag=_TAGS[self.precision]))
            spikes = np.asarray(sink.data.get())                  # [trials·n, T]
        finally:
            lif.stop()
        return (spikes.T.reshape(T, trials, n) != 0).astype(float)

    def _trial(self, x: np.ndarray) -> np.ndarray:
        """Spikes ``[T, n]`` of one trial with inputs ``x [T, n_in]`` (the benchmark's entry)."""
        return self._run_trials((x @ self.w.W_in.T)[:, None])[:, 0]

    def run(self, inputs, generator=None, **options) -> Trajectory:
        """Run on ``inputs [T, B, n_in]``: ``trials_per_run`` trials per Lava run, side by side.
        The network is noise-free (``generator`` draws nothing); any other run option is refused."""
        refuse_options(self, options, "Lava runs forward only")
        x = np.asarray(inputs.detach().cpu() if torch.is_tensor(inputs) else inputs, dtype=float)
        if x.ndim != 3 or x.shape[2] != self.spec.n_inputs:
            raise ValueError(f"inputs must have shape [T, B, n_inputs={self.spec.n_inputs}], got {x.shape}")
        currents = x @ self.w.W_in.T                              # [T, B, n]
        B, k = x.shape[1], self.trials_per_run
        chunks = range(0, B, k)
        parts = [self._run_trials(currents[:, i:i + k])
                 for i in tqdm(chunks, desc=f"lava {self.precision}", disable=not self.progress or len(chunks) == 1,
                               leave=False)]
        return self._trajectory(np.concatenate(parts, axis=1))

    def _trajectory(self, spikes: np.ndarray) -> Trajectory:
        rates = np.zeros_like(spikes)
        r = np.zeros(spikes.shape[1:])
        for t in range(spikes.shape[0]):
            r = (1 - self.c.d_readout) * r + spikes[t]
            rates[t] = r
        outputs = rates @ self.w.W_out.T + self.w.b_out
        t = lambda a: torch.as_tensor(a, dtype=self.dtype)
        return Trajectory(states=t(np.full_like(spikes, np.nan)), rates=t(rates), outputs=t(outputs),
                          spikes=t(spikes))


def export_lava(net, path=None, precision: str = "float", **options) -> LavaNetwork:
    """The trained LIF network ``net`` as a ``LavaNetwork`` (``options``: ``weight_bits``,
    ``vth_target``, ``trials_per_run``, ``progress``).  Lava has no file format: ``path`` must be None."""
    if path is not None:
        raise ValueError(f"export to Lava builds processes in memory; path must be None, got {path!r}")
    if getattr(net, "backend", None) not in ("lif", "lava"):
        raise ValueError(f"cannot export to Lava: a {getattr(net, 'backend', type(net).__name__)!r} network — "
                         f"rate neurons; compile the spec with backend 'lif'")
    return LavaNetwork(net.spec, net.weights(), precision=precision, **options)


# -- on-chip e-prop: a LearningDense with e-prop as a Loihi three-factor rule ------------------------

def _onchip_classes():
    """The Lava processes and models of on-chip e-prop (see ``neuro/onchip.py`` for the mapping):

    - ``LearningLIF`` run by ``_EpropLIFModel``: Lava's float LIF that, like a Loihi 2 neuron
      program, sends its spikes as back-propagating spikes, ``y1 = ψ(v - v_th)`` (before the reset)
      and ``y2 =`` the third factor it receives on ``a_third_factor_in``; lava-nc 0.10's own
      ``LearningLIF`` models send no y values;
    - ``HostReadout``: the host — reads the spikes, filters them, computes the readout, the error
      and the learning signal ``L = B·∂loss/∂y``, and sends ``η·L`` to the neurons one step later.
    """
    global _ONCHIP
    if _ONCHIP is not None:
        return _ONCHIP
    _import_lava()
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
    from lava.proc.dense.process import LearningDense
    from lava.proc.lif.models import PyLearningLifModelFloat
    from lava.proc.lif.process import LearningLIF
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule

    @implements(proc=LearningLIF, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class _EpropLIFModel(PyLearningLifModelFloat):
        def run_spk(self):
            a_in = self.a_in.recv()
            third = self.a_third_factor_in.recv()
            self.subthr_dynamics(activation_in=a_in)
            spikes = self.v > self.vth
            mapping = self.proc_params["mapping"]
            comp = self.proc_params["y_compensation"]
            psi = mapping.pseudo_derivative(np.asarray(self.v, dtype=float))
            self.v[spikes] = 0
            self.s_out.send(spikes)
            self.s_out_bap.send(spikes)
            self.s_out_y1.send(psi * comp)
            self.s_out_y2.send(np.asarray(third, dtype=float) * comp)
            self.s_out_y3.send(np.zeros_like(psi))

    @implements(proc=LearningLIF, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class _EpropLIFModelFixed(PyLearningLifModelFloat):
        """The neuron program for Lava's fixed-point learning engine: the LIF dynamics in float64 on
        the integer input of the bit-approximate ``LearningDense`` (mantissa sums << weight_exp, divided by
        the network's scale), the input currents from its parameters; it sends integer y values,
        stochastically rounded: ``y1 = ψ·S_y``, ``y2 = L⁺·S_L``, ``y3 = L⁻·S_L`` (Loihi's y are unsigned)."""

        s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
        s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
        s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            self.rng = np.random.default_rng(proc_params["seed"])

        def _integer(self, x):
            f = np.floor(x)
            return np.clip(f + (self.rng.random(x.shape) < x - f), 0, self.proc_params["y_top"]).astype(np.int32)

        def run_spk(self):
            p = self.proc_params
            a_in = np.asarray(self.a_in.recv(), dtype=float)
            L = np.asarray(self.a_third_factor_in.recv(), dtype=float)
            self.subthr_dynamics(activation_in=p["currents"][self.time_step - 1] + a_in / p["scale"])
            spikes = self.v > self.vth
            psi = p["mapping"].pseudo_derivative(np.asarray(self.v, dtype=float))
            self.v[spikes] = 0
            plan = p["plan"]
            self.s_out.send(spikes)
            self.s_out_bap.send(spikes)
            self.s_out_y1.send(self._integer(psi * plan.y1_scale))
            self.s_out_y2.send(self._integer(np.maximum(L, 0) * plan.L_scale))
            self.s_out_y3.send(self._integer(np.maximum(-L, 0) * plan.L_scale))

    class HostReadout(AbstractProcess):
        def __init__(self, *, n: int, **params):
            super().__init__(n=n, **params)
            self.s_in = InPort(shape=(n,))
            self.l_out = OutPort(shape=(n,))
            self.loss = Var(shape=(1,), init=0.0)

    @implements(proc=HostReadout, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class _HostReadoutModel(PyLoihiProcessModel):
        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        l_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        loss: np.ndarray = LavaPyType(np.ndarray, float)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            p = proc_params
            self.r = np.zeros(p["n"])
            self.buffer = np.zeros(p["n"])

        def run_spk(self):
            p = self.proc_params
            self.l_out.send(self.buffer)                  # the previous step's learning signal
            s = np.asarray(self.s_in.recv(), dtype=float)
            t = self.time_step - 1
            if t >= len(p["mask"]):
                self.buffer = np.zeros_like(self.buffer)
                return
            self.r = p["kappa"] * self.r + s
            y = p["W_out"] @ self.r + p["b_out"]
            err = p["error"](p["kind"], y, p["target"][t], float(p["mask"][t]), p["norm"])
            self.buffer = p["eta"] * (p["feedback"] @ err)

    from lava.proc.io.sink import PyReceiveModelFloat
    from lava.proc.io.source import PySendModelFloat
    _ONCHIP = dict(LearningDense=LearningDense, LearningLIF=LearningLIF, Rule=Loihi3FLearningRule,
                   HostReadout=HostReadout, models={LearningLIF: _EpropLIFModel, HostReadout: _HostReadoutModel},
                   fixed_neuron=_EpropLIFModelFixed, float_sink=PyReceiveModelFloat, float_source=PySendModelFloat)
    return _ONCHIP


_ONCHIP = None


def onchip_eprop_trial(spec, weights, inputs, mapping, error=None, target=None, mask=None,
                       kind: str = "classification", eta: float = 1e-3, learning_signal=None,
                       precision: str = "float", fixed: dict | None = None) -> dict:
    """One trial of on-chip e-prop in Lava: the recurrent weights learn online on a ``LearningDense``
    with e-prop as a ``Loihi3FLearningRule`` (``t_epoch = 1``), the learning signal coming from a host
    readout process (or, given ``learning_signal [T, N]``, from a source, for checks).

    ``mapping``: a ``neuro.onchip.EpropMapping`` (its ``rules()``, decays and ``pseudo_derivative``);
    ``error(kind, y, target, mask, norm)``: the host's ∂loss/∂y at one step (``neuro.onchip.step_error``);
    ``neuro.onchip.lava_trial`` passes both.  ``inputs [T, n_in]`` (one trial); returns ``W_rec`` (after
    the trial), ``dW``, ``spikes [T, N]``, the tags ``t`` (ε^v) and ``d`` (ē).  Runs T + 1 steps: the last
    epoch applies the last update.

    ``precision="fixed"`` runs Lava's bit-approximate learning engine (``Loihi2SimCfg(select_tag=
    "fixed_pt")``: ``PyLearningDenseModelBitApproximate``, 7-bit traces, 9-bit tags and weights, 15-bit
    accumulator, stochastic rounding) on the 8-bit weight mantissas, with the neuron program of
    ``_onchip_classes`` (float dynamics, integer y values); ``fixed`` (from ``neuro.onchip.lava_trial``)
    holds ``plan`` (a ``neuro.onchip.FixedPlan``), ``rules``, ``W_mant``, ``weight_exp``, ``scale``,
    ``sign_mode``, ``du``, ``dv``, ``seed``.  ``W_rec``/``dW`` are then in real units
    (mantissa·2^weight_exp/scale), ``W_mant`` the learned mantissas, the tags integers."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fixed" and fixed is None:
        raise ValueError("on-chip e-prop in Lava fixed point needs the integer plan (use neuro.onchip.lava_trial)")
    _refuse(spec, precision)
    cls = _onchip_classes()
    lv = _import_lava()
    x = np.asarray(inputs.detach().cpu() if torch.is_tensor(inputs) else inputs, dtype=float)
    if x.ndim != 2 or x.shape[1] != spec.n_inputs:
        raise ValueError(f"inputs must have shape [T, n_inputs={spec.n_inputs}] (one trial), got {x.shape}")
    T, n = x.shape[0], spec.n_hidden
    currents = np.zeros((n, T + 1))
    currents[:, :T] = (x @ (np.asarray(weights.W_in) * np.asarray(weights.mask_in)).T).T
    bias = np.asarray(weights.b, float) if spec.recurrent.bias else np.zeros(n)
    sink = lv.Sink(shape=(n,), buffer=T + 1)
    if precision == "float":
        rule = cls["Rule"](**mapping.rules(), x1_impulse=1.0, x1_tau=mapping.x1_tau, t_epoch=1)
        source = lv.Source(data=currents)
        lif = cls["LearningLIF"](shape=(n,), u=np.zeros(n), v=np.zeros(n), du=1 - mapping.a, dv=1 - mapping.b,
                                 vth=spec.neuron.v_th, bias_mant=bias, learning_rule=rule, mapping=mapping,
                                 y_compensation=math.exp(1.0 / rule.y1_tau))   # cancels the 3F rule's y decay
        dense = cls["LearningDense"](weights=np.asarray(weights.W_rec, float).copy(), learning_rule=rule,
                                     tag_1=np.zeros((n, n)), tag_2=np.zeros((n, n)))
        source.s_out.connect(lif.a_in)
        models = {lif: cls["models"][cls["LearningLIF"]]}          # Lava keys this map by process instance
        signal_scale = eta                                          # the float neuron sends η·L as y2
    else:
        plan = fixed["plan"]
        rule = cls["Rule"](**fixed["rules"], x1_impulse=float(plan.x1_impulse), x1_tau=mapping.x1_tau, t_epoch=1,
                           rng_seed=int(fixed["seed"]))
        lif = cls["LearningLIF"](shape=(n,), u=np.zeros(n), v=np.zeros(n), du=fixed["du"], dv=fixed["dv"],
                                 vth=spec.neuron.v_th, bias_mant=bias, learning_rule=rule, mapping=mapping, plan=plan,
                                 currents=currents.T.copy(), scale=float(fixed["scale"]), seed=int(fixed["seed"]),
                                 y_top=2 ** 7 - 1)
        dense = cls["LearningDense"](weights=np.asarray(fixed["W_mant"], float).copy(), learning_rule=rule,
                                     weight_exp=int(fixed["weight_exp"]), num_weight_bits=8,
                                     sign_mode=getattr(lv.SignMode, fixed["sign_mode"].upper()),
                                     tag_1=np.zeros((n, n)), tag_2=np.zeros((n, n)))
        models = {lif: cls["fixed_neuron"], sink: cls["float_sink"]}
        signal_scale = 1.0                                          # the neuron quantizes L itself
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(dense.s_in)
    lif.s_out_bap.connect(dense.s_in_bap)
    lif.s_out_y1.connect(dense.s_in_y1)
    lif.s_out_y2.connect(dense.s_in_y2)
    lif.s_out_y3.connect(dense.s_in_y3)
    lif.s_out.connect(sink.a_in)
    if learning_signal is not None:
        L = np.asarray(learning_signal, float)
        delayed = np.zeros((n, T + 1))
        delayed[:, 1:] = signal_scale * L.T                         # L[t] reaches the synapses at step t + 1
        third = lv.Source(data=delayed)
        if precision == "fixed":
            models[third] = cls["float_source"]
    else:
        W_out = np.asarray(weights.W_out, float)
        feedback = W_out.T if spec.feedback.kind != "random" else np.asarray(weights.B, float)
        third = cls["HostReadout"](n=n, W_out=W_out, b_out=np.asarray(weights.b_out, float) if spec.readout.bias
                                   else np.zeros(W_out.shape[0]), feedback=feedback, kappa=mapping.kappa, kind=kind,
                                   target=np.asarray(target), mask=np.asarray(mask, float),
                                   norm=float(np.sum(mask)), eta=signal_scale, error=error)
        lif.s_out.connect(third.s_in)
        models[third] = cls["models"][cls["HostReadout"]]
    (third.s_out if learning_signal is not None else third.l_out).connect(lif.a_third_factor_in)
    cfg = lv.Loihi2SimCfg(select_tag=_TAGS[precision], exception_proc_model_map=models)
    try:
        lif.run(condition=lv.RunSteps(num_steps=T + 1), run_cfg=cfg)
        W_after = np.asarray(dense.weights.get(), float)
        tags = np.asarray(dense.tag_1.get(), float), np.asarray(dense.tag_2.get(), float)
        spikes = np.asarray(sink.data.get(), float).T[:T]
    finally:
        lif.stop()
    out = {"spikes": (spikes != 0).astype(float), "tag_t": tags[0], "tag_d": tags[1]}
    if precision == "fixed":
        unit = 2.0 ** int(fixed["weight_exp"]) / float(fixed["scale"])
        W0 = np.asarray(fixed["W_mant"], float)
        out.update(W_mant=W_after, W_rec=W_after * unit, dW=(W_after - W0) * unit)
    else:
        out.update(W_rec=W_after, dW=W_after - np.asarray(weights.W_rec, float))
    return out
