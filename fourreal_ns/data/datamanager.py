"""The datamanagers: whole images of a fourreal scene, one per step, on CPU or CUDA.

`FreezeTimeDataManager` (stage 1) serves the freeze-time video; `ReferenceVideoDataManager` (stage 2) serves the
reference video first and every video later: the pipeline tells it which videos the model's current stage trains
on and, during the motion fit's time curriculum, how far from the canonical time (`use_videos`), and it draws only
frames of those.

Both are nerfstudio's FullImageDatamanager with what stage 1 (paper 3.3) needs:
- each camera it yields carries its frame's `view` and `video_id` (from the dataparser) and `cam_idx`, so the
  model can look up the per-frame deformation code;
- it knows the canonical frame (`canonical_view`, `canonical_time`, `canonical_train_index`);
- it works without a GPU: nerfstudio pins cached images in page-locked memory (`cache_images="cpu"`, also forced
  for more than 500 images), which needs a CUDA driver; without one, images stay in ordinary memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Sequence, Type

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

    def use_videos(self, videos: Optional[Sequence[str]], time_window: Optional[float] = None) -> None:
        """Which videos and times the next training images come from (FourRealPipeline, each step): the freeze-time
        datamanager has one video and no time, so only None (all of it) applies."""
        if videos is not None or time_window is not None:
            raise ValueError(f"{type(self).__name__} trains on the freeze-time video only (asked for {videos}, "
                             f"time window {time_window}).")

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


@dataclass
class ReferenceVideoDataManagerConfig(FreezeTimeDataManagerConfig):
    """Full images of every video of a fourreal scene, with their times; which videos are drawn follows the stage."""

    _target: Type = field(default_factory=lambda: ReferenceVideoDataManager)
    dataparser: FourRealDataParserConfig = field(default_factory=FourRealDataParserConfig)


class ReferenceVideoDataManager(FreezeTimeDataManager):
    """Stage 2 (paper C.2): reference frames during motion fitting and growth, all frames in the joint fine-tune."""

    config: ReferenceVideoDataManagerConfig
    _videos: Optional[frozenset] = None  # None: every video
    _time_window: Optional[float] = None  # None: every time

    def use_videos(self, videos: Optional[Sequence[str]], time_window: Optional[float] = None) -> None:
        """Draw only frames of these videos (None: every video) whose time is within `time_window` of the canonical
        time (None: any) from now on. Starts a new epoch when either changes."""
        wanted = None if videos is None else frozenset(VIDEO_IDS[video] for video in videos)
        if wanted == self._videos and time_window == self._time_window:
            return
        self._videos, self._time_window = wanted, time_window
        if not self.sample_train_cameras():
            available = sorted({name for name, i in VIDEO_IDS.items() if i in set(self._video_ids())})
            raise ValueError(
                f"No training frame of the videos {sorted(videos or [])} in this scene (it has {available}). "
                "Check the scene folder, or --pipeline.datamanager.dataparser.videos."
            )
        self.train_unseen_cameras = self.sample_train_cameras()

    def _video_ids(self) -> List[int]:
        return self.train_dataset.cameras.metadata["video_id"].flatten().tolist()

    def sample_train_cameras(self):
        """nerfstudio's epoch of shuffled training indices, restricted to the current videos and time window."""
        indices = super().sample_train_cameras()
        if self._videos is not None:
            video_ids = self._video_ids()
            indices = [index for index in indices if video_ids[index] in self._videos]
        if self._time_window is not None:
            offsets = (self.train_dataset.cameras.times.flatten() - self.canonical_time).abs().tolist()
            indices = [index for index in indices if offsets[index] <= self._time_window + 1e-6]
        return indices
