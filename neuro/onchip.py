"""e-prop for the LIF network as a Loihi three-factor learning rule (Lava-free part).

Bellec et al. 2020 (Nat. Commun., Methods) for the current-based LIF network of
``backends/lif.py``: ``ΔW_ij = -η Σ_t L_i[t] ē_ij[t]`` with the learning signal
``L_i = Σ_k B_ik ∂loss/∂y_k`` (``B = W_outᵀ`` or fixed random feedback), the eligibility
``e_ij = ψ_i ε^v_ij`` and ``ē = F_κ(e)`` filtered by the readout's decay
(``neuro/rules/eprop_lif.py`` computes the same sum offline).

Loihi's learning engine (Lava's ``LearningDense`` with a ``Loihi3FLearningRule``) sees, per
synapse, the weight ``w`` and two tags ``t`` (tag_1) and ``d`` (tag_2); per presynaptic neuron the
traces ``x1, x2`` (exponential filters of its spikes with impulse and time constant); per
postsynaptic neuron ``y0`` (it spiked in this epoch) and the values ``y1, y2, y3`` that the
postsynaptic neuron sends (the third factor).  Every learning epoch (``t_epoch`` steps) it adds to
each synaptic variable a sum of products of these.  The mapping, at ``t_epoch = 1``:

=====================================  =====================================================  ==================
torch e-prop term                      Loihi / Lava                                           in float
=====================================  =====================================================  ==================
``ε^u_j`` current filter of s_j        trace ``x1``: impulse 1, ``τ = -1/ln(1-du)``             exact
``ε^v_ij`` membrane filter, reset κ_i  tag ``t``: ``dt = (b-1)·t - b·y0·t + x1``                 decays to 2^-7
``ψ_i`` pseudo-derivative              ``y1``, computed by the neuron from its voltage           exact
``ē_ij = F_κ(ψ_i ε^v_ij)`` readout     tag ``d``: ``dd = (κ-1)·d + y1·t``                       decay to 2^-7
``L_i`` learning signal                ``y2 = η·L_i``, the third factor from the host's readout   exact, 1 step late
``ΔW_ij = -η Σ_t L_i ē_ij``            ``dw = -y2·d`` every epoch (``t_epoch = 1``)              online
=====================================  =====================================================  ==================

(``b = 1-dv``, ``κ = 1 - d_readout``; every product carries Lava's ``u0`` dependency, i.e. it is
evaluated every epoch, except ``y0·t``, evaluated when the postsynaptic neuron spiked.)  What is
approximated, and by how much (``tests/test_onchip.py`` and ``neuro reproduce onchip`` measure each):

- **epoch granularity**: the chip sums over time only by writing the weight every epoch, so the
  weights change *during* the trial (online e-prop) and trial after trial, while the torch rule
  sums the whole batch with frozen weights and steps once.  ``t_epoch = 1`` is needed: a longer
  epoch evaluates the products once per epoch (at its last step, or at spike times), so the
  product ``L_i[t] ē_ij[t]`` of two time-varying factors cannot be summed within an epoch.
- **timing**: the learning signal reaches the synapse one step late (the host's readout answers
  after the spikes), so ``dw`` of epoch t+1 uses ``L[t] ē[t]``; a trial needs one extra step.
- **literals**: a product's scale in a Lava rule is a 4-bit mantissa times ``2^e`` with ``e >= -7``
  (``lava/magma/core/learning/product_series.py``, in float too), so the tags' decays ``b - 1``,
  ``-b`` and ``κ - 1`` are written as multiples of ``2^-7`` (sums of products); the learning rate
  cannot be a literal at all and rides on the third factor.
- **y decay**: Lava's 3F rule decays the y values by ``exp(-1/65535)`` per epoch (the largest
  16-bit time constant stands for "no decay"); the neuron sends ``y·exp(1/65535)`` to cancel it.
- **pseudo-derivative**: exact in float (the neuron computes it); a 7-bit ``y1`` in fixed point.
- **fixed point** (``FixedPoint``): traces 7 bit (``x1``), tags 8 bit, y values 7 bit (the
  signed learning signal would be split into ``y2 = L⁺`` and ``y3 = L⁻``: Loihi's traces are
  unsigned), weights on the 8-bit grid of ``loihi_quantization``, with stochastic (Loihi's) or
  nearest rounding at every write; scales are set so that nothing saturates at one spike per step.
- **the product of the two filters**: with separable traces only (no tags), ``ε^v_j`` would be
  ``(a·x1 - b·x2)/(a-b)`` from two presynaptic traces with the synaptic and membrane time
  constants (partial fractions of the cascade), exact without the reset but blind to it: the
  reset factor ``κ_i = 1 - s_i`` is postsynaptic, so ``ε^v_ij`` is per synapse and needs a tag.
  ``ChipEprop(separable=True)`` drops it; ``tests/test_onchip.py`` measures what that costs.

What the chip cannot do (refused by name, ``refuse_onchip``): learning ``W_in`` (the inputs are
analog currents computed off-chip), a trainable hidden bias, Dale's law, sparse recurrent masks,
refractoriness, a slow current, reset by subtraction.  The readout ``W_out, b_out`` learns on the
host, with its exact gradient, as in the torch rule.

This module holds the mapping, a numpy model of the chip's learning arithmetic (float and fixed
point) and the online trainer; ``backends/lava.py`` runs the same rule in Lava's simulator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neuro.lif_params import lif_constants

TRACE_BITS = 7            # Loihi's x/y traces (unsigned)
TAG_BITS = 8              # Loihi's tags (magnitude)
THIRD_FACTOR_BITS = 7     # the y values a neuron sends


class OnchipError(ValueError):
    """A network or option the chip's learning engine cannot express."""


def refuse_onchip(spec) -> None:
    """Raise ``OnchipError`` naming what Loihi's three-factor e-prop cannot express for ``spec``."""
    n = spec.neuron
    if n.model != "lif":
        raise OnchipError(f"on-chip e-prop needs LIF neurons, got neuron model {n.model!r}")
    problems = [
        (spec.input.trainable, "learning W_in (the inputs are analog currents computed off-chip); "
                               "set input.trainable = false"),
        (spec.recurrent.bias and spec.recurrent.trainable,
         "a trainable hidden bias (its eligibility is a per-neuron filter no synapse sees)"),
        (spec.dale.enabled, "Dale's law (Loihi keeps one sign mode per connection, not per presynaptic neuron)"),
        (spec.recurrent.density < 1, "a sparse recurrent mask (LearningDense would learn the absent synapses)"),
        (n.refractory > 0, "a refractory period (the eligibility needs the refractory clamp)"),
        (n.tau_syn_slow > 0, "a slow second synaptic current (Lava's LIF has one current)"),
        (n.reset == "subtract", "reset by subtraction (Lava's LIF resets v to 0)"),
        (not spec.recurrent.trainable, "a frozen recurrent matrix (there is nothing to learn on the chip)"),
    ]
    for bad, what in problems:
        if bad:
            raise OnchipError(f"cannot learn on the chip: {what}")


# -- the mapping ---------------------------------------------------------------------------------

LITERAL_STEP = 2.0 ** -7    # Lava's product scale m·2^e: |m| <= 8 (4-bit mantissa), e >= -7


def literal_value(c: float) -> float:
    """The nearest constant a Lava rule can write as a sum of products: a multiple of 2^-7 (each
    product's scale is a 4-bit mantissa times 2^e with e >= -7, ``lava/magma/core/learning/product_series.py``)."""
    return round(c / LITERAL_STEP) * LITERAL_STEP


def _terms(c: float, factors: str) -> list[str]:
    """``c · factors`` as Lava products, one per set bit of round(|c|·2^7)."""
    k = int(round(c / LITERAL_STEP))
    sign = "-" if k < 0 else "+"
    return [f"{sign} 2^{p - 7} * {factors}" for p in range(abs(k).bit_length()) if abs(k) >> p & 1]


def _rule(*parts: list[str]) -> str:
    s = " ".join(t for part in parts for t in part).strip()
    return s[2:] if s.startswith("+ ") else s


@dataclass(frozen=True)
class EpropMapping:
    """e-prop's constants for one LIF spec and the Loihi rule that computes it."""

    a: float              # synaptic decay 1 - du (trace x1)
    b: float              # membrane decay 1 - dv (tag t)
    kappa: float          # readout decay 1 - d_readout (tag d)
    v_th: float
    surrogate: str
    slope: float
    constants: str = "lava"   # "lava": the tags' decays as Lava's literals write them; "exact"
    separable: bool = False   # ε^v_j without the postsynaptic reset (what two x traces could hold)

    @property
    def leak(self) -> float:
        """The coefficient of ``t`` in ``dt`` (``b - 1``)."""
        return literal_value(self.b - 1) if self.constants == "lava" else self.b - 1

    @property
    def reset(self) -> float:
        """The coefficient of ``y0·t`` in ``dt`` (``-b``: the reset zeroes ε^v of a neuron that spiked)."""
        if self.separable:
            return 0.0
        return literal_value(self.b) if self.constants == "lava" else self.b

    @property
    def readout_leak(self) -> float:
        """The coefficient of ``d`` in ``dd`` (``κ - 1``)."""
        return literal_value(self.kappa - 1) if self.constants == "lava" else self.kappa - 1

    @classmethod
    def from_spec(cls, spec, constants: str = "lava", separable: bool = False) -> "EpropMapping":
        refuse_onchip(spec)
        if constants not in ("lava", "exact"):
            raise ValueError(f"constants must be 'lava' or 'exact', got {constants!r}")
        c = lif_constants(spec.neuron, spec.dt)
        return cls(a=1 - c.du, b=1 - c.dv, kappa=1 - c.d_readout, v_th=spec.neuron.v_th,
                   surrogate=spec.neuron.surrogate, slope=spec.neuron.surrogate_slope, constants=constants,
                   separable=separable)

    @property
    def x1_tau(self) -> float:
        """Lava's trace time constant for which ``exp(-1/τ) = 1 - du``."""
        return -1.0 / math.log(self.a)

    def pseudo_derivative(self, v: np.ndarray) -> np.ndarray:
        """ψ(v - v_th), snnTorch's surrogate derivative (the neuron's ``y1``)."""
        x = v - self.v_th
        if self.surrogate == "fast_sigmoid":
            return 1.0 / (self.slope * np.abs(x) + 1.0) ** 2
        return (self.slope / 2) / (1 + (np.pi / 2 * self.slope * x) ** 2)

    @property
    def psi_max(self) -> float:
        return 1.0 if self.surrogate == "fast_sigmoid" else self.slope / 2

    def rules(self) -> dict:
        """Lava rule strings (``dw``, ``dt``, ``dd``); the learning rate rides on the third factor
        (``y2 = η·L``: a product's scale cannot go below 2^-7)."""
        if self.constants != "lava":
            raise ValueError("only constants='lava' can be written as a Lava rule")
        return {
            "dw": "-u0 * y2 * d",
            "dt": _rule(_terms(self.leak, "u0 * t"), _terms(-self.reset, "y0 * t"), ["+ u0 * x1"]),
            "dd": _rule(_terms(self.readout_leak, "u0 * d"), ["+ u0 * y1 * t"]),
        }

    def table(self) -> list[tuple[str, str, str]]:
        """(torch e-prop term, Lava trace / factor, how exact) rows, for reports."""
        return [
            ("ε^u_j = (1-du) ε^u_j + s_j", f"x1: impulse 1, tau = {self.x1_tau:.4f}", "exact"),
            ("ε^v_ij = (1-dv)(1-s_i) ε^v_ij + ε^u_j", "tag t: dt = (b-1) t - b y0 t + x1", "decays to 2^-7"),
            ("ψ_i (surrogate derivative)", "y1, sent by the neuron", "exact"),
            ("ē_ij = κ ē_ij + ψ_i ε^v_ij", "tag d: dd = (κ-1) d + y1 t", "decay to 2^-7"),
            ("L_i = Σ_k B_ik ∂loss/∂y_k", "y2 = η L_i (third factor, from the host readout)", "exact, one step late"),
            ("ΔW_ij = -η Σ_t L_i ē_ij", "dw = -y2 d, t_epoch = 1", "online: weights move within the trial"),
        ]


# -- the host side: readout error per step ------------------------------------------------------------

def step_error(kind: str, y: np.ndarray, target, mask: float, norm: float) -> np.ndarray:
    """∂loss/∂y at one step of one trial, for the tasks' masked mean losses (``tasks/base.py``):
    cross-entropy (classification, ``target`` an index) or squared error (regression)."""
    if mask == 0:
        return np.zeros_like(y)
    if kind == "regression":
        return 2.0 * (y - np.asarray(target)) / y.shape[-1] * mask / norm
    p = np.exp(y - y.max())
    p /= p.sum()
    p[int(target)] -= 1.0
    return p * mask / norm


def step_loss(kind: str, y: np.ndarray, target, mask: float, norm: float) -> float:
    if mask == 0:
        return 0.0
    if kind == "regression":
        return float(((y - np.asarray(target)) ** 2).mean() * mask / norm)
    m = y.max()
    return float((m + np.log(np.exp(y - m).sum()) - y[int(target)]) * mask / norm)


# -- fixed point ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FixedPoint:
    """Bit widths of the chip's learning arithmetic (Loihi's, as in Lava's bit-approximate engine)."""

    trace_bits: int = TRACE_BITS          # x1 (unsigned)
    tag_bits: int = TAG_BITS              # t and d (magnitude; both stay >= 0 here)
    third_factor_bits: int = THIRD_FACTOR_BITS   # y1 = ψ, y2/y3 = L⁺/L⁻
    weight_bits: int = 8                  # the recurrent weights' grid (loihi_quantization)
    rounding: str = "stochastic"          # "stochastic" (Loihi) or "nearest"

    def __post_init__(self):
        for name in ("trace_bits", "tag_bits", "third_factor_bits"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 2 <= v <= 24):
                raise ValueError(f"{name} must be an integer in [2, 24], got {v!r}")
        if not (isinstance(self.weight_bits, int) and 2 <= self.weight_bits <= 8):
            raise ValueError(f"weight_bits must be an integer in [2, 8], got {self.weight_bits!r}")
        if self.rounding not in ("stochastic", "nearest"):
            raise ValueError(f"rounding must be 'stochastic' or 'nearest', got {self.rounding!r}")


class _Quantizer:
    def __init__(self, fp: FixedPoint, rng: np.random.Generator):
        self.fp, self.rng = fp, rng

    def round(self, x: np.ndarray) -> np.ndarray:
        if self.fp.rounding == "nearest":
            return np.rint(x)
        f = np.floor(x)
        return f + (self.rng.random(x.shape) < (x - f))

    def level(self, x: np.ndarray, scale: float, bits: int, signed: bool = False) -> np.ndarray:
        """``x`` (real) on an integer grid of ``bits`` magnitude bits at ``scale`` levels per unit, back in real units."""
        top = 2 ** bits - 1
        q = np.clip(self.round(x * scale), -top if signed else 0, top)
        return q / scale


# -- the chip: online e-prop on one trial ---------------------------------------------------------------

class ChipEprop:
    """The chip's learning arithmetic in numpy: one LIF network learning ``W_rec`` online with the
    three-factor rule of ``EpropMapping`` (the same epoch order as Lava's ``LearningDense``: test
    ``test_onchip_lava``), the readout learning on the host.

    precision: ``"float"`` or ``"fixed"`` (``fixed``: a ``FixedPoint``; the neuron dynamics stay in
    float64 with the weights on Loihi's grid — the quantization study measures the integer state).
    eta: learning rate per trial for ``W_rec`` (``lr / batch`` matches the torch rule's batch mean);
    eta_out: the host's learning rate for ``W_out, b_out`` per trial.
    """

    def __init__(self, spec, weights, precision: str = "float", fixed: FixedPoint | None = None, seed: int = 0,
                 constants: str = "lava", separable: bool = False):
        if precision not in ("float", "fixed"):
            raise ValueError(f"precision must be 'float' or 'fixed', got {precision!r}")
        self.map = EpropMapping.from_spec(spec, constants, separable)
        self.spec, self.precision = spec, precision
        self.fixed = fixed or FixedPoint() if precision == "fixed" else None
        self.q = _Quantizer(self.fixed, np.random.default_rng(seed)) if self.fixed else None
        w = weights
        self.W_in = np.asarray(w.W_in, float) * np.asarray(w.mask_in, float)
        self.W = np.asarray(w.W_rec, float).copy()
        self.W_out = np.asarray(w.W_out, float).copy()
        self.b = np.asarray(w.b, float) if spec.recurrent.bias else np.zeros(spec.n_hidden)
        self.b_out = np.asarray(w.b_out, float).copy() if spec.readout.bias else np.zeros(spec.n_outputs)
        self.B = None if spec.feedback.kind != "random" else np.asarray(w.B, float)
        c = lif_constants(spec.neuron, spec.dt)
        self.du, self.dv, self.dr = c.du, c.dv, c.d_readout
        if self.fixed:
            self._setup_fixed(weights)
        self.saturated = {"x1": 0, "t": 0, "d": 0, "L": 0, "w": 0, "n": 0}

    # fixed point: scales chosen so that nothing saturates at one spike per step ----------------------
    def _setup_fixed(self, weights):
        from neuro.backends.lava import loihi_quantization          # pure numpy; does not import lava
        fp, m = self.fixed, self.map
        self.quant = loihi_quantization(self.spec, weights, weight_bits=fp.weight_bits)
        top = lambda bits: 2 ** bits - 1
        eu_max = 1.0 / (1.0 - m.a)                  # one spike every step
        ev_max = eu_max / -m.leak
        eb_max = m.psi_max * ev_max / -m.readout_leak
        self.scale = {"x1": top(fp.trace_bits) / eu_max, "t": top(fp.tag_bits) / ev_max,
                      "d": top(fp.tag_bits) / eb_max, "y1": top(fp.third_factor_bits) / m.psi_max}
        q = self.quant
        self.w_unit = 2.0 ** q.weight_exp / q.scale                 # real weight per mantissa unit
        from neuro.backends.lava import weight_grid
        self.w_step, self.w_top = weight_grid(q.sign_mode, fp.weight_bits)
        self.w_bottom = -256 if q.sign_mode == "mixed" else (0 if q.sign_mode == "excitatory" else -self.w_top)
        if q.sign_mode == "inhibitory":
            self.w_bottom, self.w_top = -self.w_top, 0
        self.W_mant = q.W_rec_mant.astype(float)
        self.W = self.W_mant * self.w_unit

    def _feedback(self) -> np.ndarray:
        return self.W_out.T if self.B is None else self.B            # [N, O]

    def trial(self, x: np.ndarray, target, mask: np.ndarray, kind: str, eta: float, eta_out: float = 0.0,
              learning_signal: np.ndarray | None = None, record: bool = False, online: bool = True) -> dict:
        """Run one trial ``x [T, n_in]`` with online learning; returns ``loss``, ``outputs [T, O]``,
        ``spikes [T, N]``, ``dW`` (the total change of ``W_rec``) and, with ``record``, the per-step
        learning signal.  ``learning_signal [T, N]`` replaces the host's (for checks against torch);
        ``online=False`` keeps the forward pass on the trial's initial weights (the torch rule's
        frozen-weight sum; a chip cannot do this, the difference is the online approximation)."""
        m, fx = self.map, self.fixed
        T, N = x.shape[0], self.W.shape[0]
        a_in = x @ self.W_in.T
        norm = float(np.sum(mask))
        u = np.zeros(N); v = np.zeros(N); s = np.zeros(N); r = np.zeros(N)
        eu = np.zeros(N)                       # x1 (ε^u of the next step)
        ev = np.zeros((N, N))                  # tag t: ε^v_ij
        eb = np.zeros((N, N))                  # tag d: ē_ij
        W0 = self.W.copy()
        W_used = [self.W.copy(), self.W.copy()]       # the Dense computes with the weights of two steps back
        L_prev = np.zeros(N)
        outputs, spikes, Ls, loss = np.zeros((T, self.W_out.shape[0])), np.zeros((T, N)), np.zeros((T, N)), 0.0
        dW_out, db_out = np.zeros_like(self.W_out), np.zeros_like(self.b_out)
        if fx is not None:
            if kind != "classification":
                raise OnchipError("cannot learn on the chip in fixed point: the third factor's 7-bit scale needs a "
                                  "bounded readout error (classification tasks only)")
            # |err_k| <= mask/norm (softmax - one-hot), so |L_i| <= Σ_k |B_ik| / norm: no saturation
            bound = float(np.abs(self._feedback()).sum(1).max() * np.max(mask) / norm) or 1.0
            L_scale = (2 ** fx.third_factor_bits - 1) / bound
        for t in range(T + 1):
            if t < T:
                cur = a_in[t] + W_used[0] @ s
                u = (1 - self.du) * u + cur
                v = (1 - self.dv) * v + u + self.b
                s_new = (v > m.v_th).astype(float)
                psi = m.pseudo_derivative(v)
                v = v * (1 - s_new)
                r = (1 - self.dr) * r + s_new
                y = self.W_out @ r + self.b_out
                err = step_error(kind, y, target[t], float(mask[t]), norm)
                loss += step_loss(kind, y, target[t], float(mask[t]), norm)
                L = self._feedback() @ err if learning_signal is None else np.asarray(learning_signal[t], float)
                outputs[t], spikes[t], Ls[t] = y, s_new, L
                dW_out += np.outer(err, r)
                db_out += err
            else:                              # the extra epoch that applies the last step's update
                s_new, psi, L = np.zeros(N), np.zeros(N), np.zeros(N)
            # -- the learning engine, one epoch (all products read the old tags) --------------------
            eu_next = m.a * eu + s_new                                            # x1
            if fx is None:
                ev_new = (1 + m.leak - m.reset * s_new)[:, None] * ev + eu_next[None, :]   # tag t
                eb_new = (1 + m.readout_leak) * eb + psi[:, None] * ev                      # tag d
                dW = -eta * L_prev[:, None] * eb                                  # dw = -η y2 d
                self.W = self.W + dW
            else:
                top = lambda bits: 2 ** bits - 1
                raw = m.a * eu + s_new                                             # decay, then impulse
                self.saturated["x1"] += int(np.sum(raw * self.scale["x1"] > top(fx.trace_bits)))
                eu_next = self.q.level(raw, self.scale["x1"], fx.trace_bits)
                psi_q = self.q.level(psi, self.scale["y1"], fx.third_factor_bits)
                raw_t = (1 + m.leak - m.reset * s_new)[:, None] * ev + eu_next[None, :]
                raw_d = (1 + m.readout_leak) * eb + psi_q[:, None] * ev
                self.saturated["t"] += int(np.sum(raw_t * self.scale["t"] > top(fx.tag_bits)))
                self.saturated["d"] += int(np.sum(raw_d * self.scale["d"] > top(fx.tag_bits)))
                ev_new = self.q.level(raw_t, self.scale["t"], fx.tag_bits)
                eb_new = self.q.level(raw_d, self.scale["d"], fx.tag_bits)
                step = self.q.round(-eta * L_prev[:, None] * eb / (self.w_unit * self.w_step)) * self.w_step
                new = self.W_mant + step
                self.saturated["w"] += int(np.sum((new < self.w_bottom) | (new > self.w_top)))
                self.W_mant = np.clip(new, self.w_bottom, self.w_top)
                self.W = self.W_mant * self.w_unit
                self.saturated["n"] += N * N
            eu, ev, eb = eu_next, ev_new, eb_new
            s = s_new
            L_prev = self.q.level(L, L_scale, fx.third_factor_bits, signed=True) if fx is not None else L
            if online:
                W_used = [W_used[1], self.W.copy()]
        self.W_out = self.W_out - eta_out * dW_out
        self.b_out = self.b_out - eta_out * db_out if self.spec.readout.bias else self.b_out
        out = {"loss": loss, "outputs": outputs, "spikes": spikes, "dW": self.W - W0}
        if record:
            out["learning_signal"] = Ls
        return out


# -- training on the chip -----------------------------------------------------------------------------------

@dataclass
class ChipHistory:
    loss: list                 # per iteration: mean loss of its trials (each computed during its own trial)
    accuracy: list
    weights: object            # the final Weights (W_rec as learned, W_out/b_out from the host)


def train_onchip(spec, weights, task, iterations: int, batch_size: int, lr: float, precision: str = "float",
                 seed: int = 0, fixed: FixedPoint | None = None, constants: str = "lava",
                 progress: bool = False) -> ChipHistory:
    """Train ``W_rec`` on the chip (``ChipEprop``) and the readout on the host, trial after trial.

    Iteration ``it`` sees the trials of ``task.batch(batch_size, seed=(seed, it))`` (the batches
    ``neuro.train`` draws), one after another, each with learning rate ``lr / batch_size`` (the torch
    rule's batch mean as a sum of per-trial steps) for ``W_rec`` (on the chip, online) and the readout
    (on the host, at the end of each trial).  Plain gradient steps: a chip has no Adam."""
    from neuro.progress import tqdm
    import torch
    chip = ChipEprop(spec, weights, precision=precision, fixed=fixed, seed=seed, constants=constants)
    eta = lr / batch_size
    loss_curve, acc_curve = [], []
    for it in tqdm(range(iterations), disable=not progress, leave=False, desc=f"chip {precision}"):
        batch = task.batch(batch_size, seed=(seed, it), dtype=torch.float64)
        x, tg, m = batch.inputs.numpy(), batch.targets.numpy(), batch.mask.numpy()
        losses, outs = [], np.zeros((x.shape[0], x.shape[1], spec.n_outputs))
        for b in range(x.shape[1]):
            r = chip.trial(x[:, b], tg[:, b], m[:, b], task.kind, eta=eta, eta_out=eta)
            losses.append(r["loss"])
            outs[:, b] = r["outputs"]
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(f"the chip's loss became non-finite at iteration {it} (lr={lr})")
        loss_curve.append(float(np.mean(losses)))
        acc_curve.append(float(task.accuracy(torch.as_tensor(outs), batch)))
    w = weights.copy()
    w.W_rec, w.W_out, w.b_out = chip.W.copy(), chip.W_out.copy(), chip.b_out.copy()
    return ChipHistory(loss_curve, acc_curve, w)


def lava_trial(spec, weights, inputs, target=None, mask=None, kind: str = "classification", eta: float = 1e-3,
               learning_signal=None, precision: str = "float") -> dict:
    """One trial of this rule in Lava's simulator (``neuro.backends.lava.onchip_eprop_trial``): the
    recurrent weights learn online on a ``LearningDense`` with the host readout in the loop."""
    from neuro.backends.lava import onchip_eprop_trial
    return onchip_eprop_trial(spec, weights, inputs, EpropMapping.from_spec(spec), step_error, target, mask, kind,
                              eta, learning_signal, precision)
