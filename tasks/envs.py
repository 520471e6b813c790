"""Tasks as reward-giving environments (gymnasium step API), batched over trials.

The reward rules (``reward_hebbian``, ``reinforce``) learn from these, never from
target traces.  An environment is a NeuroGym ``TrialEnv`` — PerceptualDecisionMaking
(2AF), DelayMatchSample, ContextDecisionMaking as shipped, and two written here in
NeuroGym's style: ``DelayedXOR`` (Miconi 2017's delayed non-match-to-sample) and
``RomoEnv`` (vibrotactile frequency comparison) — wrapped in ``BatchedEnv``, which
draws B trials and steps them together as one ``[T, B, ·]`` loop.

Actions: 0 = fixate, k >= 1 = choice k.  The judging follows NeuroGym's envs: a
non-fixate action during a *fixation period* earns ``rewards["abort"]`` (and ends
the trial when ``abort`` is true); the first non-fixate action during the
``decision`` period ends the trial with ``rewards["correct"]`` if it equals the
ground truth, else ``rewards["fail"]``; a trial without a choice ends at its last
step with reward 0.  ``make(..., song=True)`` gives the setup of Song, Yang & Wang
2017: fixation is required in every period before the decision, breaking it
ends the trial with reward -1, a correct choice earns +1.

Within a trial the observations do not depend on the actions (true of all these
envs until the trial ends), so a rule may run the network on the whole trial's
``inputs`` at once and judge the sampled actions afterwards with ``evaluate``;
``step`` gives the same rewards one step at a time (a test holds them equal, and
equal to NeuroGym's own ``env.step``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .neurogym_tasks import _ngym as ngym, make_env     # neurogym is imported in that one module

spaces = ngym.spaces if ngym is not None else None

_TrialEnv = ngym.TrialEnv if ngym is not None else object


# -- envs written here in NeuroGym's style ----------------------------------------------

class DelayedXOR(_TrialEnv):
    """Delayed non-match-to-sample, i.e. delayed XOR (Miconi 2017, Fig. 1).

    Two stimuli (each A or B, one input channel each) are shown in succession,
    separated by a delay; after a second delay the agent reports *same* (action 1)
    or *different* (action 2).  Miconi's timing: stimuli of 200 ms at 0 and
    400 ms, response judged over the last 200 ms of a 1000-ms trial.
    """

    metadata = {"paper_name": "Miconi 2017, Biologically plausible learning in recurrent neural networks",
                "tags": ["working memory", "two-alternative"]}

    def __init__(self, dt: float = 1.0, rewards: dict | None = None, timing: dict | None = None) -> None:
        super().__init__(dt=dt)
        self.rewards = {"abort": -0.1, "correct": 1.0, "fail": 0.0}
        self.rewards.update(rewards or {})
        self.timing = {"first": 200, "delay1": 200, "second": 200, "delay2": 200, "decision": 200}
        self.timing.update(timing or {})
        self.abort = False
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32,
                                            name={"fixation": 0, "stimulus": [1, 2]})
        self.action_space = spaces.Discrete(3, name={"fixation": 0, "same": 1, "different": 2})
        self.fixation_periods = ("first", "delay1", "second", "delay2")

    def _new_trial(self, **kwargs):
        trial = {"first": int(self.rng.choice(2)), "second": int(self.rng.choice(2))}
        trial.update(kwargs)
        trial["ground_truth"] = 1 if trial["first"] == trial["second"] else 2
        self.add_period(["first", "delay1", "second", "delay2", "decision"])
        self.add_ob(1, period=["first", "delay1", "second", "delay2"], where="fixation")
        self.add_ob(np.eye(2)[trial["first"]], "first", where="stimulus")
        self.add_ob(np.eye(2)[trial["second"]], "second", where="stimulus")
        self.set_groundtruth(trial["ground_truth"], "decision")
        return trial

    def _step(self, action):
        return _judge_step(self, action, self.fixation_periods)


class RomoEnv(_TrialEnv):
    """Romo's vibrotactile comparison as a NeuroGym env (after ``tasks/romo.py``).

    One stimulus channel carries f1 then, after a variable delay, f2
    (amplitudes ~ U(0.5, 1.5), |f1 - f2| >= 0.2); the agent reports f1 > f2
    (action 1) or f2 > f1 (action 2) in the decision period.
    """

    metadata = {"paper_name": "Romo et al. 1999, Neuronal correlates of parametric working memory",
                "tags": ["working memory", "two-alternative"]}

    def __init__(self, dt: float = 20.0, rewards: dict | None = None, timing: dict | None = None,
                 f_range: tuple[float, float] = (0.5, 1.5), min_diff: float = 0.2) -> None:
        super().__init__(dt=dt)
        if f_range[1] - f_range[0] <= min_diff:
            raise ValueError(f"RomoEnv: f_range {f_range} leaves no pair with |f1 - f2| >= {min_diff}")
        self.rewards = {"abort": -0.1, "correct": 1.0, "fail": 0.0}
        self.rewards.update(rewards or {})
        self.timing = {"fixation": 200, "f1": 100, "delay": ("uniform", (200, 800)), "f2": 100, "decision": 200}
        self.timing.update(timing or {})
        self.f_range, self.min_diff = f_range, min_diff
        self.abort = False
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32,
                                            name={"fixation": 0, "stimulus": 1})
        self.action_space = spaces.Discrete(3, name={"fixation": 0, "f1>f2": 1, "f2>f1": 2})
        self.fixation_periods = ("fixation",)

    def _new_trial(self, **kwargs):
        f1, f2 = self.rng.uniform(*self.f_range, size=2)
        while abs(f1 - f2) < self.min_diff:        # rejection keeps the pairs uniform on the allowed set
            f1, f2 = self.rng.uniform(*self.f_range, size=2)
        trial = {"f1": float(f1), "f2": float(f2)}
        trial.update(kwargs)
        trial["ground_truth"] = 1 if trial["f1"] > trial["f2"] else 2
        self.add_period(["fixation", "f1", "delay", "f2", "decision"])
        self.add_ob(1, period=["fixation", "f1", "delay", "f2"], where="fixation")
        self.add_ob(trial["f1"], "f1", where="stimulus")
        self.add_ob(trial["f2"], "f2", where="stimulus")
        self.set_groundtruth(trial["ground_truth"], "decision")
        return trial

    def _step(self, action):
        return _judge_step(self, action, self.fixation_periods)


def _judge_step(env, action, fixation_periods):
    """NeuroGym's judging of one action (the same as its PerceptualDecisionMaking's)."""
    reward, new_trial, gt = 0.0, False, env.gt_now
    if any(env.in_period(p) for p in fixation_periods):
        if action != 0:
            new_trial, reward = env.abort, env.rewards["abort"]
    elif env.in_period("decision") and action != 0:
        new_trial = True
        reward = env.rewards["correct"] if action == gt else env.rewards.get("fail", 0.0)
        env.performance = int(action == gt)
    return env.ob_now, reward, False, False, {"new_trial": new_trial, "gt": gt}


# -- batching -------------------------------------------------------------------------------

@dataclass
class Outcome:
    """How B trials went under ``actions [T, B]``.

    ``rewards [T, B]`` (reward of the action at step t), ``alive [T, B]`` (step t was
    played: the trial had not ended before it), per trial ``correct``, ``aborted``
    (ended by breaking fixation), ``decided`` (made a choice), ``end [B]`` (its last step).
    """

    rewards: torch.Tensor
    alive: torch.Tensor
    correct: torch.Tensor
    aborted: torch.Tensor
    decided: torch.Tensor
    end: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """Reward per trial ``[B]``."""
        return self.rewards.sum(0)


@dataclass
class Trials:
    inputs: torch.Tensor             # [T, B, n_in]
    ground_truth: torch.Tensor       # [T, B] (long; 0 outside the decision period)
    fixating: torch.Tensor           # [T, B] bool: a non-fixate action is an abort here
    deciding: torch.Tensor           # [T, B] bool: the decision period
    length: torch.Tensor             # [B] steps of each trial
    info: list = field(default_factory=list)   # NeuroGym's trial dicts
    types: list = field(default_factory=list)  # hashable trial type per trial (for per-type baselines)


class BatchedEnv:
    """B trials of a NeuroGym ``TrialEnv`` played together (gymnasium step API on ``[B]`` arrays).

    ``reset(seed)`` draws B trials (a seed always gives the same trials) and returns
    the first observations ``[B, n_in]``; ``step(actions [B])`` returns
    ``(obs, rewards, terminated, truncated, info)``, each ``[B]``-shaped; a trial that
    has ended keeps reporting zeros.  ``evaluate(actions [T, B])`` judges a whole
    batch of action sequences at once with the same rules.

    ``fixation_periods``: where breaking fixation is penalized (default: the env's
    own choice, its ``"fixation"`` period; ``"all"`` = every period before
    ``decision``); ``abort``: breaking fixation ends the trial; ``rewards``
    override the env's ``{"abort", "correct", "fail"}``.
    """

    def __init__(self, env, batch_size: int = 1, rewards: dict | None = None, abort: bool | None = None,
                 fixation_periods="env", name: str | None = None, type_keys: tuple | None = None,
                 dtype=torch.float32):
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        self.batch_size, self.dtype = batch_size, dtype
        self.name = name or type(self.env).__name__
        self.rewards = {"abort": 0.0, "correct": 1.0, "fail": 0.0}
        self.rewards.update(getattr(self.env, "rewards", {}) or {})
        self.rewards.update(rewards or {})
        self.abort = bool(getattr(self.env, "abort", False) if abort is None else abort)
        self.fixation_periods, self.type_keys = fixation_periods, type_keys
        self.dt = float(self.env.dt)
        self.n_inputs = int(self.env.observation_space.shape[0])
        self.n_actions = int(self.env.action_space.n)
        self.trials: Trials | None = None
        self._t = 0
        self._done = None

    # -- drawing trials ---------------------------------------------------------------
    def _fixation_names(self, periods: list[str]) -> list[str]:
        if self.fixation_periods == "env":     # where the env itself penalizes breaking fixation
            return [p for p in getattr(self.env, "fixation_periods", ("fixation",)) if p in periods]
        if self.fixation_periods == "all":
            return periods[: periods.index("decision")]
        unknown = [p for p in self.fixation_periods if p not in periods]
        if unknown:
            raise ValueError(f"fixation_periods must name periods of {self.name} ({periods}), got {unknown}")
        return list(self.fixation_periods)

    def draw(self, batch_size: int | None = None, seed=None, conditions: list[dict] | None = None) -> Trials:
        """Draw trials (``conditions[b]`` fixes trial b's variables, e.g. ``{"ground_truth": 1}``)."""
        n = self.batch_size if batch_size is None else batch_size
        if conditions is not None and len(conditions) != n:
            raise ValueError(f"conditions must hold one dict per trial ({n}), got {len(conditions)}")
        if seed is not None:
            seed = int(np.random.default_rng(seed).integers(2**31 - 1))
        self.env.seed(seed)
        obs, gts, fix, dec, infos = [], [], [], [], []
        for b in range(n):
            info = self.env.new_trial(**(conditions[b] if conditions else {}))
            periods = sorted(self.env.start_ind, key=lambda p: (self.env.start_ind[p], self.env.end_ind[p]))
            if "decision" not in periods:
                raise ValueError(f"{self.name} has no 'decision' period; reward envs need one ({periods})")
            steps = len(self.env.gt)
            f, d = np.zeros(steps, bool), np.zeros(steps, bool)
            for p in self._fixation_names(periods):
                f[self.env.start_ind[p]: self.env.end_ind[p]] = True
            d[self.env.start_ind["decision"]: self.env.end_ind["decision"]] = True
            obs.append(np.asarray(self.env.ob, dtype=float))
            gts.append(np.asarray(self.env.gt, dtype=int))
            fix.append(f & ~d)
            dec.append(d)
            infos.append(info)
        T = max(len(g) for g in gts)
        pad = lambda arrays, dtype, extra=(): np.stack([np.concatenate([a, np.zeros((T - len(a),) + extra, dtype)])
                                                        for a in arrays], 1)
        self.trials = Trials(
            inputs=torch.as_tensor(pad(obs, float, (self.n_inputs,)), dtype=self.dtype),
            ground_truth=torch.as_tensor(pad(gts, int)), fixating=torch.as_tensor(pad(fix, bool)),
            deciding=torch.as_tensor(pad(dec, bool)), length=torch.as_tensor([len(g) for g in gts]),
            info=infos, types=[trial_type(i, self.type_keys) for i in infos])
        return self.trials

    # -- judging ----------------------------------------------------------------------
    def evaluate(self, actions: torch.Tensor, trials: Trials | None = None) -> Outcome:
        """Judge ``actions [T, B]`` (long) on the current (or given) trials, all steps at once."""
        tr = self.trials if trials is None else trials
        if tr is None:
            raise RuntimeError("no trials drawn yet: call reset() or draw() first")
        actions = torch.as_tensor(actions)
        if actions.shape != tr.ground_truth.shape:
            raise ValueError(f"actions must have shape [T, B] = {tuple(tr.ground_truth.shape)}, "
                             f"got {tuple(actions.shape)}")
        T = actions.shape[0]
        moved = actions != 0
        steps = torch.arange(T).unsqueeze(1)
        breaks = tr.fixating & moved
        choices = tr.deciding & moved
        last = steps == (tr.length - 1).unsqueeze(0)
        ends = choices | last | (breaks if self.abort else torch.zeros_like(breaks))
        end = torch.where(ends.any(0), ends.int().argmax(0), torch.full_like(tr.length, T - 1))
        alive = steps <= end.unsqueeze(0)
        right = choices & (actions == tr.ground_truth)
        r = self.rewards
        rewards = (breaks * r["abort"] + right * r["correct"] + (choices & ~right) * r.get("fail", 0.0))
        rewards = rewards.to(self.dtype) * alive
        at_end = lambda m: m.gather(0, end.unsqueeze(0)).squeeze(0)
        return Outcome(rewards=rewards, alive=alive, correct=at_end(right), aborted=at_end(breaks & ends),
                       decided=at_end(choices), end=end)

    # -- gymnasium step API -------------------------------------------------------------
    def reset(self, seed=None, options: dict | None = None):
        """Draw a batch of trials; returns ``(obs [B, n_in], info)``."""
        options = options or {}
        self.draw(options.get("batch_size"), seed, options.get("conditions"))
        self._t = 0
        B = self.trials.inputs.shape[1]
        self._done = torch.zeros(B, dtype=torch.bool)
        self._actions = []
        return self.trials.inputs[0].clone(), {"trials": self.trials.info, "types": self.trials.types}

    def step(self, actions):
        """Judge ``actions [B]`` at the current step; returns ``(obs, reward, terminated, truncated, info)``."""
        if self.trials is None:
            raise RuntimeError("call reset() before step()")
        tr, t = self.trials, self._t
        if t >= tr.inputs.shape[0]:
            raise RuntimeError(f"every trial of the batch has ended after {t} steps; call reset()")
        a = torch.as_tensor(actions, dtype=torch.long).reshape(-1)
        moved = a != 0
        breaks, choices = tr.fixating[t] & moved, tr.deciding[t] & moved
        right = choices & (a == tr.ground_truth[t])
        r = self.rewards
        live = ~self._done
        reward = (breaks * r["abort"] + right * r["correct"] + (choices & ~right) * r.get("fail", 0.0))
        reward = reward.to(self.dtype) * live
        terminated = live & (choices | (breaks if self.abort else torch.zeros_like(breaks)))
        truncated = live & ~terminated & (t == tr.length - 1)
        self._done = self._done | terminated | truncated
        self._t = t + 1
        obs = tr.inputs[self._t] * (~self._done).unsqueeze(-1) if self._t < tr.inputs.shape[0] \
            else torch.zeros_like(tr.inputs[0])
        return obs, reward, terminated, truncated, {"correct": right & live, "done": self._done.clone()}


def trial_type(info: dict, keys: tuple | None = None):
    """A hashable key of a trial's discrete conditions (for per-type running baselines, Miconi 2017):
    the given ``keys``, or the ground truth and every other integer- or string-valued variable."""
    if keys is None:
        keys = sorted(k for k, v in info.items() if isinstance(v, (int, np.integer, str, bool)))
        if "ground_truth" in info and "ground_truth" not in keys:
            keys.append("ground_truth")
    return tuple((k, info[k] if not isinstance(info[k], np.generic) else info[k].item()) for k in keys)


# -- the softmax policy ----------------------------------------------------------------------

def sample_actions(logits: torch.Tensor, generator: torch.Generator | None = None, greedy: bool = False):
    """Actions from a softmax policy over the readout ``logits [..., n_actions]`` (Song, Yang & Wang
    2017, Eq. 31 of the review); returns ``(actions [...] long, log π(action) [...])``."""
    logp = torch.log_softmax(logits, -1)
    if greedy:
        a = logits.argmax(-1)
    else:
        flat = logp.detach().exp().reshape(-1, logits.shape[-1])
        a = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1])
    return a, logp.gather(-1, a.unsqueeze(-1)).squeeze(-1)


# -- factory --------------------------------------------------------------------------------

_NEUROGYM = {"2af": "PerceptualDecisionMaking-v0", "dms": "DelayMatchSample-v0", "context": "ContextDecisionMaking-v0"}
_TYPE_KEYS = {"2af": ("ground_truth", "coh"), "dms": ("ground_truth", "sample_theta")}
_DEFAULT_DT = {"2af": 20.0, "dms": 20.0, "context": 20.0, "romo": 20.0, "xor": 20.0}
NAMES = ("2af", "dms", "context", "romo", "xor")


def make(name: str, batch_size: int = 1, dt: float | None = None, song: bool = False, rewards: dict | None = None,
         abort: bool | None = None, fixation_periods="env", dtype=torch.float32, **env_kwargs) -> BatchedEnv:
    """A batched reward env by name: ``2af``, ``dms``, ``context`` (NeuroGym's envs), ``romo``, ``xor``.

    ``song=True``: Song, Yang & Wang 2017's rules (fixate until the decision,
    breaking fixation ends the trial with -1, correct +1, wrong 0).
    """
    if name not in NAMES:
        raise ValueError(f"reward env must be one of {list(NAMES)}, got {name!r}")
    if ngym is None:
        raise ImportError("reward envs need neurogym; install it with `pip install neurogym==1.0.8`")
    dt = _DEFAULT_DT[name] if dt is None else float(dt)
    if not dt > 0:
        raise ValueError(f"dt must be > 0 (ms), got {dt!r}")
    if name == "xor":
        env = DelayedXOR(dt=dt, **env_kwargs)
    elif name == "romo":
        env = RomoEnv(dt=dt, **env_kwargs)
    else:
        with warnings.catch_warnings():     # gymnasium's note about render_modes in NeuroGym's metadata
            warnings.simplefilter("ignore", UserWarning)
            env = make_env(_NEUROGYM[name], dt=dt, **env_kwargs).unwrapped
    if song:
        rewards = {"abort": -1.0, "correct": 1.0, "fail": 0.0, **(rewards or {})}
        abort = True if abort is None else abort
        fixation_periods = "all" if fixation_periods == "env" else fixation_periods
    return BatchedEnv(env, batch_size, rewards=rewards, abort=abort, fixation_periods=fixation_periods,
                      name=name, type_keys=_TYPE_KEYS.get(name), dtype=dtype)


def as_env(task_or_env, batch_size: int = 1, **options) -> BatchedEnv:
    """Accept a ``BatchedEnv``, a NeuroGym env, an env name or a NeuroGym ``Task`` adapter."""
    if isinstance(task_or_env, BatchedEnv):
        return task_or_env
    if isinstance(task_or_env, str):
        return make(task_or_env, batch_size, **options)
    env = getattr(task_or_env, "env", None)
    if ngym is not None and isinstance(task_or_env, ngym.TrialEnv):
        env = task_or_env
    if env is None:
        raise TypeError(f"reward rules need a reward env (neuro.tasks.envs.make(...), a NeuroGym env or a "
                        f"NeuroGym task), got {type(task_or_env).__name__}")
    return BatchedEnv(env, batch_size, name=getattr(task_or_env, "name", None), **options)
