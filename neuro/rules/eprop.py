"""e-prop (Bellec et al. 2020) = RFLO (Murray 2019) for the leaky rate RNN.

Both truncate the exact (RTRL) gradient to its local terms (Liu, Zhang & Liu,
Eq. 6): the influence of ``W_ij`` on ``h_i`` is followed only along unit i's own
leak, ``∂h_i[t+1]/∂h_i[t] ≈ α``, never through other units (nor through the
self-connection ``W_ii f'(h_i)``).  Two implementations, equal to float precision:

* ``form="autograd"`` — the network runs with the recurrent input ``W_rec f(h).detach()``
  while the leak path ``α h`` stays in the graph; reverse-mode autodiff then
  yields exactly the truncated gradient (the ``hidden.detach()`` of the paper).
* ``form="trace"`` — the explicit forward, online form a chip would run.  With
  ``h_i[t+1] = α h_i[t] + (1-α)(Σ_j W_ij r_j[t] + Σ_k W^in_ik x_k[t] + b_i)`` the
  eligibility trace ``e_ij[t] = ∂h_i[t+1]/∂W_ij|_local`` obeys
  ``e_ij[t] = α e_ij[t-1] + (1-α) r_j[t]`` — it does not depend on i, so one
  presynaptic trace per unit represents all ``e_ij`` exactly.  The learning
  signal is ``L_i[t] = f'(h_i[t+1]) · (B ∂loss/∂y[t])_i`` with ``B = W_outᵀ`` or a fixed
  random matrix (``feedback.kind = "random"``), and ``ΔW_ij`` accumulates
  ``Σ_t L_i[t] e_ij[t]`` step by step.  Readout weights get their exact, local
  gradient ``∂loss/∂y[t] · r[t]ᵀ``.
* ``form="detach"`` — the implementation of Liu, Zhang & Liu's code: the whole hidden
  state is detached before each step (``hidden.detach()``), so the leak path is cut
  too and a weight is credited only through the step it acts in: the trace above
  with ``e_ij[t] = (1-α) r_j[t]``.  It equals the other forms where ``α = 0``
  (dt = τ) and drops the eligibility trace otherwise.
"""
from __future__ import annotations

import torch

from neuro.connectivity import raw_gradients
from neuro.contract import provides

from .base import GradientRule, autograd_gradients, feedback_matrix


FORMS = ("autograd", "trace", "detach")


class EProp(GradientRule):
    """``form="autograd"`` on any backend with locally truncated runs; ``form="trace"`` on the
    leaky rate map (below) or the LIF map (``neuro.rules.eprop_lif``); ``form="detach"`` on any
    backend with truncatable runs (one-step truncation)."""

    name = "eprop"
    needs = ("local",)

    def __init__(self, form: str = "autograd"):
        if form not in FORMS:
            raise ValueError(f"eprop form must be one of {FORMS}, got {form!r}")
        self.form = form

    def needs_for(self, net) -> tuple:
        if self.form == "detach":
            return ("truncatable",)
        return ("local",) if self.form == "autograd" else ("differentiable", ("rate_map", "lif_map"))

    def loss_and_gradients(self, net, batch, task, generator=None):
        self.require(net)
        if self.form in ("autograd", "detach"):
            cut = {"detach_recurrent": True} if self.form == "autograd" else {"detach_every": 1}
            traj = net.run(batch.inputs, generator=generator, feedback=feedback_matrix(net), **cut)
            loss = task.loss(traj.outputs, batch)
            return loss, traj.outputs, autograd_gradients(loss.sum(), net)
        if provides(net, "rate_map"):
            return _trace_gradients(net, batch, task, generator)
        from .eprop_lif import trace_gradients
        return trace_gradients(net, batch, task)


def _outer_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_batch a_i b_j for ``a [..., B, I]``, ``b [..., B, J]`` → ``[..., I, J]``."""
    return torch.matmul(a.transpose(-1, -2), b)


def _trace_gradients(net, batch, task, generator=None):
    alpha = net.alpha
    inputs = batch.inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
    p = net.effective()
    with torch.no_grad():
        traj = net.run(inputs, generator=generator)
    states = traj.states
    # scalar error signals at the readout: ∂loss/∂y[t]
    y = traj.outputs.detach().requires_grad_(True)
    loss = task.loss(y, batch)
    dy = torch.autograd.grad(loss.sum(), y)[0]
    with torch.no_grad():
        rates = net.f(states)
        with torch.enable_grad():
            s = states.detach().requires_grad_(True)
            fprime = torch.autograd.grad(net.f(s).sum(), s)[0]
        B = feedback_matrix(net)
        feedback = torch.matmul(dy, B.transpose(-1, -2)) if B is not None else torch.matmul(dy, p["W_out"])
        learning_signal = fprime * feedback                      # L_i[t]
        prev_rates = torch.cat([net.f(torch.zeros_like(states[:1])), rates[:-1]])   # r[t] = f(h[t]), h[0] = 0
        e_rec = torch.zeros_like(states[0])                      # presynaptic traces (one per unit j)
        e_in = torch.zeros_like(inputs[0].expand(*states.shape[1:-1], inputs.shape[-1]))
        e_b = torch.zeros_like(states[0][..., :1])
        g_rec = torch.zeros_like(p["W_rec"])
        g_in = torch.zeros_like(p["W_in"])
        g_b = torch.zeros_like(p["b"])
        for t in range(states.shape[0]):                         # online: one pass forward in time
            e_rec = alpha * e_rec + (1 - alpha) * prev_rates[t]
            e_in = alpha * e_in + (1 - alpha) * inputs[t]
            e_b = alpha * e_b + (1 - alpha)
            g_rec = g_rec + _outer_sum(learning_signal[t], e_rec)
            g_in = g_in + _outer_sum(learning_signal[t], e_in)
            g_b = g_b + (learning_signal[t] * e_b).sum(-2)
        flat = lambda a: a.movedim(0, -2).flatten(-3, -2)          # [..., T·B, ·]
        g_out = _outer_sum(flat(dy), flat(rates))
        g_bout = dy.sum(0).sum(-2)
    effective_grads = {"W_rec": g_rec, "W_in": g_in, "b": g_b, "W_out": g_out, "b_out": g_bout}
    return loss, traj.outputs, raw_gradients(net, effective_grads)
