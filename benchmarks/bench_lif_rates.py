"""LIF speed where users work: biological firing rates, trial batches, training.

``sim``: simulation throughput of the LIF backend against Brian2 (Cython; code generation and
compilation excluded), Lava's floating-point simulator (small N only) and a plain snnTorch loop
(``snntorch.Synaptic`` with ``nn.Linear`` input and recurrent layers in a Python time loop), over
the mean firing rate (targets 1, 5, 20, 100 Hz; the rate is *measured* and reported), N,
recurrent density and trial batch (1 and 32).  Each target rate is reached by scaling the
network's random input (bisection on a short run); every row reports neuron-steps/s and
synaptic events/s (spikes × the spiking neuron's out-degree, per second).  "neuro (step path)"
is the LIF backend's step-by-step run (``net.event_driven = False``); "neuro" is the
event-driven batched path (``backends/lif_events.py``).

``train``: milliseconds per training iteration (forward, gradient, Adam) of a LIF network on 2AF
(dt = 10 ms, batch 32), BPTT and e-prop, neuro (``neuro.train``) against a plain snnTorch loop
(``snntorch.Synaptic``, ``nn.Linear`` layers, ``loss.backward()``, Adam; e-prop detaches the
recurrent spikes), for N = 64 … 1024, with the firing rate of the trained network.

``crossover``: time of the recurrent input ``S Wᵀ`` as a CSR product and as a dense one vs the
fraction of entries spiking (where ``lif_events.DENSE_FRACTION`` should sit).

``repeat``: ``net.run`` several times in one process (what fresh output buffers cost).

``tables``: the README's markdown tables from results/speed/*.csv.

Times are CPU seconds of the benchmark process (``time.process_time``, one thread), which other
jobs on a shared machine do not inflate the way they inflate wall time; Lava runs in processes
of its own and is timed by the wall clock.  All timings are paired: the implementations run alternately, ``--repeats`` times, and each row
reports the median time and the median of the per-repeat ratios.  One torch thread; Brian2's
Cython target is single-threaded.

    python benchmarks/bench_lif_rates.py sim [--large] [--repeats 3] [--steps 1000]
    python benchmarks/bench_lif_rates.py train [--sizes 64 256 1024] [--iterations 5]
    python benchmarks/bench_lif_rates.py crossover
    python benchmarks/bench_lif_rates.py repeat
    python benchmarks/bench_lif_rates.py tables
"""
from __future__ import annotations

import argparse
import csv
import gc
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import neuro

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "speed"
SIM_GRID = [(100, 1.0), (1000, 1.0), (1000, 0.1), (4000, 0.1)]
LARGE_GRID = [(10000, 0.1)]


def command() -> str:
    return "python benchmarks/bench_lif_rates.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def spec_for(n: int, density: float):
    """dt = 1 ms, τ_syn 5 ms, τ_mem 10 ms, refractory 2 ms, no bias, 3 random inputs; the recurrent
    gain (0.3) is low enough that the input sets the rate (at ``bench_brian2.py``'s gain 1 the
    network sustains itself at over 100 Hz whatever the input), and rates are alike across trials."""
    return neuro.models.load("romo_rate").replace(**{
        "dt": 1.0, "populations[0].neuron.model": "lif", "populations[0].size": n, "n_inputs": 3,
        "populations[0].neuron.tau_syn": 5.0, "populations[0].neuron.tau_mem": 10.0,
        "populations[0].neuron.tau_readout": 20.0, "input.gain": 3.0, "input.bias": False, "recurrent.gain": 0.3,
        "recurrent.density": density, "populations[0].neuron.refractory": 2.0})


def inputs(T: int, B: int, scale: float, seed: int = 0) -> torch.Tensor:
    return scale * torch.rand(T, B, 3, generator=torch.Generator().manual_seed(seed))


def rate_hz(spikes: torch.Tensor, dt_ms: float) -> float:
    return 1000.0 * float(spikes.float().mean()) / dt_ms


def calibrate(net, target_hz: float, T: int = 300, B: int = 8) -> float:
    """The input scale at which the network fires at about ``target_hz`` (bisection in log scale)."""
    lo, hi = 1e-3, 10.0
    with torch.no_grad():
        for _ in range(18):
            mid = (lo * hi) ** 0.5
            r = rate_hz(net.run(inputs(T, B, mid, seed=1)).spikes[50:], net.spec.dt)
            if r < target_hz:
                lo = mid
            else:
                hi = mid
            if abs(r - target_hz) < 0.1 * target_hz:
                return mid
    return (lo * hi) ** 0.5


class PlainSNN(nn.Module):
    """A plain snnTorch network: Linear input and recurrent layers, ``snn.Synaptic`` neurons, the
    spikes low-pass filtered into a Linear readout (the same constants and weights as ``net``)."""

    def __init__(self, net, detach_recurrent=False):
        import snntorch as snn
        super().__init__()
        w = net.weights()
        n, c = net.n_hidden, net.c
        self.fc_in = nn.Linear(w.W_in.shape[1], n, bias=False)
        self.fc_rec = nn.Linear(n, n, bias=False)
        self.fc_out = nn.Linear(n, w.W_out.shape[0])
        with torch.no_grad():
            self.fc_in.weight.copy_(torch.as_tensor(w.W_in))
            self.fc_rec.weight.copy_(torch.as_tensor(w.W_rec))
            self.fc_out.weight.copy_(torch.as_tensor(w.W_out))
        self.lif = snn.Synaptic(alpha=1 - c.du, beta=1 - c.dv, threshold=net.v_th,
                                reset_mechanism=net.spec.neuron.reset, spike_grad=snn.surrogate.fast_sigmoid(25))
        self.ar = 1 - c.d_readout
        self.detach_recurrent = detach_recurrent

    def forward(self, x):
        B, n = x.shape[1], self.fc_rec.weight.shape[0]
        syn, mem = self.lif.init_synaptic()
        spk = torch.zeros(B, n)
        r = torch.zeros(B, n)
        rates, spikes = [], []
        for t in range(x.shape[0]):
            rec = self.fc_rec(spk.detach() if self.detach_recurrent else spk)
            spk, syn, mem = self.lif(self.fc_in(x[t]) + rec, syn, mem)
            r = self.ar * r + spk
            rates.append(r)
            spikes.append(spk)
        return self.fc_out(torch.stack(rates)), torch.stack(spikes)


def _time(f) -> float:
    """CPU seconds of this process running ``f`` (one thread: on a shared machine, unlike wall time,
    not inflated by other jobs' time slices)."""
    start = time.process_time()
    f()
    return time.process_time() - start


def _wall(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def _median_ratio(times: dict, a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


# -- simulation -----------------------------------------------------------------------------

def brian2_timer(net, x1: torch.Tensor):
    """A callable that builds the Brian2 network for one trial, runs its first step (code generation,
    compilation) and returns (seconds of the remaining steps' simulation loop, spikes per neuron).
    Each ``Network.run`` call pays a ``gc.collect()`` (about 0.5 s in a process holding torch) and the
    set-up of its code objects, which a long simulation amortizes: the collection is switched off
    for the timed calls and the set-up (the CPU time of a run of no steps) subtracted.  CPU time, like
    the other simulators'."""
    model = neuro.export(net, "brian2", codegen="cython")
    b2 = model.set_codegen()
    currents = x1.numpy().astype(float) @ model.w.W_in.T
    T, n = x1.shape[0], net.n_hidden

    def timed():
        network, mon = model._network(currents)[:2]
        network.run(net.spec.dt * b2.ms)                       # code generation, compilation
        collect, gc.collect = gc.collect, lambda *a: 0         # Network.run's gc.collect(): left out
        try:
            setup = _time(lambda: network.run(0 * b2.ms))     # a run call's set-up without steps
            loop = _time(lambda: network.run((T - 1) * net.spec.dt * b2.ms))
        finally:
            gc.collect = collect
        return max(loop - setup, 0.0), np.bincount(np.asarray(mon.i), minlength=n)
    return timed


def sim(args):
    grid = [(n, d) for n in args.sizes for d in args.densities] if args.sizes else \
        SIM_GRID + (LARGE_GRID if args.large else [])
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    cmd = command()
    print(f"1 torch thread, dt = 1 ms, refractory 2 ms, {args.repeats} paired repeats, medians")
    for n, density in grid:
        spec = spec_for(n, density)
        net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
        W = net.effective()["W_rec"].detach()
        outdeg = (W != 0).sum(0).to(torch.float64)          # synapses leaving each neuron
        T = args.steps if n < 4000 else max(args.steps // 2, 100)
        for target in args.rates:
            scale = calibrate(net, target)
            x_one = inputs(T, 1, scale, seed=2)
            b2 = None if args.no_brian2 else brian2_timer(net, x_one[:, 0])
            lava = None
            if n <= args.lava_max_n and not args.no_lava:
                lava = neuro.export(net, "lava")
                lava._trial(x_one[:10, 0].numpy().astype(float))    # process start-up paid once
            for B in args.batches:
                x = x_one if B == 1 else inputs(T, B, scale, seed=2)
                plain = PlainSNN(net)
                times = {"neuro": [], "neuro (step path)": [], "snnTorch loop": []}
                if b2 is not None:
                    times["Brian2"] = []
                if lava is not None and B == 1:
                    times["Lava float"] = []
                spikes = {}
                with torch.no_grad():
                    net.run(x[:20])
                    for _ in range(args.repeats):
                        for impl in list(times):
                            if impl == "neuro":
                                out = {}
                                times[impl].append(_time(lambda: out.setdefault("t", net.run(x))))
                                spikes[impl] = out["t"].spikes.sum((0, 1))
                            elif impl == "neuro (step path)":
                                net.event_driven = False
                                out = {}
                                times[impl].append(_time(lambda: out.setdefault("t", net.run(x))))
                                net.event_driven = True
                                spikes[impl] = out["t"].spikes.sum((0, 1))
                            elif impl == "snnTorch loop":
                                out = {}
                                times[impl].append(_time(lambda: out.setdefault("t", plain(x))))
                                spikes[impl] = out["t"][1].sum((0, 1))
                            elif impl == "Brian2":
                                seconds, count = b2()
                                times[impl].append(seconds * T / (T - 1))   # per T steps of one trial
                                spikes[impl] = torch.as_tensor(count)
                            else:
                                out = {}
                                times[impl].append(_wall(lambda: out.setdefault(
                                    "s", lava._trial(x_one[:, 0].numpy().astype(float)))))
                                spikes[impl] = torch.as_tensor(out["s"]).sum(0)
                per_trial_neuro = [t / B for t in times["neuro"]]
                for impl, ts in times.items():
                    trials = 1 if impl in ("Brian2", "Lava float") else B
                    med = statistics.median(ts)
                    counts = spikes[impl].double()                   # spikes of each neuron in the run
                    r = 1000.0 * float(counts.sum()) / (n * T * trials * spec.dt)
                    ev = float((counts * outdeg).sum()) / med
                    ratio = statistics.median((t / trials) / p for t, p in zip(ts, per_trial_neuro))
                    rows.append({"N": n, "density": density, "batch": B, "target_hz": target,
                                 "rate_hz": round(r, 2), "steps": T, "impl": impl, "trials": trials,
                                 "seconds": round(med, 5), "neuron_steps_per_s": f"{n * T * trials / med:.3g}",
                                 "syn_events_per_s": f"{ev:.3g}", "time_per_trial_vs_neuro": round(ratio, 2),
                                 "command": cmd})
                for row in rows[-len(times):]:
                    print(f"N {row['N']:>5} d {row['density']:<4} B {row['batch']:>2} target {target:>5} Hz  "
                          f"{row['impl']:<18} rate {row['rate_hz']:>7.2f} Hz  {row['seconds']:>9.4f} s  "
                          f"{row['neuron_steps_per_s']:>8} n-steps/s  {row['syn_events_per_s']:>8} ev/s  "
                          f"per trial ÷ neuro {row['time_per_trial_vs_neuro']:>7.2f}", flush=True)
        _write(rows, args.out)
    _write(rows, args.out)


KEYS = ("N", "density", "batch", "target_hz", "rule", "impl")


def _write(rows, path):
    """Write ``rows`` to the CSV at ``path``, keeping the rows already there for other settings
    (so a part of the grid can be rerun on its own)."""
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = lambda r: tuple(str(r.get(k, "")) for k in KEYS)
    new = {key(r) for r in rows}
    old = [r for r in csv.DictReader(open(path))] if path.exists() else []
    kept = [r for r in old if key(r) not in new and set(r) == set(rows[0])]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(kept + rows)


# -- training -------------------------------------------------------------------------------

def train(args):
    task = neuro.tasks.get("2af", dt=10.0)
    batches = [task.batch(32, seed=i) for i in range(args.iterations)]
    rows, cmd = [], command()
    print(f"2AF, dt = 10 ms, T = {batches[0].inputs.shape[0]}, batch 32, Adam, 1 torch thread, "
          f"{args.iterations} iterations × {args.repeats} paired repeats, median ms / iteration")
    for n in args.sizes:
        spec = neuro.models.load("2af_lif").replace(**{"populations[0].size": n})
        for rule in ("bptt", "eprop"):
            times = {"neuro": [], "neuro (step path)": [], "snnTorch loop": []}
            rate = {}
            for rep in range(args.repeats + 1):                 # the first round warms up, untimed
                for impl in times:
                    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
                    if impl == "snnTorch loop":
                        plain = PlainSNN(net, detach_recurrent=rule == "eprop")
                        opt = torch.optim.Adam(plain.parameters(), lr=1e-3)

                        def loop():
                            for b in batches:
                                out, s = plain(b.inputs)
                                loss = task.loss(out, b)
                                opt.zero_grad()
                                loss.backward()
                                opt.step()
                            rate[impl] = rate_hz(s.detach(), spec.dt)
                        times[impl].append(_time(loop) / args.iterations)
                    else:
                        net.event_driven = impl == "neuro"
                        times[impl].append(_time(lambda: _neuro_train(net, task, rule, batches)) / args.iterations)
                    if rep == 0:
                        times[impl].pop()
                        with torch.no_grad():
                            rate[impl] = rate_hz(net.run(batches[-1].inputs).spikes, spec.dt)
            for impl, ts in times.items():
                row = {"N": n, "rule": rule, "batch": 32, "steps": batches[0].inputs.shape[0],
                       "rate_hz": round(rate[impl], 2), "impl": impl,
                       "ms_per_iteration": round(1000 * statistics.median(ts), 2),
                       "speedup_of_neuro": round(_median_ratio(times, impl, "neuro"), 2), "command": cmd}
                rows.append(row)
                print(f"N {n:>5} {rule:<6} {impl:<18} rate {row['rate_hz']:>7.2f} Hz  {row['ms_per_iteration']:>9.2f} "
                      f"ms/it  neuro is {row['speedup_of_neuro']:.2f}× faster", flush=True)
            _write(rows, args.out)


def _neuro_train(net, task, rule, batches):
    cache = {(0, i): b for i, b in enumerate(batches)}
    original = task.batch
    task.batch = lambda n, seed=0, dtype=torch.float32: cache[seed]
    try:
        neuro.train(net, task, neuro.rules.get(rule), iterations=len(batches), lr=1e-3, progress=False,
                    eval_every=10 ** 9)
    finally:
        task.batch = original


# -- crossover ------------------------------------------------------------------------------

def crossover(args):
    warnings.simplefilter("ignore")
    print("time of S Wᵀ for S [32, N] with a fraction p of ones: CSR product / dense product (median of 5)")
    for n in (1000, 4000):
        WT = torch.randn(n, n)
        for p in (0.01, 0.03, 0.1, 0.2, 0.4):
            s = (torch.rand(32, n) < p).float()
            csr = statistics.median(_time(lambda: torch.sparse.mm(s.to_sparse_csr(), WT)) for _ in range(5))
            dense = statistics.median(_time(lambda: s @ WT) for _ in range(5))
            print(f"N {n:5d} p {p:5.2f}  CSR {1e3 * csr:8.3f} ms  dense {1e3 * dense:8.3f} ms  ratio {csr / dense:6.2f}")


# -- repeated runs ---------------------------------------------------------------------------

def repeat(args):
    """CPU seconds of ``net.run`` repeated in one process (N = 1000, batch 32, 1000 steps, about
    3 Hz): run it with and without glibc's ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``/
    ``MALLOC_TOP_PAD_`` to see what the page faults of fresh output buffers cost."""
    spec = spec_for(1000, 1.0)
    net = neuro.compile(spec, "lif", neuro.init_weights(spec, 0))
    x = inputs(1000, 32, 0.012, seed=2)
    with torch.no_grad():
        for i in range(args.runs):
            out = {}
            seconds = _time(lambda: out.setdefault("t", net.run(x)))
            print(f"run {i}: {seconds:.3f} s CPU, rate {rate_hz(out['t'].spikes, spec.dt):.2f} Hz")
            del out


# -- tables ---------------------------------------------------------------------------------

def tables(args):
    out = []
    sim_paths, train_path = sorted(OUT.glob("lif_sim*.csv")), OUT / "lif_train.csv"
    if sim_paths:
        rows = [r for path in sim_paths for r in csv.DictReader(open(path))]
        cmds = sorted({r["command"] for r in rows})
        out.append("Simulation, 1 torch thread, dt = 1 ms, refractory 2 ms; time per trial of each simulator ÷ "
                   "neuro's time per trial (> 1: neuro is faster); rate = measured mean rate of that simulator's run "
                   f"(`{'`, `'.join(cmds)}`):\n")
        out.append("| N | density | batch | target Hz | neuro rate Hz | neuro s | neuron-steps/s | synaptic events/s "
                   "| Brian2 rate Hz | Brian2 ÷ neuro | snnTorch loop ÷ neuro | step path ÷ neuro | Lava ÷ neuro |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        keyf = lambda r: (int(r["N"]), float(r["density"]), float(r["target_hz"]), int(r["batch"]))
        groups = {}
        for r in rows:
            groups.setdefault(keyf(r), {})[r["impl"]] = r
        for key in sorted(groups, key=lambda k: (k[0], -k[1], k[2], k[3])):
            g = groups[key]
            ne = g["neuro"]
            f = lambda impl: g[impl]["time_per_trial_vs_neuro"] if impl in g else "–"
            out.append(f"| {key[0]} | {key[1]:g} | {key[3]} | {key[2]:g} | {ne['rate_hz']} | {ne['seconds']} | "
                       f"{ne['neuron_steps_per_s']} | {ne['syn_events_per_s']} | "
                       f"{g['Brian2']['rate_hz'] if 'Brian2' in g else '–'} | {f('Brian2')} | {f('snnTorch loop')} | "
                       f"{f('neuro (step path)')} | {f('Lava float')} |")
        out.append("")
    if train_path.exists():
        rows = list(csv.DictReader(open(train_path)))
        cmds = sorted({r["command"] for r in rows})
        out.append("Training, LIF on 2AF (dt = 10 ms, batch 32, Adam), ms per iteration; ratio = that loop's time ÷ "
                   f"neuro's (`{'`, `'.join(cmds)}`):\n")
        out.append("| N | rule | steps | neuro rate Hz | snnTorch rate Hz | neuro ms | step path ms | snnTorch loop ms "
                   "| snnTorch ÷ neuro | step path ÷ neuro |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        groups = {}
        for r in rows:
            groups.setdefault((int(r["N"]), r["rule"]), {})[r["impl"]] = r
        for (n, rule), g in sorted(groups.items()):
            ne, st, pl = g["neuro"], g["neuro (step path)"], g["snnTorch loop"]
            out.append(f"| {n} | {rule} | {ne['steps']} | {ne['rate_hz']} | {pl['rate_hz']} | {ne['ms_per_iteration']} | "
                       f"{st['ms_per_iteration']} | {pl['ms_per_iteration']} | {pl['speedup_of_neuro']} | "
                       f"{st['speedup_of_neuro']} |")
        out.append("")
    text = "\n".join(out)
    (OUT / "tables.md").write_text(text + "\n")
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sim")
    s.add_argument("--steps", type=int, default=1000, help="steps per run (halved from N = 4000 up)")
    s.add_argument("--rates", type=float, nargs="+", default=[1, 5, 20, 100])
    s.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    s.add_argument("--sizes", type=int, nargs="+", help="instead of the default grid (with --densities)")
    s.add_argument("--densities", type=float, nargs="+", default=[1.0, 0.1])
    s.add_argument("--large", action="store_true", help="add N = 10 000 at density 0.1")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--lava-max-n", type=int, default=100)
    s.add_argument("--no-lava", action="store_true")
    s.add_argument("--no-brian2", action="store_true")
    s.add_argument("--out", default=str(OUT / "lif_sim.csv"))
    t = sub.add_parser("train")
    t.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    t.add_argument("--iterations", type=int, default=5)
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--out", default=str(OUT / "lif_train.csv"))
    sub.add_parser("crossover")
    r = sub.add_parser("repeat")
    r.add_argument("--runs", type=int, default=4)
    sub.add_parser("tables")
    args = p.parse_args()
    torch.set_num_threads(1)
    {"sim": sim, "train": train, "crossover": crossover, "repeat": repeat, "tables": tables}[args.cmd](args)


if __name__ == "__main__":
    main()
