"""e-prop for the current-based LIF network (Bellec et al. 2020, Nat. Commun., Methods).

The gradient is truncated to what each synapse can see: the learning signal
``L_i[t] = Σ_k B_ik ∂loss/∂y_k[t]`` (``B = W_outᵀ`` or fixed random feedback) times
an eligibility trace ``e_ij[t] = ψ_i[t] ε^v_ij[t]`` — the surrogate derivative ψ of
neuron i's spike with respect to its voltage, times the low-pass-filtered
presynaptic activity that reached that voltage:

    ε^u_j[t]    = (1-du) ε^u_j[t-1] + s_j[t-1]                  (current filter)
    ε^v_ij[t]   = (1-dv) κ_i[t-1] ε^v_ij[t-1] + ε^u_j[t]         (membrane filter)

``κ_i = 1 - s_i`` for reset to zero (1 for reset by subtraction) and refractory
steps hold ``ε^v`` at 0, since the reset and the refractory clamp are treated as
fixed (detached), as in the autograd form.  Because the readout low-pass filters
the spikes, ``ΔW_ij = Σ_t L_i[t] ē_ij[t]`` with ``ē`` the eligibility filtered by the
readout's decay (Bellec et al.'s ``F_κ``).  Readout weights get their exact gradient.

``form="autograd"``: the same truncation by running the network with the recurrent
spikes detached (and detached resets); ``form="trace"``: the online traces above.
A test holds the two equal in float64.
"""
from __future__ import annotations

import torch

from neuro.connectivity import raw_gradients
from neuro.surrogates import surrogate_derivative

from .base import feedback_matrix


def trace_gradients(net, batch, task):
    """The online trace form on a network with the LIF map (``neuro.contract``'s ``lif_map``)."""
    c, spec = net.c, net.spec.neuron
    x = batch.inputs.to(dtype=net.W_rec.dtype, device=net.W_rec.device)
    p = net.effective()
    with torch.no_grad():
        traj = net.run(x)
    y = traj.outputs.detach().requires_grad_(True)
    loss = task.loss(y, batch)
    err = torch.autograd.grad(loss.sum(), y)[0]                                  # ∂loss/∂y [T, B, O]
    B = feedback_matrix(net)
    with torch.no_grad():
        L = torch.matmul(err, B.transpose(-1, -2)) if B is not None else torch.matmul(err, p["W_out"])
        v, s = traj.states, traj.spikes
        T, nb, n = v.shape
        free = _free_mask(s, c.refractory_steps)
        psi = surrogate_derivative(spec.surrogate, spec.surrogate_slope, v - net.v_th) * free
        keep = (1 - s) if net.reset_zero else torch.ones_like(s)
        z = lambda *shape: torch.zeros(*shape, dtype=v.dtype, device=v.device)
        names = ["W_rec", "W_in", "b"] + (["W_slow"] if net.slow else [])
        pre_dim = {"W_rec": n, "W_in": x.shape[-1], "W_slow": n}
        eu = {k: z(nb, pre_dim[k]) for k in ("W_rec", "W_in")}
        eus = z(nb, n)
        ev = {k: z(nb, n, pre_dim[k]) for k in names if k != "b"}
        ev["b"] = z(nb, n)
        ebar = {k: torch.zeros_like(e) for k, e in ev.items()}
        grads = {k: z(*p[k].shape) for k in names}
        s_prev = z(nb, n)
        k_prev = torch.ones(nb, n, dtype=v.dtype, device=v.device)
        for t in range(T):
            eu["W_rec"] = (1 - c.du) * eu["W_rec"] + s_prev
            eu["W_in"] = (1 - c.du) * eu["W_in"] + x[t]
            leak = ((1 - c.dv) * k_prev).unsqueeze(-1)
            f_t = free[t].unsqueeze(-1)
            ev["W_rec"] = (leak * ev["W_rec"] + eu["W_rec"].unsqueeze(1)) * f_t
            ev["W_in"] = (leak * ev["W_in"] + eu["W_in"].unsqueeze(1)) * f_t
            ev["b"] = ((1 - c.dv) * k_prev * ev["b"] + 1.0) * free[t]
            if net.slow:
                eus = (1 - c.du_slow) * eus + s_prev
                ev["W_slow"] = (leak * ev["W_slow"] + eus.unsqueeze(1)) * f_t
            for k in names:
                e = psi[t].unsqueeze(-1) * ev[k] if k != "b" else psi[t] * ev[k]
                ebar[k] = (1 - c.d_readout) * ebar[k] + e
                grads[k] += (L[t].unsqueeze(-1) * ebar[k]).sum(0) if k != "b" else (L[t] * ebar[k]).sum(0)
            s_prev, k_prev = s[t], keep[t]
        flat = lambda a: a.flatten(0, 1)
        grads["W_out"] = flat(err).T @ flat(traj.rates)
        grads["b_out"] = flat(err).sum(0)
    return loss, traj.outputs, raw_gradients(net, grads)


def _free_mask(spikes: torch.Tensor, refractory_steps: int) -> torch.Tensor:
    """1 where a neuron is not refractory at step t (it spiked within the previous R steps → 0)."""
    free = torch.ones_like(spikes)
    for lag in range(1, refractory_steps + 1):
        free[lag:] = free[lag:] * (1 - spikes[:-lag])
    return free
