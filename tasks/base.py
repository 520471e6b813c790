"""The Task protocol: batches of (inputs, targets, mask), a loss, accuracies.

Tensors are time-major.  ``inputs [T, B, n_in]``; regression targets
``[T, B, n_out]`` (float) or classification targets ``[T, B]`` (class index);
``mask [T, B]`` weights the loss per time step (0 = not scored).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Batch:
    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    info: dict = field(default_factory=dict)   # per-trial conditions (numpy), e.g. stimulus values

    def to(self, dtype=None, device=None) -> "Batch":
        fl = lambda x: x.to(dtype=dtype, device=device)
        tg = self.targets.to(device=device) if not self.targets.is_floating_point() else fl(self.targets)
        return Batch(fl(self.inputs), tg, fl(self.mask), self.info)


class Task:
    """Base class.  Subclasses set ``name``, ``n_inputs``, ``n_outputs``, ``dt``,
    ``kind`` ('regression' or 'classification') and implement ``trials``."""

    name = "task"
    kind = "regression"
    n_inputs = 1
    n_outputs = 1
    dt = 20.0

    # -- data --------------------------------------------------------------
    def trials(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Return numpy ``inputs [T,B,n_in]``, ``targets``, ``mask [T,B]``, ``info``."""
        raise NotImplementedError

    def batch(self, batch_size: int = 32, seed: int | None = 0, dtype=torch.float32) -> Batch:
        """A reproducible batch: the same (batch_size, seed) gives the same trials."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        rng = np.random.default_rng(seed)
        x, y, m, info = self.trials(batch_size, rng)
        ytensor = torch.as_tensor(y, dtype=dtype) if self.kind == "regression" else torch.as_tensor(y, dtype=torch.long)
        return Batch(torch.as_tensor(x, dtype=dtype), ytensor, torch.as_tensor(m, dtype=dtype), info)

    def member_batches(self, batch_size: int, seeds: list, dtype=torch.float32) -> tuple[Batch, list[Batch]]:
        """One batch per seed (as ``batch`` draws it) stacked on a member axis — ``inputs [T, E, B, n_in]``,
        ``mask [T, E, B]``, zero-padded (unscored) to the longest member — and the members' own batches.
        Ensembles train on these; a task may build them faster than one ``batch`` call per member."""
        batches = [self.batch(batch_size, seed=s, dtype=dtype) for s in seeds]
        T = max(b.inputs.shape[0] for b in batches)
        pad = lambda x: torch.nn.functional.pad(x, [0, 0] * (x.dim() - 1) + [0, T - x.shape[0]])
        stack = lambda name: torch.stack([pad(getattr(b, name)) for b in batches], 1)
        return Batch(stack("inputs"), stack("targets"), stack("mask"), {"members": batches}), batches

    def member_accuracies(self, outputs: torch.Tensor, batches: list[Batch]) -> list[float]:
        """``accuracy`` of each member e on ``outputs[:, e]`` (``outputs [T, E, B, n_out]``)."""
        return [self.accuracy(outputs[:b.inputs.shape[0], e, :b.inputs.shape[1]], b) for e, b in enumerate(batches)]

    # -- scores ------------------------------------------------------------
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Masked mean squared error (regression) or masked cross-entropy (classification)."""
        mask = batch.mask.to(outputs)
        if self.kind == "regression":
            per_step = ((outputs - batch.targets.to(outputs)) ** 2).mean(-1)
        else:
            logp = torch.log_softmax(outputs, dim=-1)
            per_step = -logp.gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1)
        return _masked_mean(per_step, mask)

    def accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        raise NotImplementedError

    def normalized_accuracy(self, outputs: torch.Tensor, batch: Batch) -> float:
        """The data-similarity paper's score: 1 - NMSE (regression) or 1 - CE (classification).

        NMSE = masked MSE / masked variance of the targets around their mean.
        """
        with torch.no_grad():
            if self.kind == "regression":
                mask = batch.mask.to(outputs)
                tg = batch.targets.to(outputs)
                w = mask.unsqueeze(-1)
                mean = (tg * w).sum((0, 1)) / mask.sum()
                var = (((tg - mean) ** 2) * w).sum() / (mask.sum() * tg.shape[-1])
                return float(1.0 - self.loss(outputs, batch) / var)
            return float(1.0 - self.loss(outputs, batch))


def _masked_mean(per_step: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the scored (time, trial) entries; leading ensemble dims (``[T, E, B]``) are kept."""
    if per_step.dim() == 2:
        return (per_step * mask).sum() / mask.sum()
    # ensemble: per_step [T, E, B], mask [T, B] or [T, E, B]
    m = mask if mask.dim() == per_step.dim() else mask.unsqueeze(-2)
    return (per_step * m).sum((0, -1)) / m.expand_as(per_step).sum((0, -1))
