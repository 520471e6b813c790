"""The backend contract: options honoured or refused by name, rules refused in one line naming both."""
import pytest
import torch

import neuro
from neuro.contract import ContractError, provides, refusal
from lif_specs import lif_spec


def _lif(seed=0, **changes):
    spec = lif_spec(**{"populations[0].size": 8, **changes})
    return spec, neuro.compile(spec, "lif", neuro.init_weights(spec, seed), dtype=torch.float64)


def _task_batch():
    task = neuro.tasks.get("2af", dt=1.0)
    batch = task.batch(2, seed=0, dtype=torch.float64)
    T = 60
    return task, type(batch)(batch.inputs[:T], batch.targets[:T], batch.mask[:T], batch.info)


def _windowed_tbptt(net, batch, task, k):
    """TBPTT(k, k) computed independently of ``detach_every``: the run is cut into windows of k
    steps, each started from the detached state that a graph-free run reaches there; the loss of
    the concatenated outputs is the same function and each window's gradient stops at its start."""
    x = batch.inputs.to(torch.float64)
    state = net.init_state(x.shape[1])
    outputs = []
    for start in range(0, x.shape[0], k):
        traj_state = state
        with torch.no_grad():
            for t in range(start, min(start + k, x.shape[0])):
                state = net.advance(state, x[t])
        outputs.append(net.run(x[start:start + k], state=traj_state.detach()).outputs)
    loss = task.loss(torch.cat(outputs), batch)
    params = net.trainable()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {name: (torch.zeros_like(p) if g is None else g) for (name, p), g in zip(params.items(), grads)}


def test_tbptt_on_lif_truncates_as_an_independent_windowed_computation():
    _, net = _lif(1)
    task, batch = _task_batch()
    bptt = neuro.rules.get("bptt").gradients(net, batch, task)
    tbptt = neuro.rules.get("tbptt", k=7).gradients(net, batch, task)
    oracle = _windowed_tbptt(net, batch, task, 7)
    assert (tbptt["W_rec"] - bptt["W_rec"]).abs().max() > 1e-6        # it truncates
    for name in tbptt:
        assert torch.allclose(tbptt[name], oracle[name], rtol=1e-10, atol=1e-12), name
    whole = neuro.rules.get("tbptt", k=batch.inputs.shape[0]).gradients(net, batch, task)
    for name in whole:                                                # one window = BPTT
        assert torch.allclose(whole[name], bptt[name], rtol=1e-12, atol=1e-14), name


@pytest.mark.parametrize("rule", ["np", "es"])
def test_perturbation_rules_on_lif_are_refused_by_name(rule):
    _, net = _lif()
    task, batch = _task_batch()
    with pytest.raises(ContractError, match=f"^rule '{rule}' needs the leaky rate map; backend 'lif' does not "
                                            f"provide it$"):
        neuro.rules.get(rule).gradients(net, batch, task)


def test_lif_and_lava_refuse_options_they_cannot_honour():
    spec, net = _lif()
    x = torch.zeros(5, 1, spec.n_inputs, dtype=torch.float64)
    with pytest.raises(ContractError, match="^backend 'lif' cannot honour the run option 'noise'"):
        net.run(x, noise=torch.zeros(5, 1, spec.n_hidden))
    lava = neuro.compile(spec, "lava", neuro.init_weights(spec, 0))
    with pytest.raises(ContractError, match="^backend 'lava' cannot honour the run options 'detach_every', "
                                            "'detach_recurrent'"):
        lava.run(x, detach_every=3, detach_recurrent=True)
    with pytest.raises(ContractError, match="^rule 'tbptt' needs truncatable runs; backend 'lava' does not "
                                            "provide them$"):
        neuro.rules.get("tbptt").gradients(lava, *_task_batch()[::-1])


def test_declarations_hold_to_the_protocols():
    from neuro.compiler import BACKENDS, backend_class
    for name in BACKENDS:
        backend_class(name)          # verify() raises on a declaration its class does not keep
    _, net = _lif()
    assert provides(net, "lif_map") and provides(net, "truncatable") and not provides(net, "rate_map")
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 4})
    rate = neuro.compile(spec, "rate")
    assert provides(rate, "rate_map") and not provides(rate, "lif_map")
    assert refusal("rule 'x'", [("rate_map", "lif_map")], rate) is None
    assert refusal("rule 'x'", [("rate_map", "lif_map")], type(neuro.compile(lif_spec(), "lava"))) == \
        "rule 'x' needs the leaky rate map or the LIF map; backend 'lava' does not provide either"


def test_a_backend_that_breaks_its_declaration_is_refused_at_compile():
    from neuro.backends.rate import RateNetwork
    from neuro.compiler import register_backend, BACKENDS

    class Broken(RateNetwork):
        backend = "broken"
        provides = RateNetwork.provides | {"lif_map", "teleport"}

    register_backend("broken", Broken)
    try:
        spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 4})
        with pytest.raises(ContractError, match=r"^backend 'broken' declares unknown capabilities \['teleport'\]"):
            neuro.compile(spec, "broken")
    finally:
        del BACKENDS["broken"]


class NumpyRate:
    """A toy backend: the rate model's forward run in NumPy, noise-free (runs only)."""

    backend = "numpy_rate"
    neuron_model = "rate"
    provides = frozenset({"runs"})

    def __init__(self, spec, weights, dtype=torch.float64, device="cpu"):
        self.spec, self.w, self.dtype = spec, weights, dtype
        self.alpha = 1.0 - spec.dt / spec.neuron.tau

    def weights(self):
        return self.w

    def run(self, inputs, generator=None):
        import numpy as np
        w, a = self.w, self.alpha
        x = np.asarray(inputs, dtype=float)
        h = np.zeros((x.shape[1], w.W_rec.shape[0]))
        states = []
        for t in range(x.shape[0]):
            h = a * h + (1 - a) * (np.maximum(h, 0) @ w.W_rec.T + x[t] @ w.W_in.T + w.b)
            states.append(h)
        states = np.stack(states)
        rates = np.maximum(states, 0)
        t = lambda v: torch.as_tensor(v, dtype=self.dtype)
        return neuro.Trajectory(t(states), t(rates), t(rates @ w.W_out.T + w.b_out))


def test_a_toy_numpy_backend_needs_its_own_class_and_one_registry_line():
    from neuro.compiler import BACKENDS, register_backend
    from neuro.rules import matrix
    register_backend("numpy_rate", NumpyRate)
    try:
        spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 8, "input.bias": True})
        w = neuro.init_weights(spec, 3)
        toy, rate = neuro.compile(spec, "numpy_rate", w), neuro.compile(spec, "rate", w, dtype=torch.float64)
        x = torch.randn(20, 2, spec.n_inputs, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(toy.run(x).outputs, rate.run(x).outputs, rtol=1e-10, atol=1e-12)
        assert matrix.refusal("bptt", "numpy_rate") == \
            "rule 'bptt' needs differentiable runs; backend 'numpy_rate' does not provide them"
        assert "numpy_rate" in matrix.table().splitlines()[0]
        task = neuro.tasks.get("romo")
        with pytest.raises(ContractError, match="^rule 'eprop' needs e-prop's locally truncated runs; backend "
                                                "'numpy_rate' does not provide them$"):
            neuro.rules.get("eprop").gradients(toy, task.batch(2, dtype=torch.float64), task)
    finally:
        del BACKENDS["numpy_rate"]


def test_compile_picks_the_backend_of_the_neuron_model():
    lif = neuro.compile(lif_spec(**{"populations[0].size": 4}))
    rate = neuro.compile(neuro.models.load("romo_rate").replace(**{"populations[0].size": 4}))
    assert (lif.backend, lif.neuron_model, rate.backend, rate.neuron_model) == ("lif", "lif", "rate", "rate")
    with pytest.raises(ValueError, match="backend 'rate' needs populations\\[0\\].neuron.model = 'rate'"):
        neuro.compile(lif_spec(), "rate")


def test_analyses_refuse_a_backend_without_a_one_step_map():
    lava = neuro.compile(lif_spec(), "lava", neuro.init_weights(lif_spec(), 0))
    x = torch.zeros(5, 1, lava.spec.n_inputs)
    with pytest.raises(ContractError, match="^Lyapunov analysis needs a one-step map with Jacobian-vector "
                                            "products; backend 'lava' does not provide it$"):
        neuro.lyapunov_spectrum(lava, x, k=1)
    with pytest.raises(ContractError, match="^flossing needs a one-step map"):
        neuro.floss(lava, steps=1, inputs=x)


def test_rules_resolve_from_names_or_objects():
    assert neuro.rules.resolve("tbptt").name == "tbptt"
    rule = neuro.rules.get("eprop", form="trace")
    assert neuro.rules.resolve(rule) is rule
    with pytest.raises(ValueError, match="a learning rule is a registered name"):
        neuro.rules.resolve(42)
