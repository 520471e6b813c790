"""Reward-modulated Hebbian learning (Miconi 2017, eLife 6:e20899; the review's Eqs. 26-29).

Exploratory perturbations Δ_i(t) enter the units' input current (Eq. 26): with
probability ``p`` per neuron per ms a unit gets a kick ``U(-A, A)`` for one step.
Each synapse accumulates an eligibility trace of a supralinear function of
presynaptic rate × postsynaptic fluctuation (Eq. 29):

    x̄_i ← β x̄_i + (1-β) x_i                         (β = 0.05: x̄ ≈ the last step's x)
    e_ij += S(r_j(t-1) · (x_i(t) - x̄_i(t-1))),       S(u) = u³

and at the end of the trial the weights move by the reward prediction error
times the trace (Eqs. 27-28):

    ΔW_ij = clip(η (R - R̄_type) e_ij, ±Δ_max),       R̄_type ← γ R̄_type + (1-γ) R

with R̄ a running average of the reward of that trial type (γ = 0.75).  Since
``(a b)³ = a³ b³`` the trace of a whole trial is one matrix product
``Σ_t (Δx_t)³ (r_{t-1}³)ᵀ``, so the step loop does no N×N work.  (Miconi's code
writes ``-η e (R - R̄)`` with R an *error*; with R a reward the sign is +, as in the
review's Eq. 27.)

The network runs through the online protocol (``neuro.contract.OnlineModel``:
``init_state``/``advance(extra=Δ)``/``activity``/``potential``/``readout``/``set_weight``), so the
same loop drives the LIF backend (``backends/lif.py``).  There the perturbation Δ
is an extra input current (it enters ``a[t]``, hence the synaptic current u and
then the membrane), the presynaptic factor r_j is the exponentially filtered
spike train (``activity``, time constant ``tau_readout``), and the postsynaptic
factor is chosen by ``lif_post``:

* ``"v"`` (default): the membrane potential before reset, x̄ its running
  average as for rate units.  Miconi's rule works because the supralinear S
  separates scales (his Eq. 29 and the discussion around it): at dt = 1 ms a
  kick moves x by A·dt/τ ≈ 0.5 in one step, the recurrent drift only by ~0.01,
  so after cubing the trace is almost all kick — a node-perturbation estimate
  without the node having to know it was perturbed.  On a LIF unit the kick
  enters u and, in the same step, v, so Δv ≈ A; the other large excursions of
  v are the resets after spikes, ≈ -v_th.  With A ≫ v_th (the default A = 16,
  v_th = 1) the cubed kick (A³) outweighs each reset (v_th³) by orders of
  magnitude, the same separation of scales.
* ``"rate"``: the filtered spike train r_i minus its running average.  Smooth
  and without reset artifacts, but a kick-driven spike raises r_i exactly as
  much as any other spike, so the trace cannot tell exploration from ongoing
  activity and the cube brings no separation; kept for comparison.

With the cube, r_j³ weights strongly firing presynaptic neurons more than
Miconi's tanh rates do (r_j is not bounded by 1); only the relative size of the
trace entries matters once ``max_dw`` clips the update.  Measured on 2AF (README,
"Learning from reward"): on the LIF backend neither choice learned in the
settings tried: the untrained network gave the same answer on every trial of a
type (also with a zero-mean fixed readout), the kicks did not flip it, and with
a per-type baseline R̄ a deterministic outcome leaves R - R̄ = 0 — no learning
signal.

Actions come from a softmax policy over the readout (or its argmax with
``greedy=True``); the reward is the env's.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from neuro.progress import tqdm

from neuro.checks import check as _check
from neuro.contract import provides, require_rule


@dataclass
class RewardHistory:
    """What reward-based training logged.

    Per update (``iteration``, ``loss`` = minus the mean reward per trial,
    ``accuracy`` = fraction of correct trials) — the fields ``neuro.train``'s
    ``History`` has — and per trial: ``reward``, ``baseline`` (R̄ of its type, or the
    value network's prediction of the return at the trial's first step),
    ``value`` (the value prediction at the trial's last step, before the outcome;
    NaN without a value network), ``correct``, ``aborted``, ``trial_type``.
    """

    iteration: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    reward: list = field(default_factory=list)
    baseline: list = field(default_factory=list)
    value: list = field(default_factory=list)
    correct: list = field(default_factory=list)
    aborted: list = field(default_factory=list)
    trial_type: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.iteration)

    @property
    def trials(self) -> int:
        return len(self.reward)

    def log_update(self, iteration: int, outcome, baseline, value=None, types=None, reward=None) -> None:
        """``reward``: what the rule learned from, when not the env's reward (Miconi's graded error)."""
        total = (outcome.total if reward is None else reward).detach().double()
        self.iteration.append(iteration)
        self.loss.append(-float(total.mean()))
        self.accuracy.append(float(outcome.correct.double().mean()))
        self.reward.extend(total.tolist())
        self.baseline.extend(torch.as_tensor(baseline).double().reshape(-1).tolist())
        self.value.extend([math.nan] * len(total) if value is None else
                          torch.as_tensor(value).double().reshape(-1).tolist())
        self.correct.extend(outcome.correct.int().tolist())
        self.aborted.extend(outcome.aborted.int().tolist())
        self.trial_type.extend([str(t) for t in (types or [""] * len(total))])

    def fraction_correct(self, last: int = 200) -> float:
        """Fraction of correct trials among the last ``last`` trials."""
        tail = self.correct[-last:]
        return float(np.mean(tail)) if tail else math.nan

    def trials_to_criterion(self, criterion: float = 0.8, window: int = 100) -> int | None:
        """The first trial at which the running fraction correct over ``window`` trials reaches
        ``criterion`` (None if it never does)."""
        c = np.asarray(self.correct, dtype=float)
        if len(c) < window:
            return None
        running = np.convolve(c, np.ones(window) / window, mode="valid")
        hit = np.nonzero(running >= criterion)[0]
        return int(hit[0] + window) if len(hit) else None

    def state(self) -> dict:
        """Every field as plain lists (what a checkpoint holds; ``RewardHistory(**state)`` rebuilds it)."""
        return {k: list(v) for k, v in vars(self).items()}

    def to_csv(self, path) -> None:
        """One row per trial."""
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["trial", "reward", "baseline", "value", "correct", "aborted", "trial_type"])
            w.writerows(zip(range(self.trials), self.reward, self.baseline, self.value, self.correct,
                            self.aborted, self.trial_type))
        tmp.replace(path)


def _potential(net, state, lif_post: str = "v") -> torch.Tensor:
    """The unit's "activation" x whose fluctuations the trace uses: the backend's ``potential``
    (h for rate units, the membrane before the reset for LIF units), or on a spiking network with
    ``lif_post="rate"`` the filtered spikes r (``activity``)."""
    if lif_post == "rate" and provides(net, "lif_map"):
        return net.activity(state)
    return net.potential(state)


class RewardHebbian:
    """Miconi 2017's rule; defaults are his delayed non-match setup (dt = 1 ms, τ = 30 ms).

    ``lr`` η, ``perturbation_prob`` per neuron per ms, ``perturbation_amplitude`` A,
    ``activity_decay`` β of x̄, ``reward_decay`` γ of R̄, ``max_dw`` the clip,
    ``exponent`` of S (odd: sign-preserving), ``trials_per_update`` B (trials run in
    parallel with the same weights; their updates are averaged; Miconi: 1),
    ``plastic`` the weights that learn (``W_rec``; ``W_out`` too: its trace uses the
    readout's fluctuations), ``greedy`` takes the argmax action instead of sampling,
    ``quiet_steps`` the first steps of a trial without perturbation or trace,
    ``lif_post`` the postsynaptic factor on a LIF network (``"v"``: membrane potential,
    ``"rate"``: filtered spikes; see the module docstring; ignored on rate networks).
    On a LIF network ``perturbation_amplitude`` is an input current in units of v_th;
    ``lif_post="v"`` wants it well above v_th.
    """

    name = "reward_hebbian"
    online = True
    needs = ("online", "differentiable")

    def __init__(self, lr: float = 0.1, perturbation_prob: float = 0.003, perturbation_amplitude: float = 16.0,
                 activity_decay: float = 0.05, reward_decay: float = 0.75, max_dw: float = 3e-4,
                 exponent: int = 3, trials_per_update: int = 1, plastic: tuple = ("W_rec",),
                 greedy: bool = False, quiet_steps: int = 3, lif_post: str = "v", reward: str = "env",
                 target: float = 0.98, warmup_trials: int = 0):
        _check(lr > 0, "lr", "> 0", lr)
        _check(0 <= perturbation_prob <= 1, "perturbation_prob", "in [0, 1] (per neuron per ms)", perturbation_prob)
        _check(perturbation_amplitude >= 0, "perturbation_amplitude", ">= 0", perturbation_amplitude)
        _check(0 <= activity_decay < 1, "activity_decay", "in [0, 1)", activity_decay)
        _check(0 <= reward_decay < 1, "reward_decay", "in [0, 1)", reward_decay)
        _check(max_dw > 0, "max_dw", "> 0", max_dw)
        _check(isinstance(exponent, int) and exponent >= 1 and exponent % 2 == 1, "exponent",
               "an odd integer >= 1 (S must keep the sign)", exponent)
        _check(isinstance(trials_per_update, int) and trials_per_update >= 1, "trials_per_update",
               "an integer >= 1", trials_per_update)
        _check(set(plastic) <= {"W_rec", "W_out"} and len(plastic) > 0, "plastic",
               "a non-empty subset of ('W_rec', 'W_out')", plastic)
        self.lr, self.perturbation_prob, self.perturbation_amplitude = lr, perturbation_prob, perturbation_amplitude
        _check(lif_post in ("v", "rate"), "lif_post", "'v' (membrane potential) or 'rate' (filtered spikes)",
               lif_post)
        self.lif_post = lif_post
        _check(reward in ("env", "error"), "reward", "'env' (the env's reward) or 'error' (Miconi's graded error)",
               reward)
        _check(0 < target < 1, "target", "in (0, 1) (the tanh output's target magnitude)", target)
        _check(isinstance(warmup_trials, int) and warmup_trials >= 0, "warmup_trials", "an integer >= 0",
               warmup_trials)
        self.reward, self.target, self.warmup_trials = reward, float(target), warmup_trials
        self.activity_decay, self.reward_decay, self.max_dw = activity_decay, reward_decay, max_dw
        self.exponent, self.trials_per_update, self.plastic = exponent, trials_per_update, tuple(plastic)
        self.greedy, self.quiet_steps = greedy, quiet_steps
        self.baselines: dict = {}

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "baselines")
        return f"RewardHebbian({opts})"

    # -- one batch of trials -----------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, net, env, seed, generator: torch.Generator):
        """Run B trials with perturbations; return ``(outcome, traces {name: [B, ·, ·]}, trials,
        readout [T, B, n_actions])``."""
        trials = env.draw(seed=seed)
        p = {k: v.detach() for k, v in net.effective().items()}
        inputs = trials.inputs.to(p["W_rec"].dtype)
        T, B = inputs.shape[:2]
        N = p["W_rec"].shape[-1]
        state = net.init_state(B)
        prob = 1.0 - (1.0 - self.perturbation_prob) ** env.dt      # per step
        x_bar = _potential(net, state, self.lif_post).clone()
        r_prev = net.activity(state)
        z_bar = net.readout(r_prev, p)
        post, pre, logits, post_out, pre_out = [], [], [], [], []
        for t in range(T):
            kick = None
            if t >= self.quiet_steps and prob > 0:
                hit = torch.rand(B, N, generator=generator, dtype=inputs.dtype) < prob
                amp = (2 * torch.rand(B, N, generator=generator, dtype=inputs.dtype) - 1) * self.perturbation_amplitude
                kick = hit * amp
            state = net.advance(state, inputs[t], extra=kick, params=p)
            x, r = _potential(net, state, self.lif_post), net.activity(state)
            z = net.readout(r, p)
            if t >= self.quiet_steps:
                post.append(x - x_bar)
                pre.append(r_prev)
                if "W_out" in self.plastic:     # the readout reads r(t), not r(t-1)
                    post_out.append(z - z_bar)
                    pre_out.append(r)
            x_bar = self.activity_decay * x_bar + (1 - self.activity_decay) * x
            z_bar = self.activity_decay * z_bar + (1 - self.activity_decay) * z
            r_prev = r
            logits.append(z)
        logits = torch.stack(logits)
        actions, _ = _actions(logits, generator, self.greedy)
        outcome = env.evaluate(actions, trials)
        # Σ_t S(Δx_i r_j) = Σ_t Δx_i³ r_j³, restricted to the steps the trial was alive
        k = self.exponent
        # the env's reward ends with the choice; Miconi's graded error runs through the whole decision period
        alive = outcome.alive[self.quiet_steps:].to(inputs.dtype).unsqueeze(-1) if self.reward == "env" else 1.0
        traces = {}
        if "W_rec" in self.plastic:
            traces["W_rec"] = torch.einsum("tbi,tbj->bij", torch.stack(post) ** k, torch.stack(pre) ** k * alive)
        if "W_out" in self.plastic:
            traces["W_out"] = torch.einsum("tbi,tbj->bij", torch.stack(post_out) ** k,
                                           torch.stack(pre_out) ** k * alive)
        return outcome, traces, trials, logits

    def graded_reward(self, outputs: torch.Tensor, trials) -> torch.Tensor:
        """Miconi's reward: minus the mean ``|tanh(z_c) - target_c|`` over the decision period and the
        choice outputs c ≥ 1, with target ``+target`` on the correct choice and ``-target`` on the
        others (his single output neuron's ±0.98, one channel per choice here); ``outputs [T, B, n_actions]``
        is the readout of the rollout."""
        z = torch.tanh(outputs[..., 1:]).double()                  # [T, B, n_choices]
        gt = trials.ground_truth.to(z.device)
        target = -self.target * torch.ones_like(z)
        correct = torch.nn.functional.one_hot(gt.clamp(min=1) - 1, z.shape[-1]).bool()
        target[correct] = self.target
        window = trials.deciding.to(z.dtype).unsqueeze(-1)
        error = ((z - target).abs() * window).sum((0, 2)) / (window.sum((0, 2)) * z.shape[-1])
        return -error

    def update(self, net, traces: dict, rewards: torch.Tensor, baselines: torch.Tensor, scale=None) -> None:
        """Apply ``clip(η · mean_b s_b (R_b - R̄_b) e_b, ±max_dw)`` to the effective weights (s = 1, or
        Miconi's |R̄| with the graded error)."""
        p = net.effective()
        rpe = (rewards - baselines).to(p["W_rec"].dtype)
        if scale is not None:
            rpe = rpe * scale.to(rpe.dtype)
        for name, e in traces.items():
            dw = self.lr * torch.einsum("b,bij->ij", rpe, e) / len(rpe)
            net.set_weight(name, p[name].detach() + dw.clamp(-self.max_dw, self.max_dw))

    def _baselines(self, types: list, rewards: torch.Tensor) -> torch.Tensor:
        """R̄ of each trial's type before this batch (a type's first trial is its own baseline)."""
        return torch.tensor([self.baselines.get(t, float(r)) for t, r in zip(types, rewards)], dtype=rewards.dtype)

    def _update_baselines(self, types: list, rewards: torch.Tensor) -> None:
        g = self.reward_decay
        for t, r in zip(types, rewards.tolist()):
            self.baselines[t] = g * self.baselines.get(t, r) + (1 - g) * r

    # -- training --------------------------------------------------------------------------
    def fit(self, net, task_or_env, iterations: int = 1000, seed: int = 0, progress: bool = True, run_dir=None,
            checkpoint_every: int = 100, resume: bool = True, **env_options) -> RewardHistory:
        """``iterations`` updates of ``trials_per_update`` trials each; returns a ``RewardHistory``.

        With a ``run_dir`` the loop checkpoints (``checkpoint.pt``: weights, the perturbation and action
        generator's state, the per-type reward baselines R̄, the history; ``trials.csv``) every
        ``checkpoint_every`` updates and resumes from it, bit-identical to an uninterrupted run."""
        from neuro.tasks.envs import as_env
        from neuro.training import LoopCheckpoint, restore_weights
        require_rule(self, net)
        _check(isinstance(iterations, int) and iterations >= 0, "iterations", "an integer >= 0", iterations)
        env = as_env(task_or_env, self.trials_per_update, **env_options)
        env.batch_size = self.trials_per_update
        _check_sizes(net, env)
        generator = torch.Generator().manual_seed(seed)
        history, start = RewardHistory(), 0
        ckpt = LoopCheckpoint(run_dir, self.name, checkpoint_every, resume)
        state = ckpt.load()
        if state is not None:
            restore_weights(net, state["model"], ckpt.path)
            generator.set_state(state["generator"])
            self.baselines = dict(state["baselines"])      # [(trial type, R̄)]: types may be tuples
            history, start = RewardHistory(**state["history"]), int(state["iteration"])
        bar = tqdm(range(start, iterations), desc=f"reward_hebbian {env.name}", disable=not progress, leave=False,
                   dynamic_ncols=True, mininterval=1.0)
        for it in bar:
            outcome, traces, trials, outputs = self.rollout(net, env, (seed, it), generator)
            rewards = outcome.total.double() if self.reward == "env" else self.graded_reward(outputs, trials)
            baselines = self._baselines(trials.types, rewards)
            if (it + 1) * self.trials_per_update > self.warmup_trials:
                # Miconi's code also scales the step by the running error |R̄| of the trial's type
                scale = baselines.abs() if self.reward == "error" else None
                self.update(net, traces, rewards, baselines, scale)
            self._update_baselines(trials.types, rewards)
            history.log_update(it, outcome, baselines, types=trials.types,
                               reward=None if self.reward == "env" else rewards)
            if progress:
                bar.set_postfix(reward=f"{-history.loss[-1]:.2f}", correct=f"{history.fraction_correct(100):.2f}")
            if ckpt.due(it, iterations):
                ckpt.save({"model": net.state_dict(), "generator": generator.get_state(),
                           "baselines": list(self.baselines.items()), "iteration": it + 1}, history)
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            history.to_csv(Path(run_dir) / "trials.csv")
        return history


def _actions(logits, generator, greedy):
    from neuro.tasks.envs import sample_actions
    return sample_actions(logits, generator, greedy=greedy)


def _check_sizes(net, env) -> None:
    p = net.effective()
    n_in, n_out = p["W_in"].shape[-1], p["W_out"].shape[-2]
    if n_in != env.n_inputs or n_out != env.n_actions:
        raise ValueError(f"the network has n_inputs = {n_in}, n_outputs = {n_out}; env {env.name!r} needs "
                         f"n_inputs = {env.n_inputs}, n_outputs = {env.n_actions} (one readout unit per action)")
