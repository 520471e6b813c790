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
- **fixed point** (``FixedPoint``, ``FixedPlan``): Lava's bit-approximate engine
  (``LearningConnectionModelBitApproximate``), which ``ChipEprop(precision="fixed")`` computes in numpy
  and ``lava_trial(precision="fixed")`` runs in Lava: x1 7 bit (integer impulse ``S_x``), tags 8 bit
  plus sign, y values 7 bit (the signed learning signal split into ``y2 = L⁺`` and ``y3 = L⁻``: Loihi's
  traces are unsigned), weights as 8-bit mantissas (the initial ones on ``loihi_quantization``'s
  grid, learned ones on every integer); a product of a y value and a tag loses its 5 lowest bits
  (the 15-bit accumulator), every write rounds stochastically; the learning rate is ``S_L·c_w``
  (the third factor's scale times the ``dw`` product's scale).  Scales keep x1 and t unsaturated at
  one spike per step, d at a quarter of that.  The numpy engine with ``FixedPoint(random="lava")``
  draws Lava's random numbers and equals Lava's run bit for bit; with independent draws (the default,
  what the study runs) it differs from Lava by rounding noise only (``tests/test_onchip.py`` bounds both
  deviations, and the deviation from the torch e-prop).
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

# Lava's bit-approximate learning engine (``lava/magma/core/learning/constants.py``,
# ``learning_rule_applier.py``): a product's factors are clipped to their widths (traces and y values
# 7 bit, tags and weights 9 bit with the sign), multiplied with the scale's 4-bit mantissa and shifted
# right by (sum of widths - 15) bits before the scale's exponent applies: a y value times a tag
# (7 + 9 + 4 = 20 bits) loses its 5 lowest bits (a floor), a tag or trace times a constant loses none.
PRODUCT_SHIFT = 5
Y_DECAY = math.exp(-1.0 / 65535)     # Lava's 3F rule decays the y values with tau = 2^16 - 1 every epoch
# d's scale: 4x finer than "never saturates" (the readout-filtered eligibility reaches its worst case only
# if a neuron fires every step; in the 2AF network d saturates in 0.1-0.4 % of synapse-steps, and a
# finer d keeps the products y·d above the right shift's floor)
D_HEADROOM = 4


@dataclass(frozen=True)
class FixedPoint:
    """Bit widths of the chip's learning arithmetic (Loihi's, as in Lava's bit-approximate engine)."""

    trace_bits: int = TRACE_BITS          # x1 (unsigned)
    tag_bits: int = TAG_BITS              # t and d (magnitude; both stay >= 0 here)
    third_factor_bits: int = THIRD_FACTOR_BITS   # y1 = ψ, y2/y3 = L⁺/L⁻
    weight_bits: int = 8                  # the recurrent weights' grid (loihi_quantization)
    rounding: str = "stochastic"          # "stochastic" (Loihi) or "nearest"
    random: str = "independent"           # "independent" draws, or "lava": Lava's shared draws (_Quantizer)

    def __post_init__(self):
        for name in ("trace_bits", "tag_bits", "third_factor_bits"):
            v = getattr(self, name)
            if not (isinstance(v, int) and 2 <= v <= 24):
                raise ValueError(f"{name} must be an integer in [2, 24], got {v!r}")
        if not (isinstance(self.weight_bits, int) and 2 <= self.weight_bits <= 8):
            raise ValueError(f"weight_bits must be an integer in [2, 8], got {self.weight_bits!r}")
        if self.rounding not in ("stochastic", "nearest"):
            raise ValueError(f"rounding must be 'stochastic' or 'nearest', got {self.rounding!r}")
        if self.random not in ("independent", "lava"):
            raise ValueError(f"random must be 'independent' or 'lava', got {self.random!r}")

    @property
    def is_loihi(self) -> bool:
        """The widths of Loihi's engine (what Lava's fixed-point learning models simulate)."""
        return (self.trace_bits, self.tag_bits, self.third_factor_bits) == (TRACE_BITS, TAG_BITS, THIRD_FACTOR_BITS)


def _literal_table() -> list[tuple[float, int, int]]:
    """Every scale one Lava product can carry, m·2^e with 1 <= m <= 7, -7 <= e <= 8, finest e first."""
    return sorted({(m * 2.0 ** e, m, e) for e in range(-7, 9) for m in range(1, 8)}, key=lambda r: (r[0], r[2]))


def product_scale(c: float, at_most: bool) -> tuple[int, int]:
    """(m, e) of the largest scale ``m·2^e <= c`` (``at_most``) or the smallest ``>= c``, at the finest
    exponent (a finer exponent is a finer floor after the product's right shift)."""
    table = _literal_table()
    if at_most:
        fits = [r for r in table if r[0] <= c * (1 + 1e-12)]
        if not fits:
            raise OnchipError(f"cannot learn on the chip in fixed point: a product scale of {c:.3g} is below "
                              f"Lava's smallest, 2^-7")
        v = fits[-1][0]
    else:
        fits = [r for r in table if r[0] >= c * (1 - 1e-12)]
        if not fits:
            raise OnchipError(f"cannot learn on the chip in fixed point: a product scale of {c:.3g} is above "
                              f"Lava's largest, 7·2^8 (the learning rate is too large for the weight grid)")
        v = fits[0][0]
    m, e = min(((m, e) for val, m, e in table if val == v), key=lambda r: r[1])
    return m, e


@dataclass(frozen=True)
class FixedPlan:
    """One trial's integer scales on Loihi's learning engine (shared by ``ChipEprop(precision="fixed")``
    and Lava's fixed-point ``LearningDense``).

    ``x1 = S_x·ε^u`` (the trace's integer impulse ``S_x``), ``t = S_t·ε^v`` with ``S_t = c_x·S_x``
    (``dt`` adds ``c_x·x1``, ``c_x`` a multiple of 2^-7), ``y1 = S_y·ψ``, ``d = S_d·ē`` with
    ``S_d = S_y·S_t·c_d/32`` (``dd`` adds ``c_d·y1·t``, shifted right by 5), ``y2 - y3 = S_L·L`` and
    ``Δw = c_w·(y3 - y2)·d/32`` weight mantissa units, so that ``η = w_unit·S_d·S_L·c_w/32``.  Scales
    are chosen so that nothing saturates at one spike per step and ``|L|`` below its bound."""

    x1_impulse: int
    c_x: float                 # t per x1 (a multiple of 2^-7)
    y1_scale: float
    d_mant: int
    d_exp: int
    w_mant: int
    w_exp: int
    L_scale: float
    w_unit: float              # real weight per mantissa unit

    @property
    def t_scale(self) -> float:
        return self.c_x * self.x1_impulse

    @property
    def c_d(self) -> float:
        return self.d_mant * 2.0 ** self.d_exp

    @property
    def c_w(self) -> float:
        return self.w_mant * 2.0 ** self.w_exp

    @property
    def d_scale(self) -> float:
        return self.y1_scale * self.t_scale * self.c_d / 2 ** PRODUCT_SHIFT

    @classmethod
    def build(cls, m: "EpropMapping", fp: FixedPoint, w_unit: float, eta: float, L_bound: float) -> "FixedPlan":
        top = lambda bits: 2 ** bits - 1
        x1_impulse = int(top(fp.trace_bits) * (1 - m.a))             # ε^u <= 1/(1-a): one spike every step
        if x1_impulse < 1:
            raise OnchipError("cannot learn on the chip in fixed point: the synaptic trace's impulse rounds to 0")
        c_x = math.floor(top(fp.tag_bits) * -m.leak / top(fp.trace_bits) / LITERAL_STEP) * LITERAL_STEP
        if c_x <= 0:
            raise OnchipError("cannot learn on the chip in fixed point: the membrane tag's input scale rounds to 0")
        y1_scale = top(fp.third_factor_bits) / m.psi_max
        # d <= c_d·y1_max·t_max/32 / (1 - κ_lava) <= tag top / D_HEADROOM
        d_mant, d_exp = product_scale(D_HEADROOM * 2 ** PRODUCT_SHIFT * -m.readout_leak / top(fp.third_factor_bits), at_most=True)
        plan = cls(x1_impulse, c_x, y1_scale, d_mant, d_exp, 1, 0, 1.0, w_unit)
        # η = w_unit·S_d·S_L·c_w/32 with S_L <= y_top/L_bound: the smallest c_w that keeps |L| unsaturated
        target = 2 ** PRODUCT_SHIFT * eta / (w_unit * plan.d_scale)
        w_mant, w_exp = product_scale(target * L_bound / top(fp.third_factor_bits), at_most=False)
        if w_exp == -7:        # the largest mantissa at the finest exponent: a coarser L (unbiased rounding)
            w_mant = 7         # buys products further above the right shift's floor (a bias)
        L_scale = target / (w_mant * 2.0 ** w_exp)
        return cls(x1_impulse, c_x, y1_scale, d_mant, d_exp, w_mant, w_exp, L_scale, w_unit)

    def rules(self, m: "EpropMapping") -> dict:
        """The Lava rule strings of the fixed-point engine (``y2 = L⁺``, ``y3 = L⁻``: traces are unsigned)."""
        w = f"{self.w_mant} * 2^{self.w_exp}"
        return {
            "dw": f"-{w} * u0 * y2 * d + {w} * u0 * y3 * d",
            "dt": _rule(_terms(m.leak, "u0 * t"), _terms(-m.reset, "y0 * t"), _terms(self.c_x, "u0 * x1")),
            "dd": _rule(_terms(m.readout_leak, "u0 * d"), [f"+ {self.d_mant} * 2^{self.d_exp} * u0 * y1 * t"]),
        }


class _Quantizer:
    """The chip's roundings.  ``random="independent"``: one draw per rounded value.  ``random="lava"``:
    Lava's bit-approximate engine's draws — one number per epoch for all synaptic variables (its
    ``ConnVarRandom``, seed 2), one per epoch for all x traces and one for all y traces (``TraceRandom``,
    seeds ``seed`` and ``seed + 2``, advanced twice per step), and the neuron program's own generator for
    the y values it sends (``seed``) — so that the numpy engine reproduces a Lava run bit for bit."""

    def __init__(self, fp: FixedPoint, seed: int):
        self.fp, self.rng = fp, np.random.default_rng(seed)
        if fp.random == "lava":
            self._conn, self._x, self._y = (np.random.default_rng(k) for k in (2, seed, seed + 2))
            for g in (self._conn, self._x, self._y):
                g.random()                                    # the draw at construction
            self.epoch()

    def epoch(self) -> None:
        """Lava advances its generators: the trace ones twice per step, the synaptic one per epoch."""
        if self.fp.random == "lava":
            self._r_x = (self._x.random(), self._x.random())[1]
            self._r_y = (self._y.random(), self._y.random())[1]
            self._r_syn = self._conn.random()

    def _round(self, x: np.ndarray, shared: float | None) -> np.ndarray:
        if self.fp.rounding == "nearest":
            return np.rint(x)
        f = np.floor(x)
        r = self.rng.random(np.shape(x)) if shared is None else shared
        return f + (r < (x - f))

    def round(self, x: np.ndarray) -> np.ndarray:
        """A synaptic variable (w, t, d) after the learning rule."""
        return self._round(x, self._r_syn if self.fp.random == "lava" else None)

    def trace(self, x: np.ndarray) -> np.ndarray:
        """The x1 trace after its decay."""
        return self._round(x, self._r_x if self.fp.random == "lava" else None)

    def integer(self, x: np.ndarray, bits: int) -> np.ndarray:
        """``x`` rounded onto the unsigned ``bits`` grid (a y value the neuron sends)."""
        return np.clip(self._round(x, None), 0, 2 ** bits - 1)

    def y_decay(self, y: np.ndarray) -> np.ndarray:
        """Lava's 3F y decay by exp(-1/65535) per epoch, rounded (a y of 127 loses 1 with p = 0.2 %)."""
        return self._round(Y_DECAY * y, self._r_y if self.fp.random == "lava" else None)


# -- the chip: online e-prop on one trial ---------------------------------------------------------------

class ChipEprop:
    """The chip's learning arithmetic in numpy: one LIF network learning ``W_rec`` online with the
    three-factor rule of ``EpropMapping`` (the same epoch order as Lava's ``LearningDense``: test
    ``test_onchip_lava``), the readout learning on the host.

    precision: ``"float"`` or ``"fixed"`` (``fixed``: a ``FixedPoint``; the learning engine in Lava's
    integer arithmetic, the neuron dynamics in float64 on the weights' integer mantissas — the
    quantization study measures the integer neuron state).
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
        self.q = _Quantizer(self.fixed, seed) if self.fixed else None
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

    # fixed point: Lava's integer engine on the weights' 8-bit mantissas ----------------------------
    def _setup_fixed(self, weights):
        from neuro.backends.lava import loihi_quantization          # pure numpy; does not import lava
        self.quant = q = loihi_quantization(self.spec, weights, weight_bits=self.fixed.weight_bits)
        self.w_unit = 2.0 ** q.weight_exp / q.scale                 # real weight per mantissa unit
        # learned weights live on the full 8-bit grid (Lava's clip_weights), whatever the initial grid
        self.w_bottom, self.w_top = {"mixed": (-256, 255), "excitatory": (0, 255),
                                     "inhibitory": (-255, 0)}[q.sign_mode]
        self.W_mant = q.W_rec_mant.astype(float)
        self.W = self.W_mant * self.w_unit

    def plan(self, kind: str, mask: np.ndarray, eta: float) -> FixedPlan:
        """The integer scales of one trial (``FixedPlan``): |L| <= its bound for this trial's mask."""
        if kind != "classification":
            raise OnchipError("cannot learn on the chip in fixed point: the third factor's 7-bit scale needs a "
                              "bounded readout error (classification tasks only)")
        if mask is None or not np.sum(mask) > 0:
            raise ValueError("the chip's fixed-point scales need the trial's loss mask (with a positive sum)")
        if not (np.isfinite(eta) and eta > 0):
            raise ValueError(f"eta must be a positive number in fixed point, got {eta!r}")
        # softmax - one-hot: |err_k| <= mask/norm and Σ_k |err_k| <= 2·mask/norm
        B = np.abs(self._feedback())
        bound = float(np.minimum(B.sum(1), 2 * B.max(1)).max() * np.max(mask) / float(np.sum(mask))) or 1.0
        return FixedPlan.build(self.map, self.fixed, self.w_unit, eta, bound)

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
        if fx is not None:
            P, qz = self.plan(kind, mask, eta), self.q
            top_x, top_y, top_tag = 2 ** fx.trace_bits - 1, 2 ** fx.third_factor_bits - 1, 2 ** fx.tag_bits - 1
            x_decay = float(np.exp(-1.0 / np.float64(m.x1_tau)))        # as Lava computes it
            current = lambda W_m, s_: (W_m @ s_) * 2.0 ** self.quant.weight_exp / self.quant.scale
            W_used = [self.W_mant.copy(), self.W_mant.copy()]
        else:
            current = lambda W_, s_: W_ @ s_
            W_used = [self.W.copy(), self.W.copy()]       # the Dense computes with the weights of two steps back
        L_prev = np.zeros(N)
        outputs, spikes, Ls, loss = np.zeros((T, self.W_out.shape[0])), np.zeros((T, N)), np.zeros((T, N)), 0.0
        dW_out, db_out = np.zeros_like(self.W_out), np.zeros_like(self.b_out)
        for t in range(T + 1):
            if t < T:
                cur = a_in[t] + current(W_used[0], s)
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
            if fx is None:
                eu_next = m.a * eu + s_new                                            # x1
                ev_new = (1 + m.leak - m.reset * s_new)[:, None] * ev + eu_next[None, :]   # tag t
                eb_new = (1 + m.readout_leak) * eb + psi[:, None] * ev                      # tag d
                dW = -eta * L_prev[:, None] * eb                                  # dw = -η y2 d
                self.W = self.W + dW
            else:
                # integers as Lava's bit-approximate engine computes them (FixedPlan's scales); eu, ev, eb
                # hold x1, t, d; every write is rounded (stochastically on Loihi) and clipped to its width.
                # The neuron sends y1 = ψ·S_y, y2 = L⁺·S_L, y3 = L⁻·S_L (L of the previous step)
                y1 = qz.integer(psi * P.y1_scale, fx.third_factor_bits)
                self.saturated["L"] += int(np.sum(np.abs(L_prev) * P.L_scale > top_y))
                y2 = qz.integer(np.maximum(L_prev, 0) * P.L_scale, fx.third_factor_bits)
                y3 = qz.integer(np.maximum(-L_prev, 0) * P.L_scale, fx.third_factor_bits)
                raw_x = qz.trace(x_decay * eu) + P.x1_impulse * s_new
                self.saturated["x1"] += int(np.sum(raw_x > top_x))
                eu_next = np.clip(raw_x, 0, top_x)
                y1, y2, y3 = qz.y_decay(y1), qz.y_decay(y2), qz.y_decay(y3)
                raw_t = qz.round((1 + m.leak - m.reset * s_new)[:, None] * ev + P.c_x * eu_next[None, :])
                raw_d = qz.round((1 + m.readout_leak) * eb + np.floor(y1[:, None] * ev * P.d_mant / 2 ** PRODUCT_SHIFT)
                                 * 2.0 ** P.d_exp)
                self.saturated["t"] += int(np.sum(raw_t > top_tag))
                self.saturated["d"] += int(np.sum(raw_d > top_tag))
                ev_new = np.clip(raw_t, -top_tag - 2, top_tag)
                eb_new = np.clip(raw_d, 0, top_tag)
                dw = (np.floor(-y2[:, None] * eb * P.w_mant / 2 ** PRODUCT_SHIFT)
                      + np.floor(y3[:, None] * eb * P.w_mant / 2 ** PRODUCT_SHIFT)) * 2.0 ** P.w_exp
                new = qz.round(self.W_mant + dw)
                self.saturated["w"] += int(np.sum((new < self.w_bottom) | (new > self.w_top)))
                self.W_mant = np.clip(new, self.w_bottom, self.w_top)
                self.W = self.W_mant * self.w_unit
                self.saturated["n"] += N * N
                qz.epoch()
            L_prev = L
            eu, ev, eb = eu_next, ev_new, eb_new
            s = s_new
            if online:
                W_used = [W_used[1], (self.W if fx is None else self.W_mant).copy()]
        self.W_out = self.W_out - eta_out * dW_out
        self.b_out = self.b_out - eta_out * db_out if self.spec.readout.bias else self.b_out
        out = {"loss": loss, "outputs": outputs, "spikes": spikes, "dW": self.W - W0}
        if fx is not None:
            out.update(plan=P, tag_t=ev, tag_d=eb)
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
               learning_signal=None, precision: str = "float", seed: int = 0) -> dict:
    """One trial of this rule in Lava's simulator (``neuro.backends.lava.onchip_eprop_trial``): the
    recurrent weights learn online on a ``LearningDense`` with the host readout in the loop.

    ``precision="fixed"``: Lava's bit-approximate learning engine (``Loihi2SimCfg(select_tag="fixed_pt")``)
    with the integer scales of ``ChipEprop(precision="fixed")`` (``FixedPlan``; ``seed`` seeds Lava's
    trace rounding and the neuron's y rounding).  Lava's engine has Loihi's widths only (7-bit traces and
    y values, 8-bit tags) and rounds stochastically."""
    from neuro.backends.lava import onchip_eprop_trial
    mapping = EpropMapping.from_spec(spec)
    fixed = None
    if precision == "fixed":
        if learning_signal is not None:
            raise OnchipError("cannot run a given learning signal on the chip in fixed point: its scale comes from "
                              "the host readout's error bound")
        chip = ChipEprop(spec, weights, precision="fixed")
        q = chip.quant
        c = lif_constants(spec.neuron, spec.dt)
        plan = chip.plan(kind, np.asarray(mask, float), eta)
        fixed = {"plan": plan, "rules": plan.rules(mapping), "W_mant": chip.W_mant, "weight_exp": q.weight_exp,
                 "scale": q.scale, "sign_mode": q.sign_mode, "du": c.du, "dv": c.dv, "seed": seed}
    return onchip_eprop_trial(spec, weights, inputs, mapping, step_error, target, mask, kind, eta, learning_signal,
                              precision, fixed)
