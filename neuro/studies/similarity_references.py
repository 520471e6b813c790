"""The similarity study's first stage: tasks, the compared conditions, and the references
("data") every model is compared with — stand-in recordings (``neuro.standins``), an
optional in-family teacher (a diagnostic), and a user's recording (``--data``).

Conditions.  Reaching: the task's 27 noise-free conditions in order.  Context: the 72
conditions of Mante et al. 2013's condition averages — context (motion, color) × signed
motion coherence × signed color coherence, each over the task's levels (−50, −15, −5, 5,
15, 50 %), in that nested order — with noise-free inputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import neuro
from neuro import standins

CONTEXT_COHERENCES = (-50, -15, -5, 5, 15, 50)
TASK_EVENTS = {"reaching": lambda task: {"go": task.go * task.dt},
               "context": lambda task: {"stimulus": 350.0, "delay": 1100.0, "decision": 1400.0}}


@dataclass
class Reference:
    """What the models are compared with on one task: ``activity [conditions, time, neurons]``."""

    name: str               # "force", "rotational", "line_attractor", "teacher-bptt", "recording"
    activity: np.ndarray
    source: str             # one line for the report
    neutral: bool           # False for an in-family teacher: it is reported, not counted for support


def task(name: str, cfg):
    if name == "reaching":
        from neuro.tasks.reaching import Reaching
        return Reaching(dt=cfg.reaching_dt, steps=int(round(1860 / cfg.reaching_dt)),
                        go=int(round(600 / cfg.reaching_dt)))
    return neuro.tasks.get("context")


def spec(name: str, task, n: int, dale: bool = False):
    s = neuro.models.load("context_rate").replace(n_inputs=task.n_inputs, n_outputs=task.n_outputs,
                                                  dt=task.dt, **{"populations[0].size": n})
    if name == "reaching":
        s = s.replace(**{"populations[0].neuron.tau": 50.0})
    if dale:
        s = s.replace(**{"dale.enabled": True, "populations[0].neuron.activation": "relu"})
    return s


def context_conditions(task, dtype=torch.float32):
    """The 72 Mante et al. conditions (see the module docstring), noise-free, one trial each."""
    from neuro.tasks.base import Batch
    env = task.env
    sigma = env.sigma
    env.sigma = 0.0
    try:
        obs, gts, infos = [], [], []
        for context in (0, 1):
            for motion in CONTEXT_COHERENCES:
                for color in CONTEXT_COHERENCES:
                    relevant, other = (motion, color) if context == 0 else (color, motion)
                    trial = dict(context=context, coh_0=abs(motion), coh_1=abs(color),
                                 ground_truth=1 if relevant > 0 else 2, other_choice=1 if other > 0 else 2)
                    infos.append(env.new_trial(**trial))
                    obs.append(np.asarray(env.ob, dtype=float))
                    gts.append(np.asarray(env.gt, dtype=int))
    finally:
        env.sigma = sigma
    T, B = max(len(g) for g in gts), len(gts)
    x, y, mask = np.zeros((T, B, task.n_inputs)), np.zeros((T, B), dtype=int), np.zeros((T, B))
    last = np.zeros(B, dtype=int)
    for b, (o, g) in enumerate(zip(obs, gts)):
        x[:len(o), b], y[:len(g), b], mask[:len(g), b], last[b] = o, g, 1.0, len(g) - 1
    return Batch(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y), torch.as_tensor(mask, dtype=dtype),
                 {"last": last, "trials": infos})


def conditions(name: str, task, cfg):
    """The trials whose noise-free activity is compared with the data: ``[conditions, time, units]``."""
    if name == "reaching":
        return task.conditions_batch()
    return context_conditions(task)


def recording_reference(name: str, task, cond, data) -> Reference:
    """A user's recording, checked against the task's conditions and aligned to its time steps:
    named events shared with the task (``TASK_EVENTS``) are matched, else trial start and end."""
    from neuro.data import align
    c, T = cond.inputs.shape[1], cond.inputs.shape[0]
    if data.shape[0] != c:
        raise ValueError(f"--data has {data.shape[0]} conditions; the {name} task compares {c} "
                         f"(in the order the README gives)")
    task_events = TASK_EVENTS[name](task)
    if data.events:
        grid = align(data, task.dt * np.arange(T), task_events)
    else:
        span = data.dt * (data.shape[1] - 1)
        grid = align(data, np.linspace(data.t0, data.t0 + span, T))        # trial start and end matched
    return Reference("recording", grid, f"recording ({data.shape[2]} neurons, {data.shape[1]} bins of "
                                        f"{data.dt:g} ms)", True)


def teacher_reference(name: str, task, cond, cfg, progress: bool) -> Reference:
    """A network of the compared family (another seed and size) trained with ``cfg.teacher_rule``."""
    from neuro.studies.similarity_training import accuracies, condition_activity, make_rule
    from neuro.studies.similarity import RULE_LABELS
    s = spec(name, task, cfg.teacher_hidden[name])
    teacher = neuro.compile(s, "rate", neuro.init_weights(s, seed=9_999))
    label = RULE_LABELS.get(cfg.teacher_rule, cfg.teacher_rule)
    neuro.train(teacher, task, make_rule(cfg.teacher_rule, cfg), iterations=cfg.teacher_iterations[name], lr=cfg.lr,
                batch_size=cfg.batch_size, seed=9_999, progress=progress, desc=f"{name} teacher ({label})")
    rates, outputs = condition_activity(teacher, cond)
    return Reference(f"teacher-{cfg.teacher_rule}", rates[0],
                     f"teacher ({label}, N = {cfg.teacher_hidden[name]}, accuracy "
                     f"{accuracies(task, outputs, cond)[0]:.2f}; same model family: a diagnostic)", False)


def references(name: str, task, cond, cfg, data=None, progress: bool = True) -> list[Reference]:
    """Every reference of the task: the stand-ins, the teacher when configured, the user's recording."""
    found = []
    base = spec(name, task, cfg.n_hidden[name])
    for i, s in enumerate(cfg.standins.get(name, ())):
        made = standins.generate(s, name, task, cond, base, cfg.standin, seed=cfg.standin_seed + 101 * i)
        found.append(Reference(s, made.activity, made.source, True))
    if cfg.teacher_rule:
        found.append(teacher_reference(name, task, cond, cfg, progress))
    if data is not None:
        found.append(recording_reference(name, task, cond, data))
    if not found:
        raise ValueError(f"the {name} task has nothing to compare with: no stand-in, teacher or recording")
    return found
