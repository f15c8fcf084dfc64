"""FourRealPipeline: nerfstudio's VanillaPipeline plus what the 4Real stages need from the training loop.

- Before each training step it tells the datamanager which videos the model's current stage trains on
  (`model.training_videos(step)`; paper C.2: reference frames first, every frame in the joint fine-tune).
- It is where the video score distillation terms will be added to the loss (the guidance issue).
Data still flows one way: the pipeline reads the model's schedule and hands frames to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig


@dataclass
class FourRealPipelineConfig(VanillaPipelineConfig):
    """VanillaPipeline with the 4Real stage schedule relayed to the datamanager."""

    _target: Type = field(default_factory=lambda: FourRealPipeline)


class FourRealPipeline(VanillaPipeline):
    config: FourRealPipelineConfig

    def get_train_loss_dict(self, step: int):
        training_videos = getattr(self.model, "training_videos", None)
        use_videos = getattr(self.datamanager, "use_videos", None)
        if training_videos is not None and use_videos is not None:
            use_videos(training_videos(step))
        return super().get_train_loss_dict(step)
