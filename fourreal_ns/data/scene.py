"""The fourreal scene folder (docs/scene_format.md): reading and checking `transforms.json`.

Everything is checked before training starts, and every error names the file, the frame and the fix: a scene
made by hand or by another tool should fail here, with a sentence a user can act on, rather than deep inside
nerfstudio. Nothing here writes to the scene folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from fourreal_ns.data.json_reader import read_json_object
from fourreal_ns.errors import FourRealError

VIDEOS = ("freeze", "reference", "grid")
"""The videos a scene may hold: the freeze-time orbit, the reference video, a 4Real-Video grid."""
VIDEO_IDS: Dict[str, int] = {"freeze": 0, "reference": 1, "grid": 2, "ground_truth": 3}
"""Integer ids of the videos, as cameras carry them in `Cameras.metadata["video_id"]`."""
SPLITS = ("train", "val", "test", "canonical", "dynamic")
"""Optional per-frame `split` values: train/val/test pin a frame's role (imported datasets); canonical/dynamic
label the demo scene's ground-truth frames."""
CAMERA_MODELS = ("PINHOLE", "OPENCV", "SIMPLE_PINHOLE")
INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
DISTORTION_KEYS = ("k1", "k2", "p1", "p2")


class SceneFormatError(FourRealError, ValueError):
    """A scene folder that does not follow docs/scene_format.md."""


@dataclass
class SceneFrame:
    """One image of a scene with everything the trainer needs about it."""

    index: int
    """Position in the file's `frames` list."""
    file_path: str
    image_path: Path
    video: str
    time: float
    view: int
    transform_matrix: np.ndarray
    """4 x 4 camera-to-world, OpenGL convention (nerfstudio's)."""
    fl_x: float
    fl_y: float
    cx: float
    cy: float
    width: int
    height: int
    camera_model: str = "PINHOLE"
    distortion: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """k1, k2, p1, p2 (OPENCV)."""
    split: Optional[str] = None
    clip: Optional[str] = None
    """Which input clip the frame came from (scenes made from several clips of one frozen moment)."""


@dataclass
class Scene:
    folder: Path
    transforms_path: Path
    frames: List[SceneFrame]
    canonical: Dict[str, float]
    """{"time": t_c, "freeze_frame": k_c, "reference_frame": j_c} (k_c an int; j_c an int, or None in a static
    scene, which has no reference video)."""
    ply_path: Optional[Path] = None
    generation: Dict[str, object] = field(default_factory=dict)

    def frames_of(self, video: str) -> List[SceneFrame]:
        frames = [frame for frame in self.frames if frame.video == video]
        return sorted(frames, key=lambda f: (f.time, f.view) if video != "freeze" else (f.view, f.time))

    @property
    def is_static(self) -> bool:
        """A scene without a reference video or grid (a freeze-time or orbit video alone): nothing moves in it."""
        return not any(frame.video in ("reference", "grid") for frame in self.frames)

    @property
    def num_freeze_views(self) -> int:
        views = [frame.view for frame in self.frames if frame.video == "freeze"]
        return max(views) + 1 if views else 1


def _read_json(path: Path) -> dict:
    content = read_json_object(
        path, "Fix the file or make one: a scene folder needs nerfstudio's transforms.json with the keys of "
        "docs/scene_format.md, as `fourreal demo-scene OUT` and `fourreal process` write it.", SceneFormatError)
    if not isinstance(content.get("frames"), list) or not content["frames"]:
        raise SceneFormatError(f"{path} has no `frames` list (or it is empty): add one entry per image.")
    return content


def _number(value, path: Path, where: str, key: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SceneFormatError(f"{path}: {where} has `{key}` = {value!r}, which is not a finite number. {fix}")
    return float(value)


def _parse_frame(raw: dict, index: int, defaults: dict, folder: Path, path: Path, videos: Tuple[str, ...],
                 check_images: bool) -> SceneFrame:
    if not isinstance(raw, dict):
        raise SceneFormatError(f"{path}: frame {index} is not an object: each frame is a JSON object.")
    where = f"frame {index} ({raw.get('file_path', 'no file_path')})"
    merged = {**defaults, **raw}
    for key in ("file_path", "transform_matrix", "video", "time", "view"):
        if key not in raw:
            raise SceneFormatError(
                f"{path}: {where} has no `{key}`. Every frame needs file_path, transform_matrix, video "
                f"({'/'.join(videos)}), time (0..1) and view (docs/scene_format.md)."
            )
    video = raw["video"]
    if video not in videos:
        raise SceneFormatError(f"{path}: {where} has `video` = {video!r}; use one of {', '.join(videos)}.")
    time = _number(raw["time"], path, where, "time", "Give the frame's time in [0, 1].")
    if not 0.0 <= time <= 1.0:
        raise SceneFormatError(f"{path}: {where} has `time` = {time}, outside [0, 1]: normalise times to [0, 1].")
    view = raw["view"]
    if isinstance(view, bool) or not isinstance(view, int) or view < 0:
        raise SceneFormatError(f"{path}: {where} has `view` = {view!r}; it must be an integer >= 0.")
    matrix = np.asarray(raw["transform_matrix"], dtype=object)
    if matrix.shape not in ((4, 4), (3, 4)):
        shape = f"shape {matrix.shape}"
        if matrix.ndim == 1 and len(matrix) and all(isinstance(row, list) for row in matrix):  # ragged rows
            shape = f"rows of lengths {', '.join(str(len(row)) for row in matrix)}"
        raise SceneFormatError(
            f"{path}: {where} has a `transform_matrix` of {shape}; it must be a 4 x 4 (or 3 x 4) "
            "camera-to-world matrix in nerfstudio's OpenGL convention."
        )
    for value in matrix.flatten():
        _number(value, path, where, "transform_matrix", "The camera-to-world matrix must hold numbers only.")
    pose = np.eye(4)
    pose[: matrix.shape[0]] = matrix.astype(np.float64)
    missing = [key for key in INTRINSIC_KEYS if key not in merged]
    if missing:
        raise SceneFormatError(
            f"{path}: {where} has no {', '.join(missing)}: give the intrinsics at the top level or per frame."
        )
    intrinsics = {key: _number(merged[key], path, where, key, "Intrinsics are numbers.") for key in INTRINSIC_KEYS}
    camera_model = merged.get("camera_model", "PINHOLE")
    if camera_model not in CAMERA_MODELS:
        raise SceneFormatError(
            f"{path}: {where} has camera_model {camera_model!r}; supported: {', '.join(CAMERA_MODELS)}."
        )
    distortion = tuple(float(merged.get(key, 0.0)) for key in DISTORTION_KEYS)
    split = raw.get("split")
    if split is not None and split not in SPLITS:
        raise SceneFormatError(f"{path}: {where} has `split` = {split!r}; use one of {', '.join(SPLITS)}.")
    clip = raw.get("clip")
    if clip is not None and not isinstance(clip, str):
        raise SceneFormatError(f"{path}: {where} has `clip` = {clip!r}; it must be the clip's name (a string).")
    frame = SceneFrame(
        index=index, file_path=str(raw["file_path"]), image_path=folder / str(raw["file_path"]), video=video,
        time=time, view=int(view), transform_matrix=pose, fl_x=intrinsics["fl_x"], fl_y=intrinsics["fl_y"],
        cx=intrinsics["cx"], cy=intrinsics["cy"], width=int(intrinsics["w"]), height=int(intrinsics["h"]),
        camera_model=camera_model, distortion=distortion, split=split, clip=clip,
    )  # fmt: skip
    if check_images:
        _check_image(frame, path, where)
    return frame


def _check_image(frame: SceneFrame, path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not frame.image_path.is_file():
        raise SceneFormatError(
            f"{path}: {where}: the image {frame.image_path} is missing. Put the image there or remove the frame."
        )
    try:
        with Image.open(frame.image_path) as image:
            size = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise SceneFormatError(f"{path}: {where}: {frame.image_path} is not a readable image ({error}).") from None
    if size != (frame.width, frame.height):
        raise SceneFormatError(
            f"{path}: {where}: {frame.image_path} is {size[0]} x {size[1]} pixels but the intrinsics say "
            f"{frame.width} x {frame.height} (w, h). Resize the image or give this frame its own w, h, fl_x, fl_y, "
            "cx, cy."
        )


def _parse_canonical(content: dict, frames: List[SceneFrame], path: Path) -> Dict[str, float]:
    canonical = content.get("canonical")
    example = '"canonical": {"time": 0.0, "freeze_frame": 16, "reference_frame": 0}'
    if not isinstance(canonical, dict):
        raise SceneFormatError(
            f"{path} has no `canonical` block. Add {example}: the reference frame the freeze-time video was "
            "conditioned on, the freeze frame (`view`) that shows it, and its time."
        )
    missing = [key for key in ("time", "freeze_frame", "reference_frame") if key not in canonical]
    if missing:
        raise SceneFormatError(f"{path}: the `canonical` block lacks {', '.join(missing)}; for example {example}.")
    time = _number(canonical["time"], path, "the canonical block", "time", "Give t_c in [0, 1].")
    freeze_frame, reference_frame = canonical["freeze_frame"], canonical["reference_frame"]
    moving = [frame for frame in frames if frame.video in ("reference", "grid")]
    if reference_frame is None and moving:
        raise SceneFormatError(
            f"{path}: canonical `reference_frame` is null, which marks a static scene (no reference video), but "
            f"{len(moving)} frames are {moving[0].video} frames ({moving[0].file_path}, ...). Give the index of the "
            "reference frame the freeze-time video was conditioned on, or remove those frames."
        )
    for key, value in (("freeze_frame", freeze_frame), ("reference_frame", reference_frame)):
        if value is None and key == "reference_frame":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SceneFormatError(f"{path}: canonical `{key}` = {value!r}; it must be an integer >= 0"
                                   + (" (or null in a static scene)." if key == "reference_frame" else "."))
    freeze_views = [frame.view for frame in frames if frame.video == "freeze"]
    if freeze_views and freeze_frame not in freeze_views:
        raise SceneFormatError(
            f"{path}: canonical `freeze_frame` = {freeze_frame} but no freeze frame has that `view` "
            f"(views {min(freeze_views)}..{max(freeze_views)}). Set it to the view that shows the reference frame."
        )
    return {"time": time, "freeze_frame": int(freeze_frame),
            "reference_frame": None if reference_frame is None else int(reference_frame)}


def _check_unique_freeze_views(frames: List[SceneFrame], path: Path) -> None:
    seen: Dict[int, SceneFrame] = {}
    for frame in frames:
        if frame.video != "freeze":
            continue
        if frame.view in seen:
            raise SceneFormatError(
                f"{path}: frames {seen[frame.view].index} ({seen[frame.view].file_path}) and {frame.index} "
                f"({frame.file_path}) are both freeze frames with `view` = {frame.view}; freeze views are unique "
                "(their index along the orbit)."
            )
        seen[frame.view] = frame


def load_scene(folder: Path, check_images: bool = True) -> Scene:
    """Read and check `folder/transforms.json` and its images (sizes only; pixels are read by the trainer)."""
    folder = Path(folder)
    if folder.is_file() and folder.name == "transforms.json":
        folder = folder.parent
    path = folder / "transforms.json"
    content = _read_json(path)
    defaults = {key: content[key] for key in (*INTRINSIC_KEYS, "camera_model", *DISTORTION_KEYS) if key in content}
    frames = [_parse_frame(raw, index, defaults, folder, path, VIDEOS, check_images)
              for index, raw in enumerate(content["frames"])]
    _check_unique_freeze_views(frames, path)
    canonical = _parse_canonical(content, frames, path)
    ply_path = None
    if content.get("ply_file_path"):
        ply_path = folder / str(content["ply_file_path"])
        if not ply_path.is_file():
            raise SceneFormatError(
                f"{path}: `ply_file_path` names {ply_path}, which is missing. Restore the seed points or remove "
                "the key (the Gaussians then start from random points)."
            )
    generation = content.get("generation") if isinstance(content.get("generation"), dict) else {}
    return Scene(folder=folder, transforms_path=path, frames=frames, canonical=canonical, ply_path=ply_path,
                 generation=generation)


def load_ground_truth(folder: Path) -> List[SceneFrame]:
    """The demo scene's ground-truth frames (`ground_truth/transforms.json`): for evaluation only."""
    path = Path(folder) / "ground_truth" / "transforms.json"
    content = _read_json(path)
    defaults = {key: content[key] for key in (*INTRINSIC_KEYS, "camera_model", *DISTORTION_KEYS) if key in content}
    return [_parse_frame(raw, index, defaults, path.parent, path, ("ground_truth",), check_images=True)
            for index, raw in enumerate(content["frames"])]


def load_points(ply_path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Seed points: (N, 3) float32 positions and (N, 3) uint8 colours (grey where the PLY has no colour)."""
    from plyfile import PlyData

    try:
        vertex = PlyData.read(str(ply_path))["vertex"]
        points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    except Exception as error:  # plyfile raises several types for malformed files
        raise SceneFormatError(
            f"{ply_path} is not a PLY point cloud with x, y, z vertex properties ({error}). Replace it or remove "
            "`ply_file_path` from transforms.json."
        ) from None
    names = vertex.data.dtype.names
    if all(name in names for name in ("red", "green", "blue")):
        colours = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(np.uint8)
    else:
        colours = np.full((len(points), 3), 128, dtype=np.uint8)
    finite = np.isfinite(points).all(axis=1)
    return points[finite], colours[finite]
