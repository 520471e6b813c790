"""neuro: one network spec compiled to rate (PyTorch), LIF (snnTorch) and Lava backends.

    spec = neuro.load_spec("models/romo_rate.toml")
    w = neuro.init_weights(spec, seed=0)
    net = neuro.compile(spec, backend="rate", weights=w)
    history = neuro.train(net, neuro.tasks.get("romo"), neuro.rules.get("eprop"), iterations=500)
"""
__version__ = "0.1.0"

from . import rules  # noqa: E402
from . import tasks  # noqa: E402  (neuro.tasks is the top-level tasks/ folder)
from . import models  # noqa: E402
from .compiler import compile, export  # noqa: E402,A004
from .spec import NetworkSpec, SpecError, load_spec, save_spec  # noqa: E402
from .training import History, TrainingError, train  # noqa: E402
from .trajectory import Trajectory  # noqa: E402
from .weights import Weights, init_weights  # noqa: E402

# Names whose modules are imported on first use (so `import neuro` stays light).
_LAZY = {
    "lyapunov_spectrum": ("neuro.lyapunov", "lyapunov_spectrum"),
    "floss": ("neuro.flossing", "floss"),
    "load_nir": ("neuro.backends.nir", "load_nir"),
    "import_nir": ("neuro.backends.nir", "load_nir"),
    "similarity": ("neuro.similarity", None),
    "train_ensemble": ("neuro.ensemble", "train_ensemble"),
    "Ensemble": ("neuro.ensemble", "Ensemble"),
    "load_run": ("neuro.runfolder", "load_run"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'neuro' has no attribute {name!r}")


__all__ = ["NetworkSpec", "SpecError", "load_spec", "save_spec", "init_weights", "Weights", "compile",
           "export", "train", "History", "TrainingError", "Trajectory", "rules", "tasks", "models",
           "load_run"]
