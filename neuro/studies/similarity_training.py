"""The similarity study's second stage: train each rule's members as one ensemble, and at
every snapshot record each member's accuracy and its Procrustes distance to every
reference; keep the final networks' condition activity and recurrent weights."""
from __future__ import annotations

import shutil

import numpy as np
import torch

import neuro
from neuro import similarity
from neuro.studies import common
from neuro.studies import similarity_references as refs


def condition_activity(net, batch) -> tuple[np.ndarray, torch.Tensor]:
    """Noise-free rates ``[E, conditions, time, units]`` (E = 1 for a single network) and outputs."""
    inputs = batch.inputs.to(net.W_rec.dtype)
    lead = tuple(net.W_rec.shape[:-2])
    if lead:
        inputs = inputs.unsqueeze(1).expand((inputs.shape[0],) + lead + tuple(inputs.shape[1:]))
    h = net.initial_state(inputs.shape[-2])
    with torch.no_grad():
        traj = net.run(inputs, noise=torch.zeros((inputs.shape[0],) + tuple(h.shape), dtype=inputs.dtype))
    rates, outputs = traj.rates, traj.outputs
    if not lead:
        rates, outputs = rates.unsqueeze(1), outputs.unsqueeze(1)
    return rates.permute(1, 2, 0, 3).double().numpy(), outputs                  # [E, C, T, N], [T, E, C, o]


def accuracies(task, outputs, batch) -> list[float]:
    return [float(np.clip(task.normalized_accuracy(outputs[:, e], batch), 0.0, 1.0))
            for e in range(outputs.shape[1])]


def snapshot_iterations(total: int, k: int, linear: int = 0) -> list[int]:
    """0, ``k - 1`` log-spaced iterations up to ``total``, and ``linear`` evenly spaced ones; sorted, unique."""
    its = np.round(np.geomspace(1, total, max(k - 1, 1))).astype(int)
    if linear:
        its = np.concatenate([its, np.round(np.linspace(0, total, linear + 1)[1:]).astype(int)])
    return [0] + [int(i) for i in np.unique(its) if i > 0]


def members(rule: str, dale: bool, cfg) -> list[tuple[dict, common.Member]]:
    """(labels, member) for the seeds at the default setting, plus gains / learning rates."""
    found, seen = [], set()

    def add(gain, lr, seed):
        key = (gain, lr, seed)
        if key not in seen:
            seen.add(key)
            over = {"recurrent.gain": gain, "readout.gain": gain} if gain != 1.0 else {}
            found.append(({"gain": gain, "lr": lr, "seed": seed}, common.Member(seed=seed, lr=lr, overrides=over)))

    for s in range(cfg.seeds):
        add(1.0, cfg.lr, s)
    if not dale and rule in cfg.gain_rules:
        for g in cfg.gains:
            for s in range(cfg.seeds):
                add(g, cfg.lr, s)
    if not dale and rule == "bptt":
        for lr in cfg.lrs:
            for s in range(cfg.seeds):
                add(1.0, lr, s)
    return found


def make_rule(rule: str, cfg):
    return neuro.rules.get("tbptt", k=cfg.tbptt_k) if rule == "tbptt" else neuro.rules.get(rule)


def train_rule(name, task, cond, references, rule, dale, cfg, out, progress):
    """Snapshot rows (one per member × snapshot × reference) and the final networks:
    ``{(task, rule, dale, gain, lr, seed): (rates [C, T, N], W_rec [N, N])}``."""
    from neuro.ensemble import train_ensemble
    s = refs.spec(name, task, cfg.n_hidden[name], dale)
    labelled = members(rule, dale, cfg)
    run_dir = out / "runs" / f"{name}-{rule}{'-dale' if dale else ''}"
    if run_dir.exists():
        shutil.rmtree(run_dir)              # snapshots are taken while training: start clean
    rows, finals = [], {}
    iterations = cfg.iterations[name]
    for it in snapshot_iterations(iterations, cfg.snapshots, cfg.linear_snapshots):
        result = train_ensemble(s, task, make_rule(rule, cfg), [{"seed": m.seed, "lr": m.lr, "overrides": m.overrides}
                                                                for _, m in labelled],
                                iterations=it, batch_size=cfg.batch_size, progress=progress, run_dir=run_dir,
                                checkpoint_every=10 ** 9, desc=f"{name} {rule}{' (Dale)' if dale else ''} → {it}")
        rates, outputs = condition_activity(result.ensemble.net, cond)
        accs = accuracies(task, outputs, cond)
        for e, (labels, _) in enumerate(labelled):
            for ref in references:
                rows.append({"task": name, "rule": rule, "dale": dale, **labels, "iteration": it,
                             "reference": ref.name, "accuracy": accs[e],
                             "distance": similarity.procrustes_distance(rates[e], ref.activity),
                             "diverged": bool(result.diverged[e])})
            if it == iterations:
                w = result.ensemble.weights(e)
                finals[(name, rule, dale, labels["gain"], labels["lr"], labels["seed"])] = (
                    rates[e], np.asarray(w.W_rec, dtype=float))
    return rows, finals


def model_vs_floor(name, cfg, floors, finals, reference) -> dict:
    """Per (rule, Dale): each seed's model-to-data distance at the noise floor's sample size."""
    n = floors["n_sample"]
    found = {}
    for (task, rule, dale, gain, lr, seed), (rates, _) in finals.items():
        if task != name or gain != 1.0 or lr != cfg.lr or rates.shape[-1] < n:
            continue
        res = similarity.noise_floor(reference.activity, rates, n_sample=n, repeats=cfg.noise_floor_repeats,
                                     seed=seed)
        found.setdefault((rule, dale), []).append(res["model_to_data"])
    return found
