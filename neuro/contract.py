"""The backend contract: what a compiled network provides, what a rule or an analysis needs.

A backend class declares the capabilities it implements in ``provides`` (names of this
module's ``CAPABILITIES``) and the neuron model it runs in ``neuron_model``; each
capability has a runtime-checkable Protocol naming the methods and attributes it
promises, and ``verify`` holds a declaration to it.  A rule (or an analysis) declares
``needs``; ``require`` refuses a pair that does not fit in one line naming both:

    rule 'tbptt' needs truncatable runs; backend 'lava' does not provide them

Capabilities, with the options and methods they stand for:

``runs``            ``run(inputs) -> Trajectory`` and ``weights()`` (``Runnable``)
``differentiable``  runs differentiable in ``trainable()`` through ``effective()``, with
                    ``readout``, ``set_weight`` and ``sample_noise`` (``Trainable``)
``truncatable``     ``run(..., detach_every=k)`` cuts the state's graph every k steps
``local``           ``run(..., detach_recurrent=True, feedback=B)``: e-prop's truncation of
                    the recurrent input and a fixed feedback matrix in the readout's backward
``steppable``       ``state_size``, ``initial_state``, ``step``, ``jacobian_vp`` on a packed
                    state (``SteppableMap``; Lyapunov analysis and flossing)
``online``          ``init_state``, ``advance(state, x, extra, params)``, ``activity``,
                    ``potential``, ``online_start``, ``extra_decay`` (``OnlineModel``;
                    FORCE, full-FORCE, reward-modulated Hebbian)
``rate_map``        the leaky rate map ``h ← α h + (1-α)(W f(h) + drive) + noise`` with ``alpha``,
                    ``f``, ``fprime``, tensor states and parameters with leading sample dimensions
                    (``RateMap``; node perturbation, evolution strategies, ModProp, rate traces)
``lif_map``         the LIF map of ``neuro.lif_params`` with ``c``, ``v_th``, ``reset_zero``,
                    ``slow`` and spikes in its trajectories (``LIFMap``; LIF e-prop traces)

An option a backend cannot honour is refused by name (``refuse_options``), never dropped.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable


class ContractError(ValueError):
    """A rule, analysis or option that a backend does not support (one line, naming both)."""


@runtime_checkable
class Runnable(Protocol):
    backend: str
    neuron_model: str

    def run(self, inputs, *args, **kwargs) -> Any: ...

    def weights(self) -> Any: ...


@runtime_checkable
class Trainable(Protocol):
    def effective(self) -> dict: ...

    def trainable(self) -> dict: ...

    def set_weight(self, name: str, value) -> None: ...

    def readout(self, rates, params=None, feedback=None) -> Any: ...

    def sample_noise(self, shape, generator=None) -> Any: ...


@runtime_checkable
class SteppableMap(Protocol):
    @property
    def state_size(self) -> int: ...

    def initial_state(self, batch_size: int) -> Any: ...

    def step(self, z, x, params=None) -> Any: ...

    def jacobian_vp(self, z, V, params=None) -> Any: ...


@runtime_checkable
class OnlineModel(Protocol):
    extra_decay: float

    def init_state(self, batch_size: int) -> Any: ...

    def advance(self, state, x, extra=None, params=None) -> Any: ...

    def activity(self, state) -> Any: ...

    def potential(self, state) -> Any: ...

    def online_start(self, batch_size: int, init_std: float, generator) -> tuple: ...


@runtime_checkable
class RateMap(Protocol):
    alpha: float
    f: Callable
    fprime: Callable

    def initial_state(self, batch_size: int) -> Any: ...

    def advance(self, state, x, extra=None, params=None) -> Any: ...


@runtime_checkable
class LIFMap(Protocol):
    c: Any
    v_th: float
    reset_zero: bool
    slow: bool


# capability -> (the words a refusal uses, the pronoun for them, the Protocol it promises)
CAPABILITIES: dict[str, tuple[str, str, type | None]] = {
    "runs": ("runs", "them", Runnable),
    "differentiable": ("differentiable runs", "them", Trainable),
    "truncatable": ("truncatable runs", "them", None),
    "local": ("e-prop's locally truncated runs", "them", None),
    "steppable": ("a one-step map with Jacobian-vector products", "it", SteppableMap),
    "online": ("the online protocol", "it", OnlineModel),
    "rate_map": ("the leaky rate map", "it", RateMap),
    "lif_map": ("the LIF map", "it", LIFMap),
}

# what each capability rests on (a truncatable run must first be a differentiable one)
IMPLIES = {"differentiable": ("runs",), "truncatable": ("differentiable",), "local": ("differentiable",),
           "rate_map": ("online",)}


def backend_name(net) -> str:
    return getattr(net, "backend", None) or type(net).__name__


def declared(net_or_class) -> frozenset:
    """The capabilities a backend (instance or class) declares."""
    return frozenset(getattr(net_or_class, "provides", ()))


def verify(cls) -> None:
    """Hold a backend class's declaration to the contract: known names, implied capabilities
    present, and the Protocol of each capability satisfied (checked on the class)."""
    have = declared(cls)
    name = getattr(cls, "backend", cls.__name__)
    unknown = sorted(have - set(CAPABILITIES))
    if unknown:
        raise ContractError(f"backend {name!r} declares unknown capabilities {unknown}; known: {sorted(CAPABILITIES)}")
    for cap in sorted(have):
        for base in IMPLIES.get(cap, ()):
            if base not in have:
                raise ContractError(f"backend {name!r} declares {cap!r} but not {base!r}, which it rests on")
        proto = CAPABILITIES[cap][2]
        if proto is not None:
            missing = [m for m in _methods(proto) if not hasattr(cls, m)]
            if missing:
                raise ContractError(f"backend {name!r} declares {cap!r} but lacks {missing}")
    if not isinstance(getattr(cls, "neuron_model", None), str):
        raise ContractError(f"backend {name!r} must name its neuron_model ('rate', 'lif', …)")


def _methods(proto) -> list[str]:
    """The methods and properties a Protocol names (its annotated data members are set on
    instances and checked by ``isinstance`` there)."""
    return sorted(k for k, v in vars(proto).items()
                  if not k.startswith("_") and (callable(v) or isinstance(v, property)))


def provides(net, capability: str) -> bool:
    """Whether ``net`` declares ``capability`` (and, on an instance, satisfies its Protocol)."""
    if capability not in declared(net):
        return False
    proto = CAPABILITIES[capability][2]
    return proto is None or isinstance(net, type) or isinstance(net, proto)


def refusal(who: str, needs, net_or_class) -> str | None:
    """The one-line refusal of ``who`` (e.g. "rule 'tbptt'") on this backend, or None if it fits.

    ``needs`` is a sequence of capabilities, each of which may be a tuple of alternatives."""
    for need in needs:
        options = need if isinstance(need, tuple) else (need,)
        if any(provides(net_or_class, cap) for cap in options):
            continue
        words = " or ".join(CAPABILITIES[c][0] for c in options)
        pronoun = "either" if len(options) > 1 else CAPABILITIES[options[0]][1]
        return f"{who} needs {words}; backend {backend_name(net_or_class)!r} does not provide {pronoun}"
    return None


def require(who: str, needs, net) -> None:
    """Raise ``ContractError`` with the refusal line if ``net`` does not provide ``needs``."""
    reason = refusal(who, needs, net)
    if reason is not None:
        raise ContractError(reason)


def require_rule(rule, net) -> None:
    """Check a rule object's ``needs`` (its class attribute, or ``rule.needs_for(net)``)."""
    needs = rule.needs_for(net) if hasattr(rule, "needs_for") else getattr(rule, "needs", ())
    require(f"rule {getattr(rule, 'name', type(rule).__name__)!r}", needs, net)


def refuse_options(net, options: dict, why: str = "") -> None:
    """Refuse run options a backend cannot honour, by name (ignores options left at None/False)."""
    given = sorted(k for k, v in options.items() if v is not None and v is not False)
    if given:
        names = ", ".join(repr(k) for k in given)
        raise ContractError(f"backend {backend_name(net)!r} cannot honour the run option{'s' if len(given) > 1 else ''} "
                            f"{names}" + (f" ({why})" if why else ""))
