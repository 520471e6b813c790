"""Every registered rule × every registered backend: it runs correctly (checked against an oracle on a
tiny float64 network) or it is refused in one line naming both; the README's table is this registry."""
import math
import pathlib

import numpy as np
import pytest
import torch

import neuro
from neuro.compiler import BACKENDS
from neuro.contract import ContractError
from neuro.rules import REGISTRY, matrix
from neuro.tasks.base import Task
from neuro.tasks.force_targets import Sine
from lif_specs import lif_spec

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
PAIRS = [(r, b) for r in sorted(REGISTRY) for b in BACKENDS]


class Toy(Task):
    """A regression target from two input channels: y = tanh of a slow mix of them."""

    name, kind, n_inputs, n_outputs = "toy", "regression", 2, 1

    def __init__(self, dt: float, steps: int = 12):
        self.dt, self.steps = dt, steps

    def trials(self, batch_size, rng):
        x = rng.normal(size=(self.steps, batch_size, 2))
        y = np.tanh(np.cumsum(x[..., :1] - 0.5 * x[..., 1:], 0) / 3)
        return x, y, np.ones((self.steps, batch_size)), {}

    def accuracy(self, outputs, batch) -> float:
        return 1.0 - float(self.loss(outputs, batch))


def _spec(backend, **changes):
    if backend == "rate":
        base = {"populations[0].size": 6, "n_inputs": 2, "n_outputs": 1, "dt": 20.0, "input.bias": True,
                "readout.bias": True, "populations[0].neuron.activation": "tanh", "recurrent.gain": 1.2}
        return neuro.models.load("romo_rate").replace(**{**base, **changes})
    return lif_spec(**{"populations[0].size": 8, "n_inputs": 2, "n_outputs": 1, **changes})


def _net(backend, seed=0, **changes):
    spec = _spec(backend, **changes)
    return neuro.compile(spec, backend, neuro.init_weights(spec, seed), dtype=torch.float64)


def _batch(net, steps=12):
    task = Toy(net.spec.dt, steps)
    return task, task.batch(3, seed=1, dtype=torch.float64)


def _stepwise(net, batch, task, k=None):
    """The autograd form of BPTT (TBPTT with k): the online one-step map, differentiated, the
    state detached at t = 0, k, 2k, …"""
    p = net.effective()
    state, outputs = net.init_state(batch.inputs.shape[1]), []
    for t in range(batch.inputs.shape[0]):
        if k and t % k == 0:
            state = state.detach()
        state = net.advance(state, batch.inputs[t], params=p)
        outputs.append(net.readout(net.activity(state), p))
    loss = task.loss(torch.stack(outputs), batch)
    params = net.trainable()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {n: torch.zeros_like(q) if g is None else g for (n, q), g in zip(params.items(), grads)}


def _close(a, b, rtol=1e-9):
    assert a.keys() == b.keys()
    for k in a:
        scale = max(float(b[k].abs().max()), 1e-12)
        assert float((a[k] - b[k]).abs().max()) <= rtol * scale, k


def _differ(a, b):
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 1e-8


def _cosine(a, b, keys):
    x = torch.cat([a[k].flatten() for k in keys])
    y = torch.cat([b[k].flatten() for k in keys])
    return float(x @ y / (x.norm() * y.norm()))


# -- the checks of the pairs that run ---------------------------------------------------------------

def check_bptt(backend):
    net = _net(backend, 1)
    task, batch = _batch(net)
    _close(neuro.rules.get("bptt").gradients(net, batch, task), _stepwise(net, batch, task))
    if backend == "rate":                 # and finite differences, where the map is smooth
        g = neuro.rules.get("bptt").gradients(net, batch, task)
        with torch.no_grad():
            w = net.W_rec
            old = w[1, 2].item()
            w[1, 2] = old + 1e-6
            up = task.loss(net.run(batch.inputs).outputs, batch).item()
            w[1, 2] = old - 1e-6
            down = task.loss(net.run(batch.inputs).outputs, batch).item()
            w[1, 2] = old
        assert g["W_rec"][1, 2].item() == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9)


def check_tbptt(backend):
    net = _net(backend, 1)
    task, batch = _batch(net)
    g = neuro.rules.get("tbptt", k=4).gradients(net, batch, task)
    _close(g, _stepwise(net, batch, task, k=4))
    _differ(g, neuro.rules.get("bptt").gradients(net, batch, task))


def check_eprop(backend, name="eprop"):
    net = _net(backend, 2, **({"feedback.kind": "random"} if backend == "rate" else {}))
    task, batch = _batch(net, 30 if backend == "lif" else 12)
    auto = neuro.rules.get(name).gradients(net, batch, task)
    _close(auto, neuro.rules.get(name, form="trace").gradients(net, batch, task))
    _differ(auto, neuro.rules.get("bptt").gradients(net, batch, task))


def check_rflo(backend):
    check_eprop(backend, "rflo")


def check_modprop(backend):
    net = _net(backend, 3, **{"dale.enabled": True, "populations[0].neuron.activation": "relu"})
    task, batch = _batch(net)
    bptt = neuro.rules.get("bptt").gradients(net, batch, task)
    _close(neuro.rules.get("modprop", weights="cell", mu=None).gradients(net, batch, task), bptt)
    assert _cosine(neuro.rules.get("modprop").gradients(net, batch, task), bptt, ["W_rec"]) > 0.5


def _estimator(backend, name, **options):
    net = _net(backend, 4)
    task, batch = _batch(net)
    g = neuro.rules.get(name, **options).gradients(net, batch, task, generator=torch.Generator().manual_seed(0))
    bptt = neuro.rules.get("bptt").gradients(net, batch, task)
    _close({k: g[k] for k in ("W_out", "b_out")}, {k: bptt[k] for k in ("W_out", "b_out")})   # exact readout
    return _cosine(g, bptt, ["W_rec", "W_in", "b"])


def check_np(backend):
    assert _estimator(backend, "np", sigma=1e-3, samples=400) > 0.9


def check_es(backend):
    assert _estimator(backend, "es", sigma=1e-3, samples=2000) > 0.9


def _online(backend, name, task, iterations, **changes):
    """The untrained network's test NMSE, and the history after ``iterations`` learning segments."""
    spec = _spec(backend, **changes)
    w = neuro.init_weights(spec, 0)
    out = []
    for its in (0, iterations):
        net = neuro.compile(spec, backend, w, dtype=torch.float64)
        out.append(neuro.rules.get(name).fit(net, task, iterations=its, seed=0, progress=False))
    return out[0].test_nmse, out[1]


RATE_RESERVOIR = {"populations[0].size": 60, "n_inputs": 1, "n_outputs": 1, "dt": 1.0,
                  "populations[0].neuron.tau": 10.0, "recurrent.gain": 1.5, "input.bias": False}
LIF_RESERVOIR = {"populations[0].size": 60, "n_inputs": 1, "n_outputs": 1, "input.gain": 0.0,
                 "populations[0].neuron.tau_readout": 5.0, "recurrent.gain": 6.0}


def check_force(backend):
    """Learning off, output fed back: the trained readout follows the target, the untrained one not."""
    before, history = _online(backend, "force", Sine(dt=1.0, n_steps=300, frequency=10.0), 4,
                              **(RATE_RESERVOIR if backend == "rate" else LIF_RESERVOIR))
    assert history.test_nmse < 0.2 * before


def check_full_force(backend):
    """The last learning segment's NMSE (the free-running spiking learner drifts once learning stops:
    ``tests/test_force.py``) against the untrained network's."""
    before, history = _online(backend, "full_force", Sine(dt=1.0, n_steps=300, frequency=10.0), 4,
                              **(RATE_RESERVOIR if backend == "rate" else LIF_RESERVOIR))
    assert history.loss[-1] < 0.2 * before
    if backend == "rate":
        assert history.test_nmse < 0.2 * before


def check_reservoir(backend):
    net = _net(backend, 5, **{"populations[0].size": 30})
    task = Toy(net.spec.dt, 20)
    history = neuro.rules.get("reservoir", batch_size=4).fit(net, task, iterations=4, seed=0, progress=False)
    assert history.loss[-1] < 0.5 * history.loss[0]


def check_innate(backend):
    net = _net(backend, 6, **{"populations[0].size": 40, "recurrent.gain": 1.5, "n_inputs": 1, "dt": 1.0,
                              "populations[0].neuron.tau": 10.0})
    task = Sine(dt=1.0, n_steps=150, frequency=10.0)
    history = neuro.rules.get("innate", readout_iterations=1).fit(net, task, iterations=6, seed=0, progress=False)
    assert history.loss[5] < 0.75 * history.loss[0]      # closer to the innate trajectory


def _reward(backend, name, **options):
    from neuro.tasks import envs
    env = envs.make("2af", 4, dt=100, song=True, timing={"fixation": 100, "stimulus": 100, "decision": 100},
                    cohs=[51.2], sigma=0.0, dtype=torch.float64)
    changes = {"n_inputs": 3, "n_outputs": 3, "dt": 100.0} if backend == "rate" else \
        {"n_inputs": 3, "n_outputs": 3, "input.gain": 6.0}
    net = _net(backend, 7, **changes)
    before = {k: v.detach().clone() for k, v in net.effective().items()}
    history = neuro.rules.get(name, **options).fit(net, env, iterations=3, seed=0, progress=False)
    assert len(history) == 3 and all(math.isfinite(x) for x in history.loss)
    return max(float((net.effective()[k] - before[k]).detach().abs().max()) for k in before)


def check_reward_hebbian(backend):
    assert _reward(backend, "reward_hebbian", trials_per_update=4, perturbation_prob=0.1, quiet_steps=0, reward="error") > 0


def check_reinforce(backend):
    assert _reward(backend, "reinforce", trials_per_update=4, value_size=4, fixation_bias=None) > 0


CHECKS = {name[len("check_"):]: f for name, f in globals().items() if name.startswith("check_")}


def test_every_rule_has_a_check():
    assert set(CHECKS) == set(REGISTRY)


def _attempt(rule_name, backend):
    """Ask the rule to work on the backend's network the way it is used (gradients or fit)."""
    spec = _spec("lif" if backend != "rate" else "rate")
    net = neuro.compile(spec, backend, neuro.init_weights(spec, 0), dtype=torch.float64)
    rule = neuro.rules.get(rule_name)
    task, batch = _batch(net)
    if hasattr(rule, "loss_and_gradients"):
        rule.gradients(net, batch, task)
    else:
        rule.fit(net, task, iterations=1, progress=False)


@pytest.mark.parametrize("rule,backend", PAIRS, ids=[f"{r}-{b}" for r, b in PAIRS])
def test_pair_runs_correctly_or_is_refused_by_name(rule, backend):
    why = matrix.refusal(rule, backend)
    if why is None:
        CHECKS[rule](backend)
        return
    name = neuro.rules.get(rule).name
    with pytest.raises(ContractError) as err:
        _attempt(rule, backend)
    assert str(err.value) == why.replace(f"rule {rule!r}", f"rule {name!r}")
    assert "\n" not in str(err.value) and f"backend {backend!r}" in str(err.value)


def test_the_readme_table_is_the_registry():
    text = README.read_text()
    assert matrix.BEGIN in text and matrix.END in text
    assert text.split(matrix.BEGIN, 1)[1].split(matrix.END, 1)[0].strip() == matrix.table()
