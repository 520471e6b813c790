"""The compiled rate kernel against the same rollout on PyTorch ops (float32, ReLU)."""
import pytest
import torch

import neuro
from neuro.backends import rate_kernel
from neuro.ensemble import Ensemble

pytestmark = pytest.mark.skipif(rate_kernel.library() is None, reason="no C compiler: the kernel is not built")


def _ensemble(n, E, noise=0.0, feedback="symmetric", seed=0):
    spec = neuro.models.load("romo_rate").replace(**{
        "populations[0].size": n, "input.bias": True, "readout.bias": True, "dt": 50.0,
        "populations[0].neuron.noise_std": noise, "feedback.kind": feedback})
    members = [{"seed": seed + e, "overrides": {"recurrent.gain": 0.5 + 0.5 * e}} for e in range(E)]
    return Ensemble(spec, members).net


def _gradients(net, inputs, noise, rule, extra_loss):
    """Gradients of a loss that reads the outputs, and (``extra_loss``) the rates and states too."""
    traj = net.run(inputs, noise=noise, detach_recurrent=rule == "eprop",
                   detach_every=7 if rule == "tbptt" else None,
                   feedback=net.B if rule == "eprop" and net.B is not None else None)
    loss = (traj.outputs ** 2).sum()
    if extra_loss:
        loss = loss + 0.1 * (traj.rates ** 2).sum() + 0.05 * traj.states.sum()
    params = net.trainable()
    grads = torch.autograd.grad(loss, list(params.values()))
    return traj, dict(zip(params, grads))


@pytest.mark.parametrize("rule", ["bptt", "eprop", "tbptt"])
@pytest.mark.parametrize("n,E,batch,extra_loss,feedback", [
    (64, 3, 6, False, "symmetric"),      # 4 × 64 blocks and a remainder row group
    (48, 2, 5, True, "random"),          # 16-column blocks, odd batch, gradients through rates and states
    (16, 1, 4, True, "symmetric"),       # one network
])
def test_kernel_equals_pytorch_ops(rule, n, E, batch, extra_loss, feedback, monkeypatch):
    net = _ensemble(n, E, noise=0.05, feedback=feedback)
    gen = torch.Generator().manual_seed(3)
    T = 40
    inputs = torch.randn(T, E, batch, 1, generator=gen)
    noise = 0.05 * torch.randn(T, E, batch, n, generator=gen)
    traj_k, g_k = _gradients(net, inputs, noise, rule, extra_loss)
    monkeypatch.setattr(rate_kernel, "usable", lambda *a: False)
    traj_t, g_t = _gradients(net, inputs, noise, rule, extra_loss)
    for name in ("states", "rates", "outputs"):
        torch.testing.assert_close(getattr(traj_k, name), getattr(traj_t, name), rtol=1e-5, atol=1e-5)
    for k in g_t:
        scale = g_t[k].abs().max().item()
        assert scale > 0, k
        torch.testing.assert_close(g_k[k], g_t[k], rtol=1e-4, atol=1e-5 * scale, msg=k)


def test_kernel_forward_runs_without_autograd_and_splits_members_across_threads():
    net = _ensemble(32, 5)
    x = torch.randn(30, 5, 8, 1)
    with torch.no_grad():
        previous = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            two = net.run(x).outputs
        finally:
            torch.set_num_threads(previous)
        torch.set_num_threads(1)
        try:
            one = net.run(x).outputs
        finally:
            torch.set_num_threads(previous)
    torch.testing.assert_close(two, one, rtol=0, atol=0)


def test_kernel_is_used_only_where_it_applies():
    w = torch.zeros(2, 32, 32)
    assert rate_kernel.usable(torch.zeros(3, 2, 4, 1), w, torch.relu)
    assert not rate_kernel.usable(torch.zeros(3, 2, 4, 1), w, torch.tanh)
    assert not rate_kernel.usable(torch.zeros(3, 2, 4, 1, dtype=torch.float64), w.double(), torch.relu)
    assert not rate_kernel.usable(torch.zeros(3, 2, 4, 1), torch.zeros(2, 20, 20), torch.relu)
