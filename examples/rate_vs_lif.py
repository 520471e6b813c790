"""Rate vs LIF on one task: train both variants of one spec and compare them.

The rate network runs at the spec's dt (20 ms for romo_rate); its LIF variant at 5 ms
(``neuro.compare.LIF_DT``), each rate step's input held over 4 LIF steps, starting from the rate
network's weights mapped as Kim, Li & Sejnowski (2019) map them, trained at 3 % of the rate
network's learning rate (``neuro.compare.LIF_LR_FACTOR``).  At full size on Romo the rate variant reaches 1.000
and the LIF variant 0.969 (docs/models.md, the compare table).  The summary reports both accuracies, the LIF firing
statistics with the firing-rate ceiling, and the Procrustes distance between the two
representations; the run folders rate/ and lif/ can be exported or analysed further.
"""
import argparse

import neuro
from neuro.compare import LIF_DT, compare, summary_markdown, write_outputs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="romo_rate", help="spec file or ready model")
    p.add_argument("--task", default="romo")
    p.add_argument("--rule", default="bptt")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3, help="the rate variant's; the LIF variant's is 3 % of it")
    p.add_argument("--out", default="runs/example-rate-vs-lif")
    p.add_argument("--small", action="store_true", help="8 units, 2 iterations, LIF at 10 ms (a smoke run)")
    a = p.parse_args(argv)
    from neuro.resolve import load_spec_arg
    spec = load_spec_arg(a.spec)
    lif_dt, iterations = LIF_DT, a.iterations
    if a.small:
        spec, lif_dt, iterations = spec.replace(**{"populations[0].size": 8}), 10.0, 2
    r = compare(spec, a.task, a.rule, iterations=iterations, lif_dt=lif_dt, lr=a.lr, progress=not a.small,
                batch_size=4 if a.small else 32, test_trials=8 if a.small else 64)
    write_outputs(r, a.out)
    print(summary_markdown(r))
    run = neuro.load_run(f"{a.out}/lif")            # the LIF variant, as a run folder
    print(f"LIF variant: {run.spec.n_hidden} neurons at dt {run.dt:g} ms, trained {len(run.history)} iterations")
    return r


if __name__ == "__main__":
    main()
