"""A gain study on your own spec: Lyapunov exponents before and after training, per recurrent gain.

For each gain g (W_rec ~ N(0, g²/N)) and seed: the largest Lyapunov exponent of the fresh
network, driven by the task's inputs; train it; the exponent again.  Writes gains.csv (one row
per gain and seed) and lyapunov_vs_gain.png (mean ± std over seeds, before and after).
"""
import argparse
import csv
from pathlib import Path

import neuro
from neuro import plots
from neuro.resolve import fit_spec_to_task, load_spec_arg, task_for


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", nargs="?", default="romo_rate", help="your spec file (.toml) or a ready model")
    p.add_argument("--task", default="romo")
    p.add_argument("--rule", default="eprop")
    p.add_argument("--gains", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--out", default="runs/example-gains")
    p.add_argument("--small", action="store_true", help="16 units, 2 gains, 1 seed, 2 iterations (a smoke run)")
    a = p.parse_args(argv)
    spec = load_spec_arg(a.spec)
    gains, seeds, iterations, k = a.gains, a.seeds, a.iterations, 5
    if a.small:
        spec = spec.replace(**{"populations[0].size": 16})
        gains, seeds, iterations, k = gains[:2], 1, 2, 2
    task = task_for(a.task, spec)                     # the task at the spec's dt
    spec = fit_spec_to_task(spec, task)
    inputs = task.batch(4, seed=123).inputs
    rows = []
    for g in gains:
        s = spec.replace(**{"recurrent.gain": g})
        for seed in range(seeds):
            net = neuro.compile(s, weights=neuro.init_weights(s, seed))
            before = neuro.lyapunov_spectrum(net, inputs=inputs, k=k, batch_size=4, seed=seed)
            hist = neuro.train(net, task, a.rule, iterations=iterations, lr=1e-3, seed=seed, progress=False)
            after = neuro.lyapunov_spectrum(net, inputs=inputs, k=k, batch_size=4, seed=seed)
            rows.append({"gain": g, "seed": seed, "lambda_max_before": before.max_exponent,
                         "lambda_max_after": after.max_exponent, "dt_ms": s.dt,
                         "final_loss": sum(hist.loss[-10:]) / len(hist.loss[-10:])})
            print(f"g = {g}: λ_max {before.max_exponent:+.3f} -> {after.max_exponent:+.3f} per step")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "gains.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    per = lambda key: [[r[key] for r in rows if r["gain"] == g] for g in gains]
    plots.before_after(gains, {f"{spec.name} / {a.task} / {a.rule}": (per("lambda_max_before"),
                                                                      per("lambda_max_after"))},
                       out / "lyapunov_vs_gain.png", ylabel="largest Lyapunov exponent (per step)")
    return rows


if __name__ == "__main__":
    main()
