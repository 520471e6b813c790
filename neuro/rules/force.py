"""FORCE learning (Sussillo & Abbott 2009): RLS on the readout while the output is fed back.

The network runs continuously through the online protocol every backend offers
(``init_state``, ``advance(state, x, extra)``, ``activity``, ``set_weight``); the output
``z = W_out r`` re-enters as the input current ``W_fb z`` (``W_fb ~ U(-1, 1)``, fixed, drawn
from the rule's seed) and RLS (``neuro.rules.rls``) corrects ``W_out`` every ``every``
steps so that z follows the target from the start of training.  After training the
readout is frozen and the network keeps running on its own output: that test error is
the figure Sussillo & Abbott report (free-running phase drifts for some seeds).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .rls import RLS


class FORCE:
    name = "force"

    def __init__(self, alpha: float = 1.0, every: int = 2, feedback_scale: float = 1.0, init_std: float = 0.5,
                 test_chunks: int = 1):
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"FORCE every (steps between RLS updates) must be an integer >= 1, got {every!r}")
        self.alpha, self.every, self.feedback_scale = alpha, every, feedback_scale
        self.init_std, self.test_chunks = init_std, test_chunks

    def fit(self, net, task, iterations: int = 10, seed: int = 0, progress: bool = True, run_dir=None) -> dict:
        """Train for ``iterations`` chunks of the task's target (continuous time), then test with
        learning off for ``test_chunks`` chunks.  Returns per-chunk training NMSE and the test NMSE."""
        gen = torch.Generator().manual_seed(seed)
        p = net.effective()
        dtype = p["W_out"].dtype
        n, n_out = p["W_out"].shape[-1], p["W_out"].shape[0]
        W_fb = self.feedback_scale * (2 * torch.rand(n, n_out, generator=gen, dtype=dtype) - 1)
        W, b_out = p["W_out"].detach().clone(), p["b_out"].detach()
        rls = RLS(n, self.alpha, dtype=dtype)
        state = net.init_state(1)
        if torch.is_tensor(state):       # rate networks start from a random state, as in the paper's code
            state = self.init_std * torch.randn(state.shape, generator=gen, dtype=dtype)
        history = {"train_nmse": [], "test_nmse": None}
        step = 0
        bar = tqdm(range(iterations + self.test_chunks), desc="FORCE", disable=not progress, leave=False)
        with torch.no_grad():
            for chunk in bar:
                learning = chunk < iterations
                batch = task.batch(1, seed=(seed, chunk), dtype=dtype)
                t0 = chunk * batch.inputs.shape[0]
                target = torch.as_tensor(task.signal((t0 + np.arange(batch.inputs.shape[0])) * task.dt),
                                         dtype=dtype) if hasattr(task, "signal") else batch.targets[:, 0]
                outputs = []
                for t in range(batch.inputs.shape[0]):
                    r = net.activity(state)[0]
                    z = W @ r + b_out
                    if learning and step % self.every == 0:
                        W = rls.step(W, r, z - target[t])
                        z = W @ r + b_out
                    outputs.append(z)
                    state = net.advance(state, batch.inputs[t], extra=(W_fb @ z).unsqueeze(0), params=p)
                    step += 1
                z = torch.stack(outputs)
                nmse = float(((z - target) ** 2).mean() / target.var())
                history["train_nmse" if learning else "test_nmse_chunks"] = \
                    history.get("train_nmse" if learning else "test_nmse_chunks", []) + [nmse]
                bar.set_postfix(nmse=f"{nmse:.3g}")
        net.set_weight("W_out", W)
        history["test_nmse"] = float(np.mean(history["test_nmse_chunks"]))
        history["feedback"] = W_fb
        return history
