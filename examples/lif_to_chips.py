"""Train a LIF network with e-prop, then take it to NIR, Brian2 and Lava.

1. `neuro train 2af_lif --task 2af --rule eprop` (the backend follows the spec's neuron model);
2. `neuro export RUN --format nir` writes the NIR graph; reading it back gives the same weights;
3. `neuro export RUN --format brian2` writes a standalone Brian2 script; its spikes on the same
   inputs equal the LIF backend's;
4. the same network in Lava (floating point) gives the same spikes too; in Loihi fixed point the
   summary reports the quantization.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import neuro
from neuro.cli import main as neuro_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--out", default="runs/example-chips")
    p.add_argument("--small", action="store_true", help="2 iterations, short test inputs (a smoke run)")
    a = p.parse_args(argv)
    out = Path(a.out)
    run_dir = out / "run"
    iterations = 2 if a.small else a.iterations
    progress = [] if not a.small else ["--no-progress"]
    assert neuro_cli(["train", "2af_lif", "--task", "2af", "--rule", "eprop", "--iterations", str(iterations),
                      "--lr", "0.01", "--batch-size", "4" if a.small else "32", "--out", str(run_dir)] + progress) == 0
    run = neuro.load_run(run_dir, dtype=torch.float64)
    x = run.task.batch(2, seed=1, dtype=torch.float64).inputs[: 40 if a.small else None]
    with torch.no_grad():
        ours = run.net.run(x)
    print(f"LIF backend: {int(ours.spikes.sum())} spikes on {x.shape[1]} test trials of {x.shape[0]} steps")

    # NIR: a file; reading it back gives the trained weights
    assert neuro_cli(["export", str(run_dir), "--format", "nir", "--out", str(out / "net.nir")]) == 0
    _, w = neuro.load_nir(out / "net.nir")
    nir_err = float(np.abs(w.W_rec - run.net.weights().W_rec).max())
    print(f"NIR: max |W_rec difference| after the round trip {nir_err:.2g}")

    # Brian2: a standalone script, run in its own process
    script = out / "net_brian2.py"
    assert neuro_cli(["export", str(run_dir), "--format", "brian2", "--out", str(script)]) == 0
    np.save(out / "x.npy", x.numpy())
    subprocess.run([sys.executable, str(script), "--inputs", str(out / "x.npy"), "--out", str(out / "brian2.npz")],
                   check=True)
    b2 = np.load(out / "brian2.npz")
    same_b2 = bool(np.array_equal(b2["spikes"], ours.spikes.numpy()))
    print(f"Brian2: spikes equal to the LIF backend's: {same_b2}")

    # Lava: floating point reproduces the spikes; fixed point is reported by the export summary
    lava = neuro.export(run.net, "lava", precision="float", progress=False)
    lv = lava.run(x)
    same_lava = bool(torch.equal(lv.spikes.to(ours.spikes.dtype), ours.spikes))
    print(f"Lava (float): spikes equal to the LIF backend's: {same_lava}")
    assert neuro_cli(["export", str(run_dir), "--format", "lava", "--precision", "fixed"]) == 0
    return {"nir_error": nir_err, "brian2_equal": same_b2, "lava_equal": same_lava,
            "spikes": int(ours.spikes.sum())}


if __name__ == "__main__":
    main()
