"""Learning-rate schedules whose saved state loads under torch >= 2.6.

nerfstudio's ExponentialDecayScheduler returns numpy floats from its LambdaLR; they end up in the checkpoint's
scheduler state, and `torch.load(weights_only=True)` (the default since torch 2.6) then refuses the checkpoint, so
ns-viewer, ns-render, ns-eval and `--load-dir` could not open our runs. The schedule below is the same curve with
Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from torch.optim import Optimizer, lr_scheduler

from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig


@dataclass
class ExponentialDecayConfig(ExponentialDecaySchedulerConfig):
    """Exponential decay from the optimiser's lr to `lr_final` over `max_steps` (after a linear or cosine warm-up)."""

    _target: Type = field(default_factory=lambda: ExponentialDecay)


class ExponentialDecay(ExponentialDecayScheduler):
    """nerfstudio's exponential decay, returning Python floats."""

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        numpy_schedule = super().get_scheduler(optimizer, lr_init).lr_lambdas[0]
        # Rebuilding the LambdaLR resets the optimiser's lr to lr_init * factor(0), as the parent's did.
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda step: float(numpy_schedule(step)))
