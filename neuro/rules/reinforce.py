"""REINFORCE with a value network as baseline (Song, Yang & Wang 2017, eLife 6:e21492;
the review's Eqs. 22-25 and 30-33).

A *policy* (decision) network reads the task's observations; its readout gives
the action preferences z_k(t) and actions are drawn from ``softmax(z(t))``
(Eq. 31).  A *value* network — a second ``RateNetwork``, compiled from its own
spec — reads the policy network's rates r^π(t) and the previous action
``onehot(a_{t-1})`` and predicts the return (Eq. 32).  With the return
``G_t = Σ_{τ>=t} γ^{τ-t} R_τ`` the policy follows

    ∇J = E[ Σ_t (G_t - v_t) ∇ log π(a_t | …) ]                    (Eq. 33)

and the value network descends ``Σ_t (G_t - v_t)²`` (Eq. 25).  The baseline v_t
depends on the actions before t only, so the estimate stays unbiased (a test
holds its mean equal to the exact gradient of an enumerated expectation).
Song et al.'s setup: 100 units each, dt = 10 ms, τ = 100 ms, recurrent noise,
Adam (policy 0.01, value 0.005), one step per 10 trials, gradient norm clipped
to 1; rewards +1 correct, -1 for breaking fixation.

The observations do not depend on the actions inside a trial, so the policy
network runs over the whole batch ``[T, B, ·]`` at once (the rate backend's fused
recurrence, with its hand-written backward) and the env judges the sampled
actions afterwards; steps after a trial ended are masked out.
"""
from __future__ import annotations

from pathlib import Path

import torch
from neuro.progress import tqdm

from neuro.checks import check as _check
from neuro.contract import require_rule
from neuro.io import CheckpointError

from .reward_hebbian import RewardHistory, _check_sizes


def value_spec(policy_spec, n_actions: int, size: int = 100, seed_gain: float = 1.0):
    """The value network's spec: reads ``[r^π(t), onehot(a_{t-1})]``, one linear output (the
    predicted return); same dt, τ, noise and activation as the policy network."""
    from neuro.spec import ConnectionSpec, PopulationSpec
    neuron = policy_spec.neuron
    pop = PopulationSpec(name="value", size=size, neuron=type(neuron)(**vars(neuron)))
    return type(policy_spec)(name=f"{policy_spec.name}-value", dt=policy_spec.dt,
                             n_inputs=policy_spec.n_hidden + n_actions, n_outputs=1, populations=[pop],
                             input=ConnectionSpec(init="uniform"), recurrent=ConnectionSpec(gain=seed_gain),
                             readout=ConnectionSpec(init="uniform", bias=True))


class Reinforce:
    """Policy gradient with a value-network baseline.

    ``lr`` / ``value_lr``: Adam step sizes of the two networks; ``trials_per_update``:
    trials per gradient step; ``gamma``: discount; ``clip``: max gradient norm
    (None = no clipping); ``baseline``: ``"value"`` (the value network), ``"mean"``
    (the batch's mean return per step) or ``"none"``; ``value_size``: units of the
    value network built by ``value_spec`` when ``fit`` is not given one;
    ``fixation_bias``: at the start of ``fit``, set the readout bias of the fixate
    action (0) so that a fresh policy holds fixation through a whole trial with
    probability 1/2 (``"auto"``; a number sets the bias itself; None leaves it).
    When breaking fixation ends the trial with -1, a uniformly random policy
    never reaches the decision and every return is -1: no gradient to follow.
    Animals are trained to fixate before they learn the task; this is the same.
    """

    name = "reinforce"
    online = True
    needs = ("differentiable", "rate_map")     # the value network is a rate network of the policy's neuron

    def __init__(self, lr: float = 0.003, value_lr: float = 0.005, trials_per_update: int = 10, gamma: float = 1.0,
                 clip: float | None = 1.0, baseline: str = "value", value_size: int = 100,
                 fixation_bias="auto"):
        _check(lr > 0, "lr", "> 0", lr)
        _check(value_lr > 0, "value_lr", "> 0", value_lr)
        _check(isinstance(trials_per_update, int) and trials_per_update >= 1, "trials_per_update",
               "an integer >= 1", trials_per_update)
        _check(0 <= gamma <= 1, "gamma", "in [0, 1]", gamma)
        _check(clip is None or clip > 0, "clip", "> 0 or None", clip)
        _check(baseline in ("value", "mean", "none"), "baseline", "'value', 'mean' or 'none'", baseline)
        _check(isinstance(value_size, int) and value_size >= 1, "value_size", "an integer >= 1", value_size)
        self.lr, self.value_lr, self.trials_per_update = lr, value_lr, trials_per_update
        _check(fixation_bias in ("auto", None) or isinstance(fixation_bias, (int, float)), "fixation_bias",
               "'auto', a number or None", fixation_bias)
        self.gamma, self.clip, self.baseline, self.value_size = gamma, clip, baseline, value_size
        self.fixation_bias = fixation_bias

    def __repr__(self):
        return "Reinforce(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()) + ")"

    def value_network(self, net, n_actions: int, seed: int = 0):
        from neuro.compiler import compile as compile_
        spec = value_spec(net.spec, n_actions, self.value_size)
        return compile_(spec, "rate", seed=seed + 7919, dtype=net.W_rec.dtype)

    def set_fixation_bias(self, net, env, seed=0) -> float | None:
        """Write the fixate action's readout bias (see ``fixation_bias``); returns it."""
        if self.fixation_bias is None:
            return None
        bias = self.fixation_bias
        if bias == "auto":
            fixating = env.draw(seed=(seed, 999_983)).fixating
            steps = max(float(fixating.sum(0).double().mean()), 1.0)
            eps = 1.0 - 0.5 ** (1.0 / steps)             # per-step break probability: (1-ε)^steps = 1/2
            bias = float(torch.log(torch.tensor((env.n_actions - 1) * (1 - eps) / eps)))
        b_out = net.effective()["b_out"].detach().clone()
        b_out[..., 0] = bias
        net.set_weight("b_out", b_out)
        return bias

    # -- the estimator -------------------------------------------------------------------------
    def returns(self, rewards: torch.Tensor) -> torch.Tensor:
        """``G_t = Σ_{τ>=t} γ^{τ-t} R_τ`` along dim 0 of ``rewards [T, B]``."""
        G = torch.zeros_like(rewards)
        running = torch.zeros_like(rewards[0])
        for t in range(rewards.shape[0] - 1, -1, -1):
            running = rewards[t] + self.gamma * running
            G[t] = running
        return G

    def losses(self, net, value_net, env, seed=None, generator=None, conditions=None):
        """One batch: ``(policy loss, value loss, rollout)``.

        ``-∇(policy loss)`` is the REINFORCE estimate of ∇J (per trial, averaged over
        the batch); ``rollout`` holds the outcome, values ``[T, B]``, returns and trials.
        """
        trials = env.draw(seed=seed, conditions=conditions)
        traj = net.run(trials.inputs, generator=generator)
        actions, logp = _sample(traj.outputs, generator)
        outcome = env.evaluate(actions, trials)
        alive = outcome.alive.to(logp.dtype)
        G = self.returns(outcome.rewards.to(logp.dtype))
        B = actions.shape[1]
        values = None
        if value_net is not None:
            prev = torch.nn.functional.one_hot(torch.cat([torch.zeros_like(actions[:1]), actions[:-1]]),
                                               env.n_actions).to(logp.dtype)
            values = value_net.run(torch.cat([traj.rates.detach(), prev], -1), generator=generator).outputs[..., 0]
        if self.baseline == "value":
            base = values.detach()
        elif self.baseline == "mean":
            base = (G * alive).sum(1, keepdim=True) / alive.sum(1, keepdim=True).clamp(min=1)
        else:
            base = torch.zeros_like(G)
        policy_loss = -(logp * (G - base) * alive).sum() / B
        value_loss = ((values - G) ** 2 * alive).sum() / alive.sum() if values is not None else None
        return policy_loss, value_loss, {"outcome": outcome, "values": values, "returns": G, "trials": trials,
                                         "actions": actions}

    def gradients(self, net, value_net, env, seed=None, generator=None, conditions=None):
        """``({param: ∇ policy loss}, {param: ∇ value loss}, rollout)`` for one batch."""
        pl, vl, roll = self.losses(net, value_net, env, seed, generator, conditions)
        return _grads(pl, net), (_grads(vl, value_net) if vl is not None else {}), roll

    # -- training ------------------------------------------------------------------------------
    def fit(self, net, task_or_env, iterations: int = 1000, seed: int = 0, progress: bool = True, run_dir=None,
            value_net=None, checkpoint_every: int = 100, resume: bool = True, **env_options) -> RewardHistory:
        """``iterations`` Adam steps of ``trials_per_update`` trials each.  The value network
        (built by ``value_spec`` unless given) is kept as ``self.value_net``.

        With a ``run_dir`` the loop checkpoints (``checkpoint.pt``: both networks' weights, both Adam
        states, the generator of the hidden noise and the actions, the history; ``trials.csv``) every
        ``checkpoint_every`` steps and resumes from it, bit-identical to an uninterrupted run; a
        resumed run takes ``lr`` / ``value_lr`` from this rule, not from the stored optimizer state."""
        from neuro.tasks.envs import as_env
        from neuro.training import LoopCheckpoint, restore_weights
        require_rule(self, net)
        _check(isinstance(iterations, int) and iterations >= 0, "iterations", "an integer >= 0", iterations)
        env = as_env(task_or_env, self.trials_per_update, **env_options)
        env.batch_size = self.trials_per_update
        _check_sizes(net, env)
        if value_net is None and self.baseline == "value":
            value_net = self.value_network(net, env.n_actions, seed)
        self.value_net = value_net
        self.set_fixation_bias(net, env, seed)
        generator = torch.Generator().manual_seed(seed)
        params = net.trainable()
        opt = torch.optim.Adam(params.values(), lr=self.lr)
        vparams = value_net.trainable() if value_net is not None else {}
        vopt = torch.optim.Adam(vparams.values(), lr=self.value_lr) if vparams else None
        history, start = RewardHistory(), 0
        ckpt = LoopCheckpoint(run_dir, self.name, checkpoint_every, resume)
        state = ckpt.load()
        if state is not None:
            restore_weights(net, state["model"], ckpt.path)
            opt.load_state_dict(state["optimizer"])
            if (value_net is None) != (state.get("value_model") is None):
                raise CheckpointError(f"{ckpt.path} was written with{'out' if value_net is not None else ''} "
                                      f"a value network; use another run folder or delete it to start afresh")
            if value_net is not None:
                restore_weights(value_net, state["value_model"], ckpt.path, "value-network weights")
                if vopt is not None:
                    vopt.load_state_dict(state["value_optimizer"])
            for o, lr in ((opt, self.lr), (vopt, self.value_lr)):      # the rates asked for now
                for group in (o.param_groups if o is not None else []):
                    group["lr"] = lr
            generator.set_state(state["generator"])
            history, start = RewardHistory(**state["history"]), int(state["iteration"])
        bar = tqdm(range(start, iterations), desc=f"reinforce {env.name}", disable=not progress, leave=False,
                   dynamic_ncols=True, mininterval=1.0)
        for it in bar:
            pl, vl, roll = self.losses(net, value_net, env, seed=(seed, it), generator=generator)
            _step(opt, params, pl, self.clip)
            if vopt is not None:
                _step(vopt, vparams, vl, self.clip)
            out, values = roll["outcome"], roll["values"]
            last = values.detach().gather(0, out.end.unsqueeze(0))[0] if values is not None else None
            first = values.detach()[0] if values is not None else roll["returns"][0] * float("nan")
            history.log_update(it, out, first, last, roll["trials"].types)
            if progress:
                bar.set_postfix(reward=f"{-history.loss[-1]:.2f}", correct=f"{history.fraction_correct(100):.2f}")
            if ckpt.due(it, iterations):
                ckpt.save({"model": net.state_dict(), "optimizer": opt.state_dict(),
                           "value_model": None if value_net is None else value_net.state_dict(),
                           "value_optimizer": None if vopt is None else vopt.state_dict(),
                           "generator": generator.get_state(), "iteration": it + 1}, history)
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            history.to_csv(Path(run_dir) / "trials.csv")
        return history


def _sample(logits, generator):
    from neuro.tasks.envs import sample_actions
    return sample_actions(logits, generator)


def _grads(loss, net) -> dict:
    params = net.trainable()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True, retain_graph=True)
    return {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(params.items(), grads)}


def _step(opt, params: dict, loss, clip) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
    opt.step()
