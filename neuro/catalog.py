"""One-line descriptions of what ``neuro`` offers by name (``neuro list``).

Each registry (``neuro.models``, ``neuro.tasks``, ``neuro.rules``, the backends and
``neuro.studies``) is listed from the registry itself; the descriptions below say what a
name is.  A name without a description is listed with "(no description)", so a new
registry entry never disappears from the list.
"""
from __future__ import annotations

import importlib
import pkgutil
import re

TASKS = {
    "romo": "Romo vibrotactile frequency discrimination: compare two pulses across a delay (Schuessler et al. 2020)",
    "2af": "NeuroGym perceptual decision making: the stronger of two noisy stimuli (2-alternative forced choice)",
    "dms": "NeuroGym delayed match-to-sample: do two stimuli separated by a delay match",
    "context": "NeuroGym context-dependent decision making (Mante et al. 2013): attend to one of two modalities",
    "sum_of_sines": "FORCE target: a sum of sines read out continuously (Sussillo & Abbott 2009)",
    "reaching": "delayed reaching shaped like Sussillo, Churchland, Kaufman & Shenoy 2015 (muscle-like outputs)",
    "interval": "ready-set-go interval reproduction (Jazayeri & Shadlen 2010)",
    "detection": "vibrotactile detection: was a weak stimulus present (de Lafuente & Romo 2005)",
}

RULES = {
    "bptt": "backpropagation through time (exact gradient)",
    "tbptt": "truncated BPTT: gradients through the last k steps",
    "eprop": "e-prop: eligibility traces x a learning signal, the non-local term dropped (Bellec et al. 2020)",
    "rflo": "random-feedback local online learning; equals e-prop for the leaky rate RNN",
    "modprop": "ModProp: e-prop plus cell-type-specific neuromodulatory signals "
               "(Liu, Ghosh, Yang, Shea-Brown & Dale 2022)",
    "np": "node perturbation: noise on the units, loss-correlated updates (Williams 1992; Fiete & Seung 2006)",
    "es": "evolution strategies: random weight perturbations weighted by their loss (Salimans et al. 2017)",
    "force": "FORCE: recursive least squares on the readout with output feedback (Sussillo & Abbott 2009)",
    "full_force": "full-FORCE: recurrent weights trained by RLS to a driven target network (DePasquale et al. 2018)",
    "reservoir": "reservoir: a fixed random network, only the readout fitted by RLS",
    "innate": "innate training: recurrent RLS toward the network's own innate trajectory (Laje & Buonomano 2013)",
    "reward_hebbian": "reward-modulated Hebbian learning (Miconi 2017)",
    "reinforce": "REINFORCE policy gradient with a value network as baseline (Song, Yang & Wang 2017)",
}

BACKENDS = {
    "rate": "rate RNN in PyTorch (compiled C kernel where it applies)",
    "lif": "current-based LIF network on snnTorch, surrogate gradients",
    "lava": "LIF network in Lava's Loihi-style simulator, float or Loihi fixed point",
}

EXPORTS = {
    "nir": "NIR graph file (HDF5), read by snnTorch, Norse, Rockpool, Sinabs …",
    "brian2": "a standalone Brian2 script with the weights embedded",
    "lava": "built in Lava's simulator (no file format)",
    "pynn": "a standalone PyNN script (IF_curr_exp populations) for NEST, SpiNNaker, BrainScaleS …",
}


def _first_sentence(text: str | None) -> str:
    if not text:
        return "(no description)"
    line = " ".join(text.strip().split("\n\n")[0].split())
    line = re.sub(r"``neuro reproduce \w+``:\s*", "", line)
    return line.rstrip(".")


def models() -> dict:
    """Ready specs: neuron model, size and dt, and what the TOML file's first comment says."""
    import neuro
    out = {}
    for name in neuro.models.names():
        spec = neuro.models.load(name)
        lines = [l[1:].strip() for l in neuro.models.path(name).read_text().splitlines() if l.startswith("#")]
        what = " ".join(lines).split(": ")[0].split(". ")[0].rstrip(".:") if lines else "(no description)"
        out[name] = f"{spec.n_hidden} {spec.neuron.model} units, dt {spec.dt:g} ms; {what}"
    return out


def tasks() -> dict:
    import neuro
    return {n: TASKS.get(n, "(no description)") for n in neuro.tasks.names()}


def rules() -> dict:
    import neuro
    return {n: RULES.get(n, "(no description)") for n in neuro.rules.names()}


def backends() -> dict:
    from neuro.compiler import BACKENDS as table
    return {n: BACKENDS.get(n, "(no description)") for n in table}


def exports() -> dict:
    from neuro.compiler import EXPORTERS as table
    return {n: EXPORTS.get(n, "(no description)") for n in table}


def study_names() -> list[str]:
    import neuro.studies
    names = sorted(m.name for m in pkgutil.iter_modules(neuro.studies.__path__) if m.name != "common")
    # a study's stages (STUDY_stage.py, e.g. similarity_claims) are modules of that study, not studies
    return [n for n in names if not any(n.startswith(f"{other}_") for other in names if other != n)]


def studies() -> dict:
    out = {}
    for name in study_names():
        mod = importlib.import_module(f"neuro.studies.{name}")
        out[name] = _first_sentence(mod.__doc__)
    return out


KINDS = {"models": models, "tasks": tasks, "rules": rules, "backends": backends, "exports": exports,
         "studies": studies}
