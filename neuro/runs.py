"""Run folders: what ``neuro train`` writes (``spec.toml``, ``checkpoint.pt``, ``history.csv``) read back."""
from __future__ import annotations

from pathlib import Path

import torch

import neuro


def load_network(path, backend: str | None = None, **options):
    """The trained network of a run folder; a spec file or ready model name gives a fresh network."""
    path = Path(path)
    if path.is_dir():
        spec_file = path / "spec.toml"
        if not spec_file.exists():
            raise FileNotFoundError(f"{path} is not a run folder (no spec.toml)")
        spec = neuro.load_spec(spec_file)
        net = neuro.compile(spec, backend or _backend(spec), **options)
        ckpt = path / "checkpoint.pt"
        if ckpt.exists():
            net.load_state_dict(torch.load(ckpt, weights_only=False)["model"])
        return net
    from neuro.resolve import load_spec_arg
    spec = load_spec_arg(str(path))
    return neuro.compile(spec, backend or _backend(spec), **options)


def _backend(spec) -> str:
    return "lif" if spec.neuron.model == "lif" else "rate"
