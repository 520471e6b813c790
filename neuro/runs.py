"""Run folders: what ``neuro train`` writes (``spec.toml``, ``checkpoint.pt``, ``history.csv``) read back."""
from __future__ import annotations

from pathlib import Path

import neuro
from neuro.io import CheckpointError, load_checkpoint


def load_network(path, backend: str | None = None, **options):
    """The trained network of a run folder; a spec file or ready model name gives a fresh network.

    A run folder must hold ``spec.toml`` and ``checkpoint.pt`` (read as tensors and plain data
    only); a folder without its checkpoint is refused rather than analysed with untrained weights."""
    path = Path(path)
    if path.is_dir():
        spec_file = path / "spec.toml"
        if not spec_file.exists():
            raise FileNotFoundError(f"{path} is not a run folder (no spec.toml)")
        spec = neuro.load_spec(spec_file)
        ckpt = path / "checkpoint.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"{path} has no trained weights: {ckpt} is missing (the run never saved a "
                                    f"checkpoint, or it was deleted); pass the spec file to use fresh weights")
        state = load_checkpoint(ckpt)
        if not isinstance(state.get("model"), dict):
            raise CheckpointError(f"{ckpt} holds no model weights; it is not a neuro checkpoint")
        net = neuro.compile(spec, backend or _backend(spec), **options)
        try:
            net.load_state_dict(state["model"])
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{ckpt} does not match {spec_file} "
                                  f"({str(e).strip().splitlines()[0][:160]})") from None
        return net
    from neuro.resolve import load_spec_arg
    spec = load_spec_arg(str(path))
    return neuro.compile(spec, backend or _backend(spec), **options)


def _backend(spec) -> str:
    return "lif" if spec.neuron.model == "lif" else "rate"
