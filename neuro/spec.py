"""The network specification: plain data, validated, round-tripping through TOML/JSON.

A spec holds no tensors and imports no backend.  ``validate`` checks every field
and raises ``SpecError`` naming the field and the allowed range, so nothing
reaches torch unvalidated.  Time is in milliseconds.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

ACTIVATIONS = ("relu", "retanh", "tanh", "linear", "softplus")
NEURON_MODELS = ("rate", "lif")
INITS = ("normal", "uniform", "zeros", "orthogonal")
RESETS = ("zero", "subtract")
SURROGATES = ("fast_sigmoid", "atan")
FEEDBACKS = ("symmetric", "random")


class SpecError(ValueError):
    """An invalid field in a network specification; the message names the field."""


@dataclass
class NeuronSpec:
    """One population's neuron model.

    ``rate``: ``h ← α h + (1-α)(W_rec f(h) + W_in x + b) + noise`` with ``α = 1 - dt/tau``.
    ``lif``: current-based LIF (fields ``tau_mem``, ``tau_syn``…), see ``backends/lif.py``.
    """

    model: str = "rate"
    tau: float = 100.0              # ms, rate time constant
    activation: str = "relu"
    noise_std: float = 0.0          # σ of the hidden noise, scaled by sqrt(2 dt/tau)
    # LIF fields (used when model == "lif")
    tau_mem: float = 20.0           # ms
    tau_syn: float = 5.0            # ms, (fast) synaptic current
    tau_syn_slow: float = 0.0       # ms, slow synaptic current; 0 = none
    v_th: float = 1.0
    reset: str = "zero"
    refractory: float = 0.0         # ms
    surrogate: str = "fast_sigmoid"
    surrogate_slope: float = 25.0
    tau_readout: float = 20.0       # ms, exponential filter of spikes for the readout; 0 = raw spikes


@dataclass
class PopulationSpec:
    name: str = "hidden"
    size: int = 64
    neuron: NeuronSpec = field(default_factory=NeuronSpec)


@dataclass
class ConnectionSpec:
    """A projection: how it is initialized, how sparse, whether it learns.

    ``init='normal'`` draws ``N(0, gain²/(density·fan_in))`` so that after the
    fixed sparsity mask the variance is ``gain²/fan_in`` (Sussillo & Abbott 2009).
    ``init='uniform'`` draws ``U(-gain/sqrt(fan_in), gain/sqrt(fan_in))``, PyTorch's
    ``nn.Linear`` default (gain 1) that Yang & Wang's primer code uses for input and
    readout.
    """

    init: str = "normal"
    gain: float = 1.0
    density: float = 1.0
    trainable: bool = True
    bias: bool = False


@dataclass
class DaleSpec:
    """Dale's law as in Song, Yang & Wang 2016: W = |W̃| · diag(signs), signs fixed."""

    enabled: bool = False
    excitatory_fraction: float = 0.8


@dataclass
class FeedbackSpec:
    """How the readout error reaches hidden units in e-prop-like rules.

    ``symmetric`` uses ``W_outᵀ``; ``random`` a fixed matrix ``B ~ N(0, gain²/n_out)``
    (feedback alignment, Lillicrap et al. 2016; Murray 2019).
    """

    kind: str = "symmetric"
    gain: float = 1.0


@dataclass
class NetworkSpec:
    name: str = "network"
    dt: float = 20.0                # ms
    n_inputs: int = 1
    n_outputs: int = 2
    populations: list[PopulationSpec] = field(default_factory=lambda: [PopulationSpec()])
    input: ConnectionSpec = field(default_factory=lambda: ConnectionSpec(init="uniform"))
    recurrent: ConnectionSpec = field(default_factory=ConnectionSpec)
    readout: ConnectionSpec = field(default_factory=lambda: ConnectionSpec(init="uniform", bias=True))
    dale: DaleSpec = field(default_factory=DaleSpec)
    feedback: FeedbackSpec = field(default_factory=FeedbackSpec)

    # -- conveniences -------------------------------------------------------
    @property
    def n_hidden(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def neuron(self) -> NeuronSpec:
        """The neuron model of the (single) population the backends take now."""
        return self.populations[0].neuron

    @property
    def alpha(self) -> float:
        """Leak factor α = 1 - dt/τ of the rate model."""
        return 1.0 - self.dt / self.neuron.tau

    def replace(self, **changes: Any) -> "NetworkSpec":
        """A validated copy with dotted-path changes, e.g. ``replace(**{"recurrent.gain": 0.2})``."""
        data = to_dict(self)
        for path, value in changes.items():
            _set_path(data, path, value)
        return from_dict(data)


# -- validation ----------------------------------------------------------------

def _check(ok: bool, field_name: str, allowed: str, value: Any) -> None:
    if not ok:
        raise SpecError(f"{field_name} must be {allowed}, got {value!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: Any) -> bool:
    return _finite(x) and x > 0


def _validate_connection(c: ConnectionSpec, name: str) -> None:
    _check(c.init in INITS, f"{name}.init", f"one of {INITS}", c.init)
    _check(_finite(c.gain) and c.gain >= 0, f"{name}.gain", "a finite number >= 0", c.gain)
    _check(_finite(c.density) and 0 < c.density <= 1, f"{name}.density", "in (0, 1]", c.density)
    _check(isinstance(c.trainable, bool), f"{name}.trainable", "true or false", c.trainable)
    _check(isinstance(c.bias, bool), f"{name}.bias", "true or false", c.bias)


def _validate_neuron(n: NeuronSpec, name: str, dt: float) -> None:
    _check(n.model in NEURON_MODELS, f"{name}.model", f"one of {NEURON_MODELS}", n.model)
    _check(n.activation in ACTIVATIONS, f"{name}.activation", f"one of {ACTIVATIONS}", n.activation)
    _check(_finite(n.noise_std) and n.noise_std >= 0, f"{name}.noise_std", "a finite number >= 0", n.noise_std)
    if n.model == "rate":
        _check(_finite(n.tau) and n.tau >= dt, f"{name}.tau", f"a number >= dt = {dt} ms (so 0 <= α < 1)", n.tau)
        return
    _check(n.tau_readout == 0 or (_finite(n.tau_readout) and n.tau_readout >= dt), f"{name}.tau_readout",
           f"0 (read the spikes themselves) or a number >= dt = {dt} ms", n.tau_readout)
    for t in ("tau_mem", "tau_syn"):
        v = getattr(n, t)
        _check(_finite(v) and v >= dt, f"{name}.{t}", f"a number >= dt = {dt} ms", v)
    _check(n.tau_syn_slow == 0 or (_finite(n.tau_syn_slow) and n.tau_syn_slow >= dt),
           f"{name}.tau_syn_slow", f"0 (none) or a number >= dt = {dt} ms", n.tau_syn_slow)
    _check(_positive(n.v_th), f"{name}.v_th", "a finite number > 0", n.v_th)
    _check(n.reset in RESETS, f"{name}.reset", f"one of {RESETS}", n.reset)
    _check(_finite(n.refractory) and n.refractory >= 0, f"{name}.refractory", "a number >= 0 ms", n.refractory)
    _check(n.surrogate in SURROGATES, f"{name}.surrogate", f"one of {SURROGATES}", n.surrogate)
    _check(_positive(n.surrogate_slope), f"{name}.surrogate_slope", "a finite number > 0", n.surrogate_slope)


def validate(spec: NetworkSpec) -> NetworkSpec:
    """Check every field; raise ``SpecError`` naming the first bad one. Returns the spec."""
    _check(isinstance(spec.name, str), "name", "a string", spec.name)
    _check(_positive(spec.dt), "dt", "a finite number > 0 (ms)", spec.dt)
    _check(isinstance(spec.n_inputs, int) and not isinstance(spec.n_inputs, bool) and spec.n_inputs >= 1,
           "n_inputs", "an integer >= 1", spec.n_inputs)
    _check(isinstance(spec.n_outputs, int) and not isinstance(spec.n_outputs, bool) and spec.n_outputs >= 1,
           "n_outputs", "an integer >= 1", spec.n_outputs)
    _check(isinstance(spec.populations, list) and len(spec.populations) >= 1,
           "populations", "a non-empty list", spec.populations)
    _check(len(spec.populations) == 1, "populations",
           "a list of exactly one population (multi-population networks are not supported by the backends yet)",
           [p.name for p in spec.populations])
    for i, p in enumerate(spec.populations):
        _check(isinstance(p.size, int) and not isinstance(p.size, bool) and p.size >= 1, f"populations[{i}].size",
               "an integer >= 1", p.size)
        _validate_neuron(p.neuron, f"populations[{i}].neuron", spec.dt)
    for name in ("input", "recurrent", "readout"):
        _validate_connection(getattr(spec, name), name)
    _check(isinstance(spec.dale.enabled, bool), "dale.enabled", "true or false", spec.dale.enabled)
    _check(_finite(spec.dale.excitatory_fraction) and 0 < spec.dale.excitatory_fraction < 1,
           "dale.excitatory_fraction", "in (0, 1)", spec.dale.excitatory_fraction)
    if spec.dale.enabled:
        n_exc = excitatory_count(spec)
        _check(0 < n_exc < spec.n_hidden, "dale.excitatory_fraction",
               f"a fraction leaving >= 1 excitatory and >= 1 inhibitory unit of {spec.n_hidden}",
               spec.dale.excitatory_fraction)
        _check(spec.recurrent.init != "orthogonal", "recurrent.init",
               "'normal', 'uniform' or 'zeros' under Dale's law (orthogonal has no sign structure)",
               spec.recurrent.init)
    _check(spec.feedback.kind in FEEDBACKS, "feedback.kind", f"one of {FEEDBACKS}", spec.feedback.kind)
    _check(_finite(spec.feedback.gain) and spec.feedback.gain > 0, "feedback.gain", "a finite number > 0",
           spec.feedback.gain)
    return spec


def excitatory_count(spec: NetworkSpec) -> int:
    return int(round(spec.dale.excitatory_fraction * spec.n_hidden))


# -- (de)serialization ------------------------------------------------------------

def to_dict(spec: NetworkSpec) -> dict:
    return dataclasses.asdict(spec)


_NESTED = {
    NetworkSpec: {"input": ConnectionSpec, "recurrent": ConnectionSpec, "readout": ConnectionSpec,
                  "dale": DaleSpec, "feedback": FeedbackSpec},
    PopulationSpec: {"neuron": NeuronSpec},
}


def _build(cls, data: Any, path: str):
    if not isinstance(data, dict):
        raise SpecError(f"{path or 'spec'} must be a table, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{path}." if path else ""
        raise SpecError(f"{where}{unknown[0]} is not a known field; allowed: {sorted(known)}")
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else key
        if key in _NESTED.get(cls, {}):
            value = _build(_NESTED[cls][key], value, sub)
        elif cls is NetworkSpec and key == "populations":
            if not isinstance(value, list):
                raise SpecError(f"populations must be a list of tables, got {value!r}")
            value = [_build(PopulationSpec, v, f"populations[{i}]") for i, v in enumerate(value)]
        kwargs[key] = value
    # integers written where floats are expected are fine; bools are not numbers
    return cls(**kwargs)


def from_dict(data: dict) -> NetworkSpec:
    """Build and validate a spec from plain data (as read from TOML or JSON)."""
    return validate(_build(NetworkSpec, data, ""))


def dumps(spec: NetworkSpec, fmt: str = "toml") -> str:
    data = to_dict(validate(spec))
    if fmt == "toml":
        return tomli_w.dumps(data)
    if fmt == "json":
        return json.dumps(data, indent=2)
    raise SpecError(f"format must be 'toml' or 'json', got {fmt!r}")


def loads(text: str, fmt: str = "toml") -> NetworkSpec:
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"spec is not valid TOML: {e}") from None
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from None
    else:
        raise SpecError(f"format must be 'toml' or 'json', got {fmt!r}")
    spec = from_dict(data)
    _require(data)
    return spec


# a spec file must say what a network cannot do without; everything else has a default
REQUIRED = {"dt": "the time step in ms", "populations": "a list with one population and its size"}


def _require(data: Any) -> None:
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a table of fields, got {type(data).__name__}")
    if not data:
        raise SpecError("the spec is empty; it needs at least " + ", ".join(f"{k} ({v})" for k, v in REQUIRED.items()))
    for key, what in REQUIRED.items():
        if key not in data:
            raise SpecError(f"the spec has no {key} ({what}); it is required")
    pops = data["populations"]
    if isinstance(pops, list):
        for i, p in enumerate(pops):
            if isinstance(p, dict) and "size" not in p:
                raise SpecError(f"populations[{i}] has no size (its number of units); it is required")


def load_spec(path: str | Path) -> NetworkSpec:
    """Read a spec from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"spec file {path} does not exist")
    if not path.is_file():
        raise SpecError(f"spec file {path} is a directory, not a file")
    fmt = "json" if path.suffix == ".json" else "toml"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"spec file {path} is not UTF-8 text (byte {e.start}); is it a spec?") from None
    except OSError as e:
        raise SpecError(f"spec file {path} cannot be read ({e.strerror or e})") from None
    try:
        return loads(text, fmt)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None


def save_spec(spec: NetworkSpec, path: str | Path) -> None:
    path = Path(path)
    path.write_text(dumps(spec, "json" if path.suffix == ".json" else "toml"))


def _set_path(data: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        if k.startswith("populations[") or k == "populations":
            text = k[len("populations["):-1] if "[" in k else "0"
            pops = node.get("populations") or []
            if not (k == "populations" or (k.endswith("]") and text.isdigit())) or int(text) >= len(pops):
                raise SpecError(f"{path}: populations index must be an integer in [0, {len(pops) - 1}], "
                                f"got {k[len('populations'):] or k!r}")
            node = pops[int(text)]
            continue
        if k not in node or not isinstance(node[k], dict):
            raise SpecError(f"{path} is not a field of the spec")
        node = node[k]
    if keys[-1] not in node:
        raise SpecError(f"{path} is not a field of the spec")
    node[keys[-1]] = value
