"""`fourreal-data`: nerfstudio's view of a fourreal scene folder (docs/scene_format.md).

Per camera it gives nerfstudio what 4Real needs beyond poses and images:
- `times` (so `includes_time` is true and the viewer shows its time slider);
- `metadata["view"]` and `metadata["video_id"]` ([N, 1] long tensors): which freeze-time frame (the per-frame
  deformation's code, paper 3.3) or which grid view a camera is, and which video it belongs to.
The dataparser's own metadata carries the seed points (`points3D_xyz`, `points3D_rgb`, which VanillaPipeline
hands to the model), the `canonical` block, `num_freeze_views`, the `generation` settings and `static` (a scene
without a reference video or grid: nothing in it moves).

Held-out frames: a frame's own `split` key wins (imported datasets); otherwise every `eval_every`-th frame of
each video (counted along the orbit for freeze frames, in time for the others), never the canonical frames. With
`eval_every` 0 nothing is held out and evaluation uses the training frames (nerfstudio always builds an eval set).
Poses are used as written (no re-centring), scaled by `scale_factor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple, Type

import numpy as np
import torch

from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification
from nerfstudio.utils.rich_utils import CONSOLE

from fourreal_ns.data.scene import VIDEO_IDS, VIDEOS, Scene, SceneFormatError, SceneFrame, load_points, load_scene


@dataclass
class FourRealDataParserConfig(DataParserConfig):
    """A fourreal scene folder (transforms.json with video / time / view per frame and a canonical block)."""

    _target: Type = field(default_factory=lambda: FourRealDataParser)
    data: Path = Path()
    """The scene folder (or its transforms.json)."""
    videos: Tuple[str, ...] = VIDEOS
    """Which videos to train on: freeze, reference, grid."""
    eval_every: int = 8
    """Hold out every n-th frame of each video for evaluation. 0 holds out none and evaluates on the training frames
    (as nerfstudio's eval_mode "all"). A frame's `split` key overrides this."""
    scale_factor: float = 1.0
    """Multiply camera positions and seed points by this."""
    load_points: bool = True
    """Seed the Gaussians from the scene's `ply_file_path` (random initialisation otherwise)."""


def held_out(frames: List[SceneFrame], scene: Scene, eval_every: int) -> List[bool]:
    """For each frame (of one video, in orbit or time order): is it an evaluation frame?"""
    if eval_every <= 0:
        return [False] * len(frames)
    flags = []
    for position, frame in enumerate(frames):
        is_canonical = (frame.video == "freeze" and frame.view == scene.canonical["freeze_frame"]) or (
            frame.video == "reference" and position == scene.canonical["reference_frame"]
        )
        flags.append(position % eval_every == eval_every - 1 and not is_canonical)
    return flags


def reference_time_step(scene: Scene) -> float:
    """The time between consecutive reference (or grid) frames, 0 where there is only one time."""
    times = sorted({frame.time for frame in scene.frames if frame.video in ("reference", "grid")})
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.0


class FourRealDataParser(DataParser):
    config: FourRealDataParserConfig
    includes_time: bool = True

    def _select_frames(self, scene: Scene, split: str) -> List[SceneFrame]:
        unknown = [video for video in self.config.videos if video not in VIDEOS]
        if unknown:
            raise SceneFormatError(f"--pipeline.datamanager.dataparser.videos: unknown {unknown}; use {VIDEOS}.")
        selected = []
        for video in self.config.videos:
            frames = scene.frames_of(video)
            for frame, evaluation in zip(frames, held_out(frames, scene, self.config.eval_every)):
                if frame.split in ("train", "val", "test"):
                    evaluation = frame.split != "train"
                if evaluation == (split != "train"):
                    selected.append(frame)
        if not selected and split != "train" and self.config.eval_every <= 0:
            return self._select_frames(scene, "train")  # nothing held out: evaluate on the training frames
        if not selected:
            available = sorted({frame.video for frame in scene.frames})
            raise SceneFormatError(
                f"{scene.transforms_path}: no {split} frames among the videos {list(self.config.videos)} "
                f"(the scene has {available}). Choose videos with --pipeline.datamanager.dataparser.videos, or "
                "lower --pipeline.datamanager.dataparser.eval-every."
            )
        return selected

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        scene = load_scene(self.config.data)
        frames = self._select_frames(scene, split)
        scale = float(self.config.scale_factor)

        poses = torch.tensor(np.stack([frame.transform_matrix[:3] for frame in frames]), dtype=torch.float32)
        poses[:, :3, 3] *= scale
        distortion = torch.tensor(
            [[f.distortion[0], f.distortion[1], 0.0, 0.0, f.distortion[2], f.distortion[3]] for f in frames],
            dtype=torch.float32,
        )  # nerfstudio's order: k1, k2, k3, k4, p1, p2
        cameras = Cameras(
            camera_to_worlds=poses,
            fx=torch.tensor([[f.fl_x] for f in frames], dtype=torch.float32),
            fy=torch.tensor([[f.fl_y] for f in frames], dtype=torch.float32),
            cx=torch.tensor([[f.cx] for f in frames], dtype=torch.float32),
            cy=torch.tensor([[f.cy] for f in frames], dtype=torch.float32),
            width=torch.tensor([[f.width] for f in frames], dtype=torch.long),
            height=torch.tensor([[f.height] for f in frames], dtype=torch.long),
            distortion_params=distortion if distortion.abs().sum() > 0 else None,
            camera_type=CameraType.PERSPECTIVE,
            times=torch.tensor([[f.time] for f in frames], dtype=torch.float32),
            metadata={
                "view": torch.tensor([[f.view] for f in frames], dtype=torch.long),
                "video_id": torch.tensor([[VIDEO_IDS[f.video]] for f in frames], dtype=torch.long),
            },
        )

        metadata = {
            "canonical": dict(scene.canonical),
            "num_freeze_views": scene.num_freeze_views,
            "generation": dict(scene.generation),
            "scene": str(scene.folder),
            "static": scene.is_static,
            "reference_time_step": reference_time_step(scene),
        }
        all_centres = np.stack([frame.transform_matrix[:3, 3] for frame in scene.frames]) * scale
        extent = float(np.abs(all_centres).max()) if len(all_centres) else 1.0
        if self.config.load_points and scene.ply_path is not None:
            points, colours = load_points(scene.ply_path)
            points = points * scale
            metadata["points3D_xyz"] = torch.from_numpy(points)
            metadata["points3D_rgb"] = torch.from_numpy(colours)
            if len(points):
                extent = max(extent, float(np.abs(points).max()))
        elif split == "train":
            CONSOLE.print(f"[yellow]{scene.transforms_path}: no seed points (ply_file_path); Gaussians start random.")
        scene_box = SceneBox(aabb=torch.tensor([[-extent] * 3, [extent] * 3], dtype=torch.float32))

        return DataparserOutputs(
            image_filenames=[frame.image_path for frame in frames],
            cameras=cameras,
            scene_box=scene_box,
            metadata=metadata,
            dataparser_scale=scale,
        )


# Registered as `fourreal-data` (pyproject.toml). It lives here, not in method_configs.py: nerfstudio loads
# dataparser entry points while its own datamanager module is half-imported, so this module must not import the
# trainer or pipelines.
fourreal_dataparser = DataParserSpecification(
    config=FourRealDataParserConfig(),
    description="A fourreal scene folder: freeze-time, reference and grid frames with times and a canonical block",
)
