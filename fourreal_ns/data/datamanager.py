"""The freeze-time datamanager: whole images of the freeze-time video, one per step, on CPU or CUDA.

nerfstudio's FullImageDatamanager with what stage 1 (paper 3.3) needs:
- each camera it yields carries its frame's `view` and `video_id` (from the dataparser) and `cam_idx`, so the
  model can look up the per-frame deformation code;
- it knows the canonical frame (`canonical_view`, `canonical_time`, `canonical_train_index`);
- it works without a GPU: nerfstudio pins cached images in page-locked memory (`cache_images="cpu"`, also forced
  for more than 500 images), which needs a CUDA driver; without one, images stay in ordinary memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Type

import torch

from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager, FullImageDatamanagerConfig

from fourreal_ns.data.dataparser import FourRealDataParserConfig
from fourreal_ns.data.scene import VIDEO_IDS


@dataclass
class FreezeTimeDataManagerConfig(FullImageDatamanagerConfig):
    """Full images of a fourreal scene, by default its freeze-time video."""

    _target: Type = field(default_factory=lambda: FreezeTimeDataManager)
    dataparser: FourRealDataParserConfig = field(default_factory=lambda: FourRealDataParserConfig(videos=("freeze",)))
    cache_images_type: Literal["uint8", "float32"] = "uint8"
    """Cached images as uint8 (4x less memory; converted per step)."""


class FreezeTimeDataManager(FullImageDatamanager):
    config: FreezeTimeDataManagerConfig

    def _load_images(self, split, cache_images_device):
        if cache_images_device == "cpu" and not torch.cuda.is_available():
            cache_images_device = "gpu"  # "gpu" means the model's device; "cpu" would pin memory (needs CUDA)
        return super()._load_images(split, cache_images_device)

    @property
    def canonical(self) -> Dict[str, float]:
        return dict(self.train_dataparser_outputs.metadata["canonical"])

    @property
    def canonical_view(self) -> int:
        """k_c: the freeze-time frame that shows the reference video's canonical frame."""
        return int(self.canonical["freeze_frame"])

    @property
    def canonical_time(self) -> float:
        return float(self.canonical["time"])

    @property
    def canonical_train_index(self) -> Optional[int]:
        """Index of the canonical freeze frame among the training images (None if it is not one of them)."""
        for index, (view, video) in enumerate(self.train_views()):
            if view == self.canonical_view and video == VIDEO_IDS["freeze"]:
                return index
        return None

    def train_views(self) -> List[tuple]:
        """(view, video_id) of every training image, in dataset order."""
        metadata = self.train_dataset.cameras.metadata
        return list(zip(metadata["view"].flatten().tolist(), metadata["video_id"].flatten().tolist()))
