"""``neuro compare SPEC --task 2af --rule eprop``: the rate and the LIF variant of one spec, side by side.

Both variants start from the same weights (``neuro.init_weights(spec, seed)``) and are
trained with the same rule, iterations, batches and seed (a rate spec's LIF variant on a finer step at
3 % of the learning rate, ``--lif-lr``).  A rate spec's LIF variant runs at a
spiking step, ``--lif-dt`` (default 5 ms): each rate step's input, target and mask are held
over ``dt / lif_dt`` LIF steps and the weights are mapped as ``neuro.transfer.rate_to_lif``
maps them (Kim, Li & Sejnowski 2019, λ = 50 Hz per unit rate), so that a neuron is not capped
at one spike per 20 ms step (50 Hz).  Every comparison reports that ceiling and warns when
more than 10 % of the neurons fire above half of it.  The report: held-out accuracy
of each, firing statistics of the LIF network (mean rate in Hz, fraction of silent
neurons, CV of the inter-spike intervals), and the angular Procrustes distance
(``neuro.similarity.procrustes_distance``, in [0, π/2]) between the rate units'
activity and the LIF neurons' filtered spikes on the same test trials.  The command
writes ``summary.json``, ``summary.md``, ``compare.png``, ``traces.npz`` and one run folder
per variant (``rate/``, ``lif/``: spec, weights, history) into ``--out``.

The variants: a rate spec's LIF variant takes ``tau_syn = tau`` (the rate time constant: Kim,
Li & Sejnowski 2019's correspondence); at the spec's own dt (``--lif-dt 0``) also
``tau_readout = tau`` and ``tau_mem >= dt``, the other LIF fields as written in the spec; at
a finer dt ``tau_mem = tau`` and ``tau_readout`` = the rate dt as ``rate_to_lif`` sets them, voltages
in units of its threshold ``1000 / (λ lif_dt)`` (``v_th = 1``; input, recurrent weights and bias divided by
it: the same spikes, and the spec's surrogate keeps its width relative to the threshold), reset to
zero (NIR and Lava have no reset by subtraction, and the comparison's LIF network is meant to be
exported).  A LIF spec is its own LIF
variant (at its own dt); its rate variant takes the spec's ``tau`` and ``activation`` fields.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

import neuro

TEST_TRIALS = 64


LIF_DT = 5.0          # ms: the LIF variant's step when the spec is a rate network (ceiling 200 Hz)
LIF_LR_FACTOR = 0.03  # a rate spec's finer LIF variant trains at this times the rate variant's lr
LAM = 50.0            # Hz per unit rate of the rate → LIF transfer (Kim, Li & Sejnowski 2019's grid: 20-75)
NEAR_CEILING = 0.5    # a neuron firing above this fraction of the ceiling "sits near" it
WARN_FRACTION = 0.1   # warn when more than this fraction of the neurons do
TWO_CHOICE = ("romo", "2af", "dms", "context")     # tasks scored as one of two choices


def variants(spec, lif_dt: float | None = LIF_DT) -> tuple:
    """``(rate_spec, lif_spec)`` of one spec (see the module docstring); ``ValueError`` if either is invalid.

    A rate spec's LIF variant runs at ``lif_dt`` (default 5 ms; None: the rate spec's dt), each
    rate step's input held over ``dt / lif_dt`` LIF steps; a LIF spec is its own LIF variant.
    """
    n = spec.neuron
    p = "populations[0].neuron."
    try:
        if n.model == "rate":
            rate_spec = spec
            changes = {p + "model": "lif", p + "tau_syn": float(n.tau), p + "tau_readout": float(n.tau)}
            if lif_dt is None or lif_dt == spec.dt:
                changes[p + "tau_mem"] = float(max(n.tau_mem, spec.dt))
            else:
                from neuro.transfer import substeps
                substeps(spec.dt, lif_dt)
                changes.update({"dt": float(lif_dt), p + "tau_mem": float(n.tau), p + "reset": "zero",
                                p + "tau_readout": float(spec.dt), p + "noise_std": 0.0, p + "tau_syn_slow": 0.0,
                                p + "v_th": 1.0})
            lif_spec = spec.replace(**changes)
        else:
            lif_spec = spec
            rate_spec = spec.replace(**{p + "model": "rate"})
    except ValueError as e:
        raise ValueError(f"spec {spec.name!r} has no valid {'LIF' if n.model == 'rate' else 'rate'} variant: "
                         f"{e}") from None
    return rate_spec, lif_spec


class HeldTask:
    """A task on a k-times finer grid: each step's input, target and mask held over k substeps.

    The loss is the task's on the fine grid; accuracy reads the last substep of each step
    (``neuro.transfer.downsample``) against the original batch, so it is the task's own measure.
    """

    def __init__(self, task, k: int):
        self.task, self.k = task, int(k)
        self.dt = task.dt / self.k
        self.name, self.kind = task.name, task.kind
        self.n_inputs, self.n_outputs = task.n_inputs, task.n_outputs

    def batch(self, batch_size: int = 32, seed=0, dtype=torch.float32):
        from neuro.tasks import Batch
        from neuro.transfer import upsample
        b = self.task.batch(batch_size, seed=seed, dtype=dtype)
        info = dict(b.info)
        info["held_from"] = b
        return Batch(upsample(b.inputs, self.k), upsample(b.targets, self.k), upsample(b.mask, self.k), info)

    def loss(self, outputs, batch):
        return self.task.loss(outputs, batch)

    def accuracy(self, outputs, batch) -> float:
        from neuro.transfer import downsample
        return self.task.accuracy(downsample(outputs, self.k), batch.info["held_from"])

    def __getattr__(self, name):
        return getattr(self.task, name)


def lif_weights(base, rate_spec, lif_spec, weights):
    """The LIF variant's initial weights: the same weights at the same dt; at a finer dt, the rate
    network's weights transferred as ``neuro.transfer.rate_to_lif`` does (λ = ``LAM``)."""
    if lif_spec.dt == rate_spec.dt or base.neuron.model == "lif":
        return weights.copy()
    from neuro.transfer import rate_to_lif
    if rate_spec.neuron.activation not in ("relu", "retanh", "softplus"):
        return weights.copy()
    _, w = rate_to_lif(rate_spec, weights, LAM, lif_spec.dt, tau_readout=lif_spec.neuron.tau_readout,
                       tau_mem=lif_spec.neuron.tau_mem, reset=lif_spec.neuron.reset)
    v_th = 1000.0 / (LAM * lif_spec.dt)       # rate_to_lif's threshold; voltages in units of it
    return dataclasses.replace(w, W_in=w.W_in / v_th, W_rec=w.W_rec / v_th, b=w.b / v_th)


def ceiling_hz(spec) -> float:
    """The most a LIF neuron can fire: one spike per step, or per refractory period if longer."""
    return 1000.0 / max(spec.dt, spec.neuron.refractory if spec.neuron.refractory > 0 else spec.dt)


def firing_statistics(spikes, mask, dt: float) -> dict:
    """Mean rate (Hz), fraction of neurons that never spike and the mean CV of the
    inter-spike intervals (neurons with >= 3 ISIs) over the valid steps of ``spikes [T, B, N]``."""
    s = np.asarray(spikes, dtype=float)
    m = np.asarray(mask, dtype=float)[..., None] > 0
    s = s * m
    steps = m.sum()                       # valid (step, trial) pairs
    counts = s.sum((0, 1))
    cvs = []
    for j in range(s.shape[2]):
        isis = [np.diff(np.flatnonzero(s[:, b, j])) for b in range(s.shape[1])]
        isis = np.concatenate(isis) if isis else np.array([])
        if len(isis) >= 3:
            cvs.append(isis.std() / isis.mean())
    return {"mean_rate_hz": float(counts.sum() / (steps * s.shape[2]) * 1000.0 / dt),
            "fraction_silent": float((counts == 0).mean()),
            "cv_isi": float(np.mean(cvs)) if cvs else None,
            "neurons_with_cv": len(cvs)}


def _resolve(spec, task, rule, lif_dt=LIF_DT):
    from neuro.resolve import fit_spec_to_task, task_for
    if not isinstance(spec, neuro.NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    rate_spec, lif_spec = variants(spec, lif_dt)
    if isinstance(task, str):
        task = task_for(task, rate_spec)          # ValueError naming the known tasks
    rate_spec, lif_spec = fit_spec_to_task(rate_spec, task), fit_spec_to_task(lif_spec, task)
    base = fit_spec_to_task(spec, task)
    rule_name = rule if isinstance(rule, str) else getattr(rule, "name", type(rule).__name__)
    if not hasattr(neuro.rules.get(rule) if isinstance(rule, str) else rule, "loss_and_gradients"):
        raise ValueError(f"compare trains both variants with one gradient rule (bptt, eprop, …); "
                         f"{rule_name} is an online rule with its own loop")
    return base, rate_spec, lif_spec, task, rule_name


def default_lif_lr(lr: float, substeps: int) -> float:
    """The LIF variant's learning rate: ``LIF_LR_FACTOR · lr`` for a rate spec's variant on a finer step
    (measured on Romo at 5 ms: BPTT at lr 1e-4 reaches 1.000 in 300 iterations, at 1e-3 0.58 in 150, while
    the rate network needs 1e-3), else ``lr``."""
    return lr * LIF_LR_FACTOR if substeps > 1 else lr


def compare(spec, task, rule, iterations: int = 200, seed: int = 0, progress: bool = True, lr: float = 1e-2,
            batch_size: int = 32, test_trials: int = TEST_TRIALS, lif_dt: float | None = LIF_DT,
            lif_lr: float | None = None) -> dict:
    """Train the rate and the LIF variant of ``spec`` on ``task`` with ``rule`` and compare them.

    ``task`` / ``rule``: names or objects.  ``lif_dt``: the LIF variant's step for a rate spec (ms;
    None: the rate spec's own dt).  ``lif_lr``: the LIF variant's learning rate (None: ``default_lif_lr``).
    Returns a JSON-ready dict (``summary.json``) plus ``traces``
    (numpy arrays of the first test trial, for the figure).
    """
    base, rate_spec, lif_spec, task, rule_name = _resolve(spec, task, rule, lif_dt)
    weights = neuro.init_weights(base, seed)
    k = int(round(task.dt / lif_spec.dt)) if lif_spec.dt != task.dt else 1
    tasks = {"rate": task, "lif": HeldTask(task, k) if k > 1 else task}
    init = {"rate": weights.copy(), "lif": lif_weights(base, rate_spec, lif_spec, weights)}
    result = {"spec": spec.name, "task": getattr(task, "name", str(task)), "rule": rule_name,
              "iterations": iterations, "seed": seed, "lr": lr, "batch_size": batch_size,
              "lif_lr": default_lif_lr(lr, k) if lif_lr is None else lif_lr,
              "test_trials": test_trials, "dt_ms": rate_spec.dt, "lif_dt_ms": lif_spec.dt, "substeps": k}
    trajs, nets = {}, {}
    for kind, s in (("rate", rate_spec), ("lif", lif_spec)):
        net = neuro.compile(s, kind, init[kind])
        rule_obj = neuro.rules.resolve(rule)
        t0 = time.perf_counter()
        diverged = None
        try:
            hist = neuro.train(net, tasks[kind], rule_obj, iterations=iterations,
                               lr=result["lif_lr"] if kind == "lif" else lr, batch_size=batch_size,
                               seed=seed, progress=progress, desc=f"{kind} {rule_name}")
        except neuro.TrainingError as e:      # the model holds the last good weights
            hist = e.history if e.history is not None else neuro.History()
            diverged = str(e)
        seconds = time.perf_counter() - t0
        test = tasks[kind].batch(test_trials, seed=(seed, 999_983))
        with torch.no_grad():
            traj = net.run(test.inputs)
        trajs[kind] = (traj, test)
        nets[kind] = net
        acc = [a for a in hist.accuracy if a == a]
        result[kind] = {"accuracy": float(tasks[kind].accuracy(traj.outputs, test)),
                        "train_accuracy_last": float(np.mean(acc[-10:])) if acc else None,
                        "final_loss": float(np.mean(hist.loss[-10:])) if len(hist) else None,
                        "train_seconds": round(seconds, 3), "diverged": diverged,
                        "neuron": {k: v for k, v in vars(s.neuron).items()},
                        "history": {"iteration": hist.iteration, "loss": hist.loss, "accuracy": hist.accuracy}}
    (rate_traj, rate_test), (lif_traj, lif_test) = trajs["rate"], trajs["lif"]
    lif_mask = lif_test.mask.numpy()
    firing = firing_statistics(lif_traj.spikes.numpy(), lif_mask, lif_spec.dt)
    firing.update(ceiling_statistics(lif_traj.spikes.numpy(), lif_mask, lif_spec))
    result["lif"]["firing"] = firing
    mask = rate_test.mask.numpy()
    valid = mask.reshape(-1) > 0
    from neuro.transfer import downsample
    lif_rates = downsample(lif_traj.rates, k)                  # the LIF state at the end of each rate step
    x = rate_traj.rates.numpy().reshape(-1, base.n_hidden)[valid]
    y = lif_rates.numpy().reshape(-1, base.n_hidden)[valid]
    try:
        result["procrustes_distance"] = neuro.similarity.procrustes_distance(x, y)
        result["procrustes_note"] = ("rate units' f(h) vs LIF filtered spikes (at the last substep of each rate "
                                     "step), valid steps of the test trials")
    except ValueError as e:       # e.g. a silent LIF network: its representation has no shape
        result["procrustes_distance"] = None
        result["procrustes_note"] = str(e)
    result["notes"] = notes(result, lif_spec)
    T0 = int(mask[:, 0].sum())
    result["traces"] = {"rate_rates": rate_traj.rates[:T0, 0].numpy(),
                        "lif_spikes": lif_traj.spikes[:T0 * k, 0].numpy(),
                        "lif_voltage": lif_traj.states[:T0 * k, 0].numpy(),
                        "lif_filtered": lif_traj.rates[:T0 * k, 0].numpy(),
                        "v_th": lif_spec.neuron.v_th}
    result["_nets"] = nets          # the trained networks (write_outputs saves them; not in summary.json)
    return result


def ceiling_statistics(spikes, mask, lif_spec) -> dict:
    """The firing-rate ceiling (Hz) and the fraction of neurons whose mean rate over the valid steps
    is above ``NEAR_CEILING`` of it."""
    s = np.asarray(spikes, dtype=float) * (np.asarray(mask, dtype=float)[..., None] > 0)
    steps = max(float((np.asarray(mask) > 0).sum()), 1.0)
    hz = s.sum((0, 1)) / steps * 1000.0 / lif_spec.dt
    top = ceiling_hz(lif_spec)
    return {"ceiling_hz": top, "max_rate_hz": float(hz.max()) if hz.size else 0.0,
            "fraction_near_ceiling": float((hz > NEAR_CEILING * top).mean()) if hz.size else 0.0}


def notes(r: dict, lif_spec) -> list[str]:
    """What a reader should know before comparing the two variants' numbers."""
    out = []
    f = r["lif"]["firing"]
    if f["fraction_near_ceiling"] > WARN_FRACTION:
        why = ("the spiking variant is limited by its time step; use a smaller dt" if lif_spec.dt > 1.0 else
               "training drove them to fire at nearly every step (saturated), which a smaller dt does not remove")
        out.append(f"{f['fraction_near_ceiling']:.0%} of the LIF neurons fire above {NEAR_CEILING:.0%} of the "
                   f"ceiling of {f['ceiling_hz']:.0f} Hz (one spike per {lif_spec.dt:g} ms step): {why}")
    elif f["ceiling_hz"] < 200:
        out.append(f"the LIF ceiling is {f['ceiling_hz']:.0f} Hz at dt {lif_spec.dt:g} ms")
    for kind in ("rate", "lif"):
        h = r[kind]["history"]["loss"]
        if r[kind].get("diverged"):
            out.append(f"the {kind} variant diverged after {len(h)} of {r['iterations']} iterations and is evaluated "
                       f"with its last good weights: {r[kind]['diverged']}")
        elif r[kind]["final_loss"] is not None and h and not r[kind]["final_loss"] < h[0]:
            out.append(f"the {kind} variant did not learn: its final loss {r[kind]['final_loss']:.4g} is not below "
                       f"its first {h[0]:.4g}")
    if r["task"] in TWO_CHOICE:
        n = r["test_trials"]
        bar = 0.5 + 2 * (0.25 / n) ** 0.5           # two standard errors above a coin flip
        for kind in ("rate", "lif"):
            if r[kind]["accuracy"] < bar:
                out.append(f"the {kind} variant's test accuracy {r[kind]['accuracy']:.3f} is not above chance for two "
                           f"choices (below {bar:.3f}, two standard errors above 0.5 on {n} trials): it did not "
                           f"learn the task in {len(r[kind]['history']['loss'])} iterations at lr {_lr(r, kind):g}")
    if f["fraction_silent"] > 0.5:
        out.append(f"{f['fraction_silent']:.0%} of the LIF neurons are silent on the test trials")
    return out


def _lr(r: dict, kind: str) -> float:
    """The learning rate a variant trained with (summaries before ``lif_lr`` existed used ``lr`` for both)."""
    return r.get("lif_lr", r["lr"]) if kind == "lif" else r["lr"]


def summary_markdown(r: dict) -> str:
    f = r["lif"]["firing"]
    pd = r["procrustes_distance"]
    cv = "n/a" if f["cv_isi"] is None else f"{f['cv_isi']:.2f}"
    lines = [f"# neuro compare: {r['spec']} on {r['task']} with {r['rule']}", "",
             f"{r['iterations']} iterations, lr {r['lr']:g} (rate) / {_lr(r, 'lif'):g} (LIF), batch {r['batch_size']}, seed {r['seed']}, "
             f"dt {r['dt_ms']} ms (rate), {r.get('lif_dt_ms', r['dt_ms'])} ms (LIF, each rate step's input held "
             f"over {r.get('substeps', 1)} steps); held-out accuracy on {r['test_trials']} test trials.", "",
             "| variant | test accuracy | train accuracy (last 10) | final loss | train time (s) |",
             "|---|---|---|---|---|"]
    for k in ("rate", "lif"):
        v = r[k]
        tr = "n/a" if v["train_accuracy_last"] is None else f"{v['train_accuracy_last']:.3f}"
        fl = "n/a" if v["final_loss"] is None else f"{v['final_loss']:.4f}"
        lines.append(f"| {k} | {v['accuracy']:.3f} | {tr} | {fl} | {v['train_seconds']:.1f} |")
    lines += ["", f"LIF firing: mean rate {f['mean_rate_hz']:.1f} Hz, silent fraction {f['fraction_silent']:.2f}, "
                  f"CV of ISI {cv} ({f['neurons_with_cv']} neurons with >= 3 ISIs); ceiling "
                  f"{f.get('ceiling_hz', float('nan')):.0f} Hz, highest rate "
                  f"{f.get('max_rate_hz', float('nan')):.1f} Hz, "
                  f"{f.get('fraction_near_ceiling', 0.0):.0%} of the neurons above {NEAR_CEILING:.0%} of the ceiling.",
              "",
              "Procrustes distance (rate activity vs LIF filtered spikes): "
              + ("undefined — " + r["procrustes_note"] if pd is None
                 else f"{pd:.3f} rad (0 = same shape, π/2 = orthogonal)"),
              ""]
    if r.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in r["notes"]] + [""]
    return "\n".join(lines)


def plot_compare(r: dict, path) -> None:
    """``compare.png`` in the project's figure style, its data in ``compare.csv`` beside it: learning curves
    (a variant that diverged is marked where it stopped), the spike raster, and the three most modulated
    neurons' membrane potential, filtered spikes and rate-unit activity on test trial 0."""
    from neuro import plots
    plt = plots.pyplot()
    path = Path(path)
    fig, rows = _plot(plt, plots, r)
    plots.write_csv(path.with_suffix(".csv"), ["panel", "variant", "neuron", "x", "value"], rows)
    plots.save(fig, path)


def _plot(plt, plots, r: dict):
    tr, dt = r["traces"], r.get("lif_dt_ms", r["dt_ms"])
    rate_dt = r["dt_ms"]
    rows = []
    fig, ax = plt.subplots(2, 3, figsize=(13, 6.5))
    for k in ("rate", "lif"):
        c = plots.VARIANT_COLORS[k]
        h = r[k]["history"]
        it = np.asarray(h["iteration"], dtype=float)
        loss = np.asarray(h["loss"], dtype=float)
        acc = np.asarray(h["accuracy"], dtype=float)
        ok = ~np.isnan(acc)
        label = "rate" if k == "rate" else f"LIF (dt {dt:g} ms)"
        ax[0, 0].plot(it, loss, color=c, lw=1, label=label)
        ax[0, 1].plot(it[ok], acc[ok], color=c, lw=1, label=label)
        rows += [["loss", k, "", float(i), float(v)] for i, v in zip(it, loss)]
        rows += [["accuracy", k, "", float(i), float(v)] for i, v in zip(it[ok], acc[ok])]
    ax[0, 0].set(title="training loss", xlabel="iteration", ylabel="loss (the task's, per batch)", yscale="log")
    ax[0, 1].set(title="training accuracy", xlabel="iteration", ylabel="accuracy (fraction correct)",
                 ylim=(-0.02, 1.02))
    for k in ("rate", "lif"):
        if r[k].get("diverged"):
            stop = len(r[k]["history"]["loss"])
            for a in (ax[0, 0], ax[0, 1]):
                plots.mark_diverged(a, stop, plots.VARIANT_COLORS[k])
    plots.legend_outside(ax[0, 1])
    s = tr["lif_spikes"]
    t_idx, n_idx = np.nonzero(s)
    ax[0, 2].scatter(t_idx * dt, n_idx, s=2, c="k", marker="|")
    ax[0, 2].set(title="LIF spike raster (test trial 0)", xlabel="time (ms)", ylabel="neuron",
                 xlim=(0, s.shape[0] * dt), ylim=(-0.5, s.shape[1] - 0.5))
    rows += [["raster", "lif", int(n), float(t * dt), 1.0] for t, n in zip(t_idx, n_idx)]
    t = np.arange(s.shape[0]) * dt
    show = np.argsort(-tr["lif_filtered"].std(0))[:3]      # the most modulated neurons
    colors = plots.categorical(3)
    v = tr["lif_voltage"]
    step = max(1.5 * tr["v_th"], float(np.ptp(v[:, show])) * 1.1 if v.size else 0.0)
    t_rate = np.arange(len(tr["rate_rates"])) * rate_dt
    for i, j in enumerate(show):
        ax[1, 0].plot(t, v[:, j] + step * i, lw=0.8, color=colors[i])
        ax[1, 0].axhline(tr["v_th"] + step * i, color="gray", ls=":", lw=0.6)
        ax[1, 1].plot(t, tr["lif_filtered"][:, j], lw=0.8, color=colors[i], label=f"neuron {j}")
        ax[1, 2].plot(t_rate, tr["rate_rates"][:, j], lw=0.8, color=colors[i], label=f"unit {j}")
        rows += [["membrane", "lif", int(j), float(x), float(y)] for x, y in zip(t, v[:, j])]
        rows += [["filtered spikes", "lif", int(j), float(x), float(y)] for x, y in zip(t, tr["lif_filtered"][:, j])]
        rows += [["rate f(h)", "rate", int(j), float(x), float(y)] for x, y in zip(t_rate, tr["rate_rates"][:, j])]
    ax[1, 0].set(title="LIF membrane potential before reset\n(offset per neuron; dotted: threshold)",
                 ylabel="v (threshold units, offset)", xlabel="time (ms)")
    ax[1, 1].set(title="LIF filtered spikes (same neurons)", xlabel="time (ms)",
                 ylabel="filtered spike train (spikes)")
    ax[1, 2].set(title="rate units f(h) (same indices)", xlabel="time (ms)", ylabel="rate f(h) (a.u.)")
    plots.legend_outside(ax[1, 2], handles=ax[1, 1].get_legend_handles_labels()[0],
                         labels=[f"neuron / unit {j}" for j in show])
    pd = r["procrustes_distance"]
    fig.suptitle(f"{r['spec']} / {r['task']} / {r['rule']}: test accuracy rate {r['rate']['accuracy']:.2f}, "
                 f"LIF {r['lif']['accuracy']:.2f}; LIF {r['lif']['firing']['mean_rate_hz']:.1f} Hz; "
                 f"Procrustes {'n/a' if pd is None else f'{pd:.2f}'} rad")
    return fig, rows


def write_outputs(r: dict, out) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in r.items() if k != "traces" and not k.startswith("_")}
    (out / "summary.json").write_text(json.dumps(data, indent=2, default=float))
    (out / "summary.md").write_text(summary_markdown(r))
    np.savez_compressed(out / "traces.npz", **{k: np.asarray(v) for k, v in r["traces"].items()})
    for kind, net in r.get("_nets", {}).items():
        save_variant(net, r, kind, out / kind)
    plot_compare(r, out / "compare.png")


def save_variant(net, r: dict, kind: str, folder) -> None:
    """One variant as a run folder (spec.toml, args.json, checkpoint.pt, history.csv) that
    ``neuro.load_run``, ``neuro export`` and ``neuro lyapunov`` read like a ``neuro train`` folder."""
    from neuro.io import atomic_torch_save, atomic_write_text
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "spec.toml", neuro.spec.dumps(net.spec))
    config = {"spec": r["spec"], "task": r["task"], "rule": r["rule"], "backend": kind, "iterations": r["iterations"],
              "lr": _lr(r, kind), "batch_size": r["batch_size"], "seed": r["seed"], "from": "neuro compare",
              "task_dt": r["dt_ms"]}      # the task's grid; a finer LIF step holds each input over the substeps
    atomic_write_text(folder / "args.json", json.dumps(config, indent=2))
    h = r[kind]["history"]
    history = neuro.History(list(h["iteration"]), list(h["loss"]), list(h["accuracy"]))
    atomic_torch_save({"model": {k: v.detach().clone() for k, v in net.state_dict().items()},
                       "history": history.state(), "iteration": len(history)}, folder / "checkpoint.pt")
    history.to_csv(folder / "history.csv")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file (.toml/.json) or a ready model name, e.g. romo_rate or 2af_lif")
    p.add_argument("--task", default="2af", help=f"one of {neuro.tasks.names()}")
    p.add_argument("--rule", default="eprop", help="a gradient rule, e.g. eprop or bptt")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-2, help="the rate variant's learning rate (Adam)")
    p.add_argument("--lif-lr", type=float, default=None, help="the LIF variant's learning rate (default: "
                   f"{LIF_LR_FACTOR:g} x --lr for a rate spec's LIF variant on a finer step, else --lr)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lif-dt", type=float, default=LIF_DT, help="the LIF variant's time step in ms for a rate spec "
                   "(inputs held over the substeps; 0 = the spec's dt)")
    p.add_argument("--out", default=None, help="output folder (default runs/compare-SPEC-TASK-RULE-sSEED)")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from neuro.resolve import load_spec_arg
    spec = load_spec_arg(args.spec)
    if args.task not in neuro.tasks.names():
        raise ValueError(f"task must be one of {neuro.tasks.names()}, got {args.task!r}")
    r = compare(spec, args.task, args.rule, iterations=args.iterations, seed=args.seed,
                progress=not args.no_progress, lr=args.lr, batch_size=args.batch_size,
                lif_dt=args.lif_dt or None, lif_lr=args.lif_lr)
    out = Path(args.out or f"runs/compare-{spec.name}-{args.task}-{args.rule}-s{args.seed}")
    write_outputs(r, out)
    f, pd = r["lif"]["firing"], r["procrustes_distance"]
    print(f"test accuracy: rate {r['rate']['accuracy']:.3f}, LIF {r['lif']['accuracy']:.3f}; "
          f"LIF {f['mean_rate_hz']:.1f} Hz, {f['fraction_silent']:.0%} silent; Procrustes distance "
          f"{'n/a' if pd is None else f'{pd:.3f}'} rad; written to {out}")
    print(f"LIF at dt {r['lif_dt_ms']:g} ms: ceiling {f['ceiling_hz']:.0f} Hz, highest rate {f['max_rate_hz']:.1f} Hz")
    import sys
    for n in r["notes"]:
        print(f"warning: {n}", file=sys.stderr)
    return 0
