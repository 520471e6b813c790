"""Backend choice happens once, here: ``compile(spec, backend, weights)`` and ``export``."""
from __future__ import annotations

import importlib

from .contract import verify
from .spec import NetworkSpec, validate
from .weights import Weights, init_weights

# backend name -> (module, class); modules are imported lazily so that a missing
# optional simulator only matters to the user who asks for it.
BACKENDS = {
    "rate": ("neuro.backends.rate", "RateNetwork"),
    "lif": ("neuro.backends.lif", "LIFNetwork"),
    "lava": ("neuro.backends.lava", "LavaNetwork"),
}
# neuron model -> the backend ``compile`` picks when none is named
DEFAULT_BACKEND = {"rate": "rate", "lif": "lif"}
EXPORTERS = {
    "nir": ("neuro.backends.nir", "export_nir"),
    "brian2": ("neuro.backends.brian2", "export_brian2"),
    "lava": ("neuro.backends.lava", "export_lava"),
    "pynn": ("neuro.backends.pynn", "export_pynn"),
}

# backend or export name -> the pyproject extra that installs its simulator
EXTRAS = {"lif": "lif", "nir": "nir", "brian2": "brian2"}   # lava-nc: install.sh (it needs --no-deps)


def register_backend(name: str, target) -> None:
    """Add a backend: ``target`` is its class or ``"module:Class"`` (imported on first use).  The
    class declares ``backend``, ``neuron_model`` and ``provides`` (``neuro.contract``)."""
    BACKENDS[name] = tuple(target.split(":")) if isinstance(target, str) else target


def backend_class(name: str):
    """The class of a registered backend, its declaration checked against ``neuro.contract``."""
    cls = _load(BACKENDS, name, "backend")
    verify(cls)
    return cls


def _load(table: dict, name: str, what: str):
    if name not in table:
        raise ValueError(f"{what} must be one of {sorted(table)}, got {name!r}")
    if not isinstance(table[name], tuple):
        return table[name]
    module, attr = table[name]
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("neuro"):
            raise NotImplementedError(f"{what} {name!r} is not implemented in this version of neuro") from None
        extra = EXTRAS.get(name)
        how = f"pip install 'neuro[{extra}]'" if extra else f"pip install {e.name}"
        raise ImportError(f"{what} {name!r} needs the package {e.name!r}; install it with `bash install.sh` "
                          f"(or `{how}`)") from None


def compile(spec: NetworkSpec, backend: str | None = None, weights: Weights | None = None, seed: int = 0,
            **options):
    """Turn (spec, weights) into a runnable model of the named backend (default: the one for the
    spec's neuron model, ``DEFAULT_BACKEND``).

    Without ``weights`` they are drawn with ``init_weights(spec, seed)``.  ``options``
    go to the backend (``dtype``, ``device`` …).
    """
    validate(spec)
    if backend is None:
        backend = DEFAULT_BACKEND.get(spec.neuron.model, "rate")
    cls = backend_class(backend)
    if weights is None:
        weights = init_weights(spec, seed)
    return cls(spec, weights, **options)


def export(net, fmt: str, path=None, **options):
    """Export a compiled network to another simulator or format (``nir``, ``brian2``, ``lava``)."""
    return _load(EXPORTERS, fmt, "export format")(net, path, **options)
