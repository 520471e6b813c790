"""What ``neuro export`` writes: a file per format and a short summary of the exported network.

- ``nir``: the NIR graph (HDF5) of ``neuro.export(net, "nir", path)``;
- ``brian2``: a standalone Python script that rebuilds the network in Brian2 (weights
  embedded, the step map of ``neuro.backends.brian2``), runs it on an ``.npy`` array of
  inputs ``[T, B, n_in]`` (or T steps without input) and saves spikes, voltages and
  outputs to an ``.npz`` — no ``neuro`` needed where it runs;
- ``lava``: Lava has no file format; the network is built in Lava to check that it is
  accepted, and ``--out`` is refused (use NIR to carry it to other tools).

Nothing here imports a simulator: every format is reached through ``neuro.export`` (the
Brian2 script is written by ``neuro.backends.brian2``, beside the model it mirrors).
"""
from __future__ import annotations

import numpy as np


def summary(net, fmt: str, precision: str | None = None, weight_bits: int | None = None) -> dict:
    """Neurons, synapses (nonzero weights per projection), dt and the quantization of an export."""
    spec, w = net.spec, net.weights()
    synapses = {"input": int(np.count_nonzero(w.W_in)), "recurrent": int(np.count_nonzero(w.W_rec)),
                "readout": int(np.count_nonzero(w.W_out))}
    slow = (getattr(w, "extra", None) or {}).get("W_slow")
    if slow is not None:
        synapses["recurrent_slow"] = int(np.count_nonzero(slow))
    if fmt == "lava" and precision == "fixed":
        quant = f"Loihi fixed point, {weight_bits or 8}-bit recurrent weights"
    elif weight_bits:
        quant = f"float, recurrent weights on a {weight_bits}-bit grid"
    else:
        quant = "none (float64 weights)" if fmt in ("nir", "brian2", "pynn") else "none (float)"
    return {"format": fmt, "spec": spec.name, "neurons": int(spec.n_hidden), "inputs": int(spec.n_inputs),
            "outputs": int(spec.n_outputs), "synapses": synapses, "dt_ms": float(spec.dt),
            "quantization": quant}


def summary_lines(s: dict) -> list[str]:
    syn = ", ".join(f"{v} {k}" for k, v in s["synapses"].items())
    return [f"{s['neurons']} LIF neurons ({s['inputs']} inputs, {s['outputs']} outputs); synapses: {syn} "
            f"({sum(s['synapses'].values())} in all)",
            f"dt {s['dt_ms']:g} ms; quantization: {s['quantization']}"]


