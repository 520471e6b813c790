"""How closely the compiled rate kernel and the PyTorch ops agree: one BPTT loss and gradient on
``romo_rate`` (seed 0, one Romo batch of 32), then the losses of two 300-iteration training runs
(``--iterations``), one on each path.  Usage: ``python benchmarks/kernel_agreement.py [--iterations 300]``."""
import argparse

from neuro.backends import rate_kernel

import neuro


def _use_kernel(on: bool) -> None:
    rate_kernel._tried = False
    rate_kernel._lib = None
    if on:
        assert rate_kernel.library() is not None, "the kernel cannot be built here"
    else:
        rate_kernel._tried = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args()
    spec = neuro.models.load("romo_rate")
    task = neuro.tasks.get("romo", dt=spec.dt, tau=spec.neuron.tau)
    batch = task.batch(32, seed=(0, 0))
    one, runs = {}, {}
    for on in (True, False):
        _use_kernel(on)
        net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
        loss, out, grads = neuro.rules.get("bptt").loss_and_gradients(net, batch, task)
        one[on] = (float(loss.detach()), out.detach(), {k: g.detach() for k, g in grads.items()})
        net = neuro.compile(spec, "rate", neuro.init_weights(spec, 0))
        runs[on] = neuro.train(net, task, neuro.rules.get("bptt"), iterations=args.iterations, lr=1e-3,
                               batch_size=32, seed=0, progress=False).loss
    (l1, o1, g1), (l0, o0, g0) = one[True], one[False]
    print(f"one step: loss {l1:.9g} (kernel) vs {l0:.9g} (PyTorch); outputs differ by at most "
          f"{float((o1 - o0).abs().max()):.2g}")
    print("one gradient, relative difference ||g_kernel - g_torch|| / ||g_torch||: "
          + ", ".join(f"{k} {float((g1[k] - g0[k]).norm() / g0[k].norm()):.2g}" for k in g1))
    for it in (0, 9, 49, 99, 199, args.iterations - 1):
        if it < args.iterations:
            a, b = runs[True][it], runs[False][it]
            print(f"iteration {it + 1}: loss {a:.6f} vs {b:.6f} (relative difference {abs(a - b) / abs(b):.2g})")
    tail = lambda h: sum(h[-20:]) / len(h[-20:])
    print(f"mean loss of the last 20 iterations: {tail(runs[True]):.4f} (kernel) vs {tail(runs[False]):.4f} (PyTorch)")


if __name__ == "__main__":
    main()
