"""``neuro reproduce force``: FORCE and full-FORCE in the authors' setups, rate and spiking.

1. Rate FORCE, Sussillo & Abbott 2009 (``FORCE.m``): N = 1000, p = 0.1, g = 1.5,
   ``J ~ g·N(0,1)/√(pN)`` sparse, τ = 10 ms, dt = 0.1 τ, P(0) = I (α = 1), RLS every 2 steps,
   feedback U(-1, 1), the sum of four sines (period 120 τ); 1440 τ of training, then the
   test with learning off and the output fed back.
2. Spiking FORCE, Nicola & Clopath 2017 (``LIFFORCESINE.m``): N = 2000 LIF, dt = 0.05 ms,
   a 5 Hz sine; mapped onto our LIF contract by ``nicola_clopath`` (see there).
3. full-FORCE vs FORCE, DePasquale et al. 2018 (``fF_v_F.m``): the pulse -> chirp task,
   τ = 10 ms, dt = 1 ms, g = 1.5, P(0) = I, RLS with probability ½ per step, error
   ``100·Σ(z-f)²/Σf²`` over test trials, for several network sizes: full-FORCE reaches a
   given error with fewer units.

Writes into the run folder: ``summary.md`` / ``summary.csv`` (setup, N, NMSE, error %,
seconds), ``curves.csv`` (training NMSE per segment), and figures ``sum_of_sines.png``,
``spiking_sine.png``, ``chirp.png``, ``error_vs_size.png``.  ``--quick`` is a reduced version
(smaller networks, shorter training) that runs in a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

import neuro
from neuro.io import atomic_write_text
from neuro.lif_params import lif_constants
from neuro.studies import common
from neuro.tasks.force_targets import Melody, PulseChirp, Sine, SumOfSines
from neuro.weights import Weights


# -- the setups -----------------------------------------------------------------------
def rate_spec(n: int, g: float = 1.5, density: float = 0.1, tau: float = 10.0, dt: float = 1.0,
              input_gain: float = 0.0) -> neuro.NetworkSpec:
    """A tanh rate network, ``J ~ g·N(0,1)/√(density·N)`` sparse, zero readout (Sussillo & Abbott)."""
    return neuro.NetworkSpec(
        name=f"force_rate_{n}", dt=dt, n_inputs=1, n_outputs=1,
        populations=[neuro.spec.PopulationSpec(size=n, neuron=neuro.spec.NeuronSpec(tau=tau, activation="tanh"))],
        input=neuro.spec.ConnectionSpec(init="uniform", gain=input_gain),
        recurrent=neuro.spec.ConnectionSpec(gain=g, density=density),
        readout=neuro.spec.ConnectionSpec(init="zeros"))


def depasquale_weights(spec: neuro.NetworkSpec, seed: int) -> Weights:
    """The spec's weights with the demo's input weights ``u_in ~ U(-1, 1)``."""
    w = neuro.init_weights(spec, seed)
    w.W_in = np.random.default_rng(seed + 7919).uniform(-1, 1, w.W_in.shape) * w.mask_in
    return w


def nicola_clopath(n: int = 2000, dt: float = 0.05, seed: int = 0, G: float = 0.04, Q: float = 10.0,
                   density: float = 0.1, tau_m: float = 10.0, tau_rise: float = 2.0, tau_decay: float = 20.0,
                   refractory: float = 2.0, rls_interval_ms: float = 2.5):
    """Nicola & Clopath 2017's spiking FORCE network on our LIF contract: (spec, weights, FORCE options).

    Their neuron: ``τ_m dv/dt = -v + I``, ``I = IPSC + E z + BIAS``, v_reset = -65 mV,
    v_peak = -40 mV, BIAS = -40 mV, 2 ms refractory; IPSC = ω * (double exponential,
    2 ms rise, 20 ms decay, unit area); ``ω = G·N(0,1)/(√N·p)`` with p = 0.1 and zero mean
    over each row's nonzero entries; ``E = Q·U(-1, 1)``; z reads the same double-exponential
    filtered spikes (in Hz); P(0) = 0.1·dt·I (dt in s); RLS every 50 steps of 0.05 ms.

    Mapping onto ``v[t] = (1-dv) v[t-1] + u[t] + b``, ``u[t] = (1-du) u[t-1] + a[t]``:

    - voltages shift by +65 mV: reset 0, threshold v_th = 25 mV, rest at BIAS + 65 = 25 mV,
      so ``b = 25·dv`` (a constant drive c per step settles at c/dv);
    - the recurrent double-exponential synapse is the sum of our two currents with opposite
      weights: the slow current (τ_syn_slow = 20 ms decay) gets ``W_slow = A`` and the fast one
      (τ_syn = 2 ms rise) ``W_rec = -A``, so a spike drives v by ``A[(1-du_s)^k - (1-du)^k]``
      at lag k, the discrete double exponential; a spike moves v in total by ω/τ_m in the paper
      and by ``A (1/du_s - 1/du)`` here, which fixes A;
    - the readout filter r takes the 20 ms decay (single exponential);
    - the feedback drive ``dv·E z`` per step enters u (gain 1/du): ``feedback_scale = Q·du·dv``;
    - r here is c = dt/d_r (≈ τ_decay in s) times their r (Hz), so their prior P0 = λ I
      (λ = 0.1·dt at their dt = 0.05 ms, kept at other dt: the number of RLS updates per second
      stays 400) becomes ``alpha = c²/λ`` on our r; RLS every ``rls_interval_ms / dt`` steps.
    """
    spec = neuro.NetworkSpec(
        name=f"nicola_clopath_{n}", dt=dt, n_inputs=1, n_outputs=1,
        populations=[neuro.spec.PopulationSpec(size=n, neuron=neuro.spec.NeuronSpec(
            model="lif", tau_mem=tau_m, tau_syn=tau_rise, tau_syn_slow=tau_decay, tau_readout=tau_decay,
            v_th=25.0, reset="zero",
            refractory=refractory))],
        input=neuro.spec.ConnectionSpec(init="uniform", gain=0.0),
        recurrent=neuro.spec.ConnectionSpec(gain=1.0, density=density, trainable=False),
        readout=neuro.spec.ConnectionSpec(init="zeros"))
    c = lif_constants(spec.neuron, dt)
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, n)) < density).astype(float)
    omega = G * rng.standard_normal((n, n)) * mask / (math.sqrt(n) * density)
    counts = np.maximum(mask.sum(1, keepdims=True), 1)
    omega = (omega - omega.sum(1, keepdims=True) / counts) * mask        # zero mean over each row's synapses
    w = neuro.init_weights(spec, seed)
    area = omega / (tau_m / 1000.0) / (1.0 / c.du_slow - 1.0 / c.du)     # A, see above
    w.W_rec, w.mask_rec = -area, mask
    w.extra["W_slow"] = area
    w.b = np.full(n, 25.0 * c.dv)
    scale = (dt / 1000.0) / c.d_readout
    options = dict(alpha=scale ** 2 / (0.1 * 0.05 / 1000.0), every=max(1, int(round(rls_interval_ms / dt))),
                   feedback_scale=Q * c.du * c.dv, init_std=1.0)
    return spec, w, options


# -- runs -------------------------------------------------------------------------------
def run_sum_of_sines(n: int, segments: int, seed: int = 0, progress: bool = True):
    """Sussillo & Abbott: one period (120 τ) per segment; returns (history, spec)."""
    spec = rate_spec(n)
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, seed), dtype=torch.float64)
    rule = neuro.rules.get("force", alpha=1.0, every=2, test=2)
    return rule.fit(net, SumOfSines(dt=spec.dt, period=120 * spec.neuron.tau), iterations=segments, seed=seed,
                    progress=progress), spec


def run_spiking_sine(n: int, dt: float, seconds: float, seed: int = 0, progress: bool = True,
                     dtype=torch.float64):
    """Nicola & Clopath's 5 Hz sine; segments of one period (200 ms), 1 s of test."""
    spec, w, options = nicola_clopath(n, dt, seed)
    net = neuro.compile(spec, "lif", w, dtype=dtype)
    task = Sine(dt=dt, n_steps=int(round(200.0 / dt)), frequency=5.0)
    rule = neuro.rules.get("force", warmup=1, test=5, **options)
    return rule.fit(net, task, iterations=int(round(seconds * 5)), seed=seed, progress=progress), net


def run_chirp(rule_name: str, n: int, trials: int, seed: int = 0, progress: bool = True, test: int = 5):
    """DePasquale et al.'s demo task with ``rule_name`` in {"force", "full_force"}: a dense g = 1.5
    network, RLS with probability ½ per step, 2 warm-up trials (target clamped in)."""
    spec = rate_spec(n, density=1.0, input_gain=1.0)
    net = neuro.compile(spec, "rate", depasquale_weights(spec, seed), dtype=torch.float64)
    opts = dict(alpha=1.0, every=2, random_updates=True, warmup=2, test=test)
    rule = neuro.rules.get(rule_name, **opts)
    return rule.fit(net, PulseChirp(dt=spec.dt), iterations=trials, seed=seed, progress=progress)


def run_melody(n: int, segments: int, seed: int = 0, progress: bool = True):
    """Rate FORCE on the five-output "Ode to Joy" target (one period of 15 notes per segment)."""
    spec = rate_spec(n).replace(n_outputs=5)
    net = neuro.compile(spec, "rate", neuro.init_weights(spec, seed), dtype=torch.float64)
    task = Melody(dt=spec.dt, n_steps=3000, note_ms=200.0)
    return neuro.rules.get("force", alpha=1.0, every=2, test=2).fit(net, task, iterations=segments, seed=seed,
                                                                     progress=progress)


# -- the study ----------------------------------------------------------------------------
@dataclass
class Config:
    rate_n: int = 1000
    rate_periods: int = 12               # 1440 τ of training, as in Sussillo & Abbott's code
    melody_n: int = 1000
    melody_periods: int = 8
    spiking_n: int = 2000
    spiking_dt: float = 0.05
    spiking_seconds: float = 5.0         # Nicola & Clopath train from 5 s to 10 s
    chirp_trials: int = 60
    full_force_sizes: list = field(default_factory=lambda: [50, 100, 200, 300])
    force_sizes: list = field(default_factory=lambda: [100, 200, 300, 500, 1000])
    seed: int = 0

    @classmethod
    def quick(cls) -> "Config":
        return cls(rate_n=300, rate_periods=6, melody_n=300, melody_periods=3, spiking_n=400, spiking_dt=0.1,
                   spiking_seconds=2.0, chirp_trials=30, full_force_sizes=[100, 200], force_sizes=[200, 300])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smaller networks, shorter training: a few minutes")
    p.add_argument("--out", default=None, help="run folder (default runs/force[-quick])")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    cfg = Config.quick() if args.quick else Config()
    out = Path(args.out or ("runs/force-quick" if args.quick else "runs/force"))
    study(cfg, out, progress=not args.no_progress)
    print(f"results in {out}/ (summary.md, summary.csv, curves.csv, *.png)")
    return 0


def _row(setup: str, rule: str, backend: str, n: int, history) -> dict:
    return {"setup": setup, "rule": rule, "backend": backend, "N": n,
            "final_train_nmse": history.loss[-1] if history.loss else float("nan"),
            "test_nmse": history.test_nmse, "test_error_pct": history.test_error_pct,
            "seconds": round(history.seconds, 1)}


def study(cfg: Config, out: Path, progress: bool = True) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
    rows, curves, traces = [], [], {}

    def keep(row, history, key=None):
        rows.append(row)
        curves.extend({"setup": row["setup"], "rule": row["rule"], "N": row["N"], "segment": i, "train_nmse": v}
                      for i, v in enumerate(history.loss))
        if key:
            traces[key] = history
        common.write_rows(out / "summary.csv", rows)      # after every run, so a crash keeps them
        common.write_rows(out / "curves.csv", curves)

    h, _ = run_sum_of_sines(cfg.rate_n, cfg.rate_periods, cfg.seed, progress)
    keep(_row("sum_of_sines", "force", "rate", cfg.rate_n, h), h, "sum_of_sines")
    h = run_melody(cfg.melody_n, cfg.melody_periods, cfg.seed, progress)
    keep(_row("melody", "force", "rate", cfg.melody_n, h), h, "melody")
    h, _ = run_spiking_sine(cfg.spiking_n, cfg.spiking_dt, cfg.spiking_seconds, cfg.seed, progress)
    keep(_row("sine_5hz", "force", "lif", cfg.spiking_n, h), h, "spiking_sine")
    for rule, sizes in (("full_force", cfg.full_force_sizes), ("force", cfg.force_sizes)):
        for n in sizes:
            h = run_chirp(rule, n, cfg.chirp_trials, cfg.seed, progress)
            keep(_row("pulse_chirp", rule, "rate", n, h), h, f"chirp_{rule}_{n}")
    atomic_write_text(out / "summary.md", summarize(rows, cfg))
    plot(rows, traces, cfg, out)
    return rows


def summarize(rows: list[dict], cfg: Config) -> str:
    lines = ["| setup | rule | backend | N | final training NMSE | test NMSE | test error % | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setup']} | {r['rule']} | {r['backend']} | {r['N']} | {r['final_train_nmse']:.3g} | "
                     f"{r['test_nmse']:.3g} | {r['test_error_pct']:.3g} | {r['seconds']} |")
    chirp = [r for r in rows if r["setup"] == "pulse_chirp"]

    def smallest(rule, bound=1.0):
        ok = [r["N"] for r in chirp if r["rule"] == rule and r["test_error_pct"] < bound]
        return min(ok) if ok else None

    lines += ["", f"Pulse → chirp ({cfg.chirp_trials} training trials): the smallest network under 1 % test error is "
              f"N = {smallest('full_force')} with full-FORCE and N = {smallest('force')} with FORCE "
              "(None: no size tried reached it)."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], traces: dict, cfg: Config, out: Path) -> None:
    """The study's figures (``neuro.plots`` style), each with its data in a CSV of the same name."""
    from neuro import plots
    plt = plots.pyplot()

    def trace_figure(key, title, dt, name):
        h = traces[key]
        targets = np.asarray(h.test_targets, dtype=float).reshape(len(h.test_targets), -1)
        outputs = np.asarray(h.test_outputs, dtype=float).reshape(len(h.test_outputs), -1)
        t = np.arange(targets.shape[0]) * dt
        k = targets.shape[1]
        colors = plots.categorical(k) if k > 1 else [plots.VARIANT_COLORS["lif"]]
        fig, ax = plt.subplots(figsize=(8, 2.2 + 0.25 * k))
        for j in range(k):
            ax.plot(t, targets[:, j], color=plots.TARGET_COLOR if k == 1 else colors[j], lw=3.5, alpha=0.35)
            ax.plot(t, outputs[:, j], color=colors[j], lw=1, label=f"output {j + 1}" if k > 1 else None)
        # one legend entry per output (its colour), and one per line style
        handles, labels = ax.get_legend_handles_labels()
        if k > 1:
            handles += [plots.line_handle(color="0.4", lw=3.5, alpha=0.35), plots.line_handle(color="0.2", lw=1)]
            labels += ["target (thick, pale)", "network, learning off"]
        else:
            handles += [plots.line_handle(color=plots.TARGET_COLOR, lw=3.5, alpha=0.35),
                        plots.line_handle(color=colors[0], lw=1)]
            labels += ["target", "network, learning off"]
        plots.legend_outside(ax, handles=handles, labels=labels)
        ax.set(xlabel="time in the test (ms)", ylabel="output z (a.u.)" if k == 1 else "outputs z (a.u.)",
               title=f"{title}: test NMSE {h.test_nmse:.3g}", xlim=(0, t[-1] if len(t) else 1))
        if not np.all(np.isfinite(outputs)):
            bad = int(np.argmax(~np.all(np.isfinite(outputs), 1)))
            plots.mark_diverged(ax, t[bad], "k")
        plots.write_csv((out / name).with_suffix(".csv"),
                        ["time_ms"] + [f"target_{j + 1}" for j in range(k)] + [f"output_{j + 1}" for j in range(k)],
                        [[float(ti)] + list(map(float, a)) + list(map(float, b))
                         for ti, a, b in zip(t, targets, outputs)])
        plots.save(fig, out / name)

    trace_figure("sum_of_sines", f"Rate FORCE, N = {cfg.rate_n}", 1.0, "sum_of_sines.png")
    trace_figure("melody", f"Rate FORCE, melody, N = {cfg.melody_n}", 1.0, "melody.png")
    trace_figure("spiking_sine", f"Spiking FORCE, N = {cfg.spiking_n} LIF", cfg.spiking_dt, "spiking_sine.png")
    best = min((r for r in rows if r["rule"] == "full_force"), key=lambda r: r["N"] if r["test_error_pct"] < 1
               else float("inf"), default=None)
    if best is not None:
        n = best["N"]
        trace_figure(f"chirp_full_force_{n}", f"full-FORCE, pulse → chirp, N = {n}", 1.0, "chirp.png")
    error_vs_size(rows, out / "error_vs_size.png")


def error_vs_size(rows: list[dict], path: Path) -> Path:
    """Test error vs network size on the pulse → chirp task, one line per rule; a run whose error is
    not finite (it diverged) is an ``×`` at the top edge.  Data in ``error_vs_size.csv``."""
    from neuro import plots
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    data, bad = [], []
    for rule in ("full_force", "force"):
        pts = sorted((int(r["N"]), float(r["test_error_pct"])) for r in rows
                     if r["setup"] == "pulse_chirp" and r["rule"] == rule)
        data += [[rule, n, e, int(not np.isfinite(e))] for n, e in pts]
        ok = [(n, e) for n, e in pts if np.isfinite(e)]
        color = plots.rule_color(rule)
        if ok:
            ax.plot(*zip(*ok), "o-", color=color, label=rule.replace("_", "-"))
        bad += [(n, color) for n, e in pts if not np.isfinite(e)]
    ax.axhline(1.0, color="0.6", ls=":", lw=1, label="1 % error")
    ax.set(xscale="log", yscale="log", xlabel="network size N (units)", ylabel="test error 100·Σ(z−f)²/Σf² (%)",
           title="pulse → chirp (DePasquale et al. 2018)")
    for n, color in bad:
        plots.mark_diverged(ax, n, color)
    plots.legend_outside(ax)
    plots.write_csv(path.with_suffix(".csv"), ["rule", "N", "test_error_pct", "diverged"], data)
    return plots.save(fig, path)
