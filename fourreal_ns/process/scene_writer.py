"""Writing the scene folder (docs/scene_format.md) from a structure-from-motion result.

Conventions:
- COLMAP gives world-to-camera poses in the OpenCV convention (x right, y down, z forward); nerfstudio's
  `transform_matrix` is camera-to-world in the OpenGL convention (x right, y up, camera looks down -z): invert,
  then negate the camera's y and z axes;
- the world is normalised by a similarity (`Normalisation`): centred at the mean of the distinct camera centres,
  rotated so that the mean camera up vector is +y (the demo scene's and viewer's up), and scaled so that the
  camera farthest from the centre is at distance `radius` (1 by default): the cameras fit in a unit sphere;
- seed points: the sparse SfM points in the same world, without points of reprojection error above
  `MAX_POINT_ERROR` pixels or farther than `MAX_POINT_DISTANCE` x radius from the centre (stray matches), as a binary
  PLY with x, y, z float and red, green, blue uchar (the layout `fourreal demo-scene` writes);
- `transforms.json` is written last and atomically (a temporary file, then `os.replace`), so a folder with a
  transforms.json is always a complete scene; images (and their full-resolution copies in images_full/) are moved
  into place just before it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from fourreal_ns.data.point_cloud import write_point_cloud_ply

MAX_POINT_ERROR = 2.0
"""Seed points with a larger mean reprojection error (pixels) are dropped."""
MAX_POINT_DISTANCE = 10.0
"""Seed points farther than this many camera-radii from the centre are dropped."""
PLY_NAME = "seed_points.ply"
OWN_IMAGE_NAMES = re.compile(r"^(\d{5}|v\d{3}_t\d{3})\.png$")
"""Names of the images `fourreal process` writes (only these are ever replaced by --overwrite)."""


def opengl_camera_to_world(world_to_camera: np.ndarray) -> np.ndarray:
    """4 x 4 OpenGL camera-to-world of a 4 x 4 (or 3 x 4) OpenCV world-to-camera matrix."""
    w2c = np.eye(4)
    w2c[:3] = np.asarray(world_to_camera, dtype=np.float64)[:3]
    c2w = np.linalg.inv(w2c)
    c2w[:3, 1:3] *= -1.0
    return c2w


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector a to unit vector b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(np.dot(a, b))
    if c < -1.0 + 1e-9:  # opposite: half turn about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


@dataclass
class Normalisation:
    """x -> scale * rotation @ (x - centre): the similarity from COLMAP's world to the scene's."""

    centre: np.ndarray
    rotation: np.ndarray
    scale: float

    @classmethod
    def fit(cls, camera_to_worlds: Iterable[np.ndarray], radius: float = 1.0) -> "Normalisation":
        """From OpenGL camera-to-world matrices in COLMAP's world (module docstring)."""
        poses = np.stack(list(camera_to_worlds))
        centres = np.unique(np.round(poses[:, :3, 3], 12), axis=0)
        centre = centres.mean(axis=0)
        up = poses[:, :3, 1].mean(axis=0)
        rotation = _rotation_between(up, np.array([0.0, 1.0, 0.0])) if np.linalg.norm(up) > 1e-6 else np.eye(3)
        spread = float(np.linalg.norm(centres - centre, axis=1).max())
        scale = radius / spread if spread > 1e-12 else 1.0
        return cls(centre=centre, rotation=rotation, scale=scale)

    def points(self, points: np.ndarray) -> np.ndarray:
        return self.scale * (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation.T

    def pose(self, camera_to_world: np.ndarray) -> np.ndarray:
        out = np.eye(4)
        out[:3, :3] = self.rotation @ camera_to_world[:3, :3]
        out[:3, 3] = self.points(camera_to_world[None, :3, 3])[0]
        return out

    def to_json(self) -> dict:
        return {"note": "scene = scale * rotation @ (colmap - centre)", "centre": [float(x) for x in self.centre],
                "rotation": [[float(x) for x in row] for row in self.rotation], "scale": float(self.scale)}


def seed_points(points: np.ndarray, colours: np.ndarray, errors: np.ndarray, radius: float):
    """Sparse points (already normalised) worth seeding Gaussians with: (points, colours)."""
    keep = (errors <= MAX_POINT_ERROR) & (np.linalg.norm(points, axis=1) <= MAX_POINT_DISTANCE * radius)
    keep &= np.isfinite(points).all(axis=1)
    return points[keep], colours[keep]


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    """The sparse SfM points as the scene's seed point cloud (data/point_cloud.py)."""
    write_point_cloud_ply(path, points, colours, "fourreal process: sparse SfM points")


def frame_entry(file_path: str, camera_to_world: np.ndarray, video: str, time: float, view: int,
                clip: Optional[str] = None, source_frame: Optional[int] = None) -> dict:
    """One frame of transforms.json; `clip` (the input clip's file name) and `source_frame` (the frame's index in
    that clip) only where known."""
    entry = {"file_path": file_path, "transform_matrix": [[float(x) for x in row] for row in camera_to_world],
             "video": video, "time": float(time), "view": int(view)}
    if clip is not None:
        entry["clip"] = clip
    if source_frame is not None:
        entry["source_frame"] = int(source_frame)
    return entry


def transforms_content(intrinsics: Dict[str, float], frames: List[dict], canonical: dict, generation: dict,
                       process: dict, ply_file_path: str = PLY_NAME) -> dict:
    """The whole transforms.json: global PINHOLE intrinsics, canonical block, seed points, frames."""
    return {
        "camera_model": "PINHOLE",
        "fl_x": float(intrinsics["fl_x"]), "fl_y": float(intrinsics["fl_y"]),
        "cx": float(intrinsics["cx"]), "cy": float(intrinsics["cy"]),
        "w": int(intrinsics["w"]), "h": int(intrinsics["h"]),
        "canonical": canonical,
        "ply_file_path": ply_file_path,
        "generation": generation,
        "process": process,
        "frames": frames,
    }  # fmt: skip


def own_images(folder: Path) -> List[Path]:
    """The images `fourreal process` wrote to a folder earlier (00000.png, v000_t000.png names only)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and OWN_IMAGE_NAMES.match(p.name))


def move_images(staged: Path, destination: Path) -> None:
    """Move staged images into the scene folder, replacing earlier `fourreal process` images of that folder."""
    destination.mkdir(parents=True, exist_ok=True)
    for stale in own_images(destination):
        stale.unlink()
    for path in sorted(staged.iterdir()):
        shutil.move(str(path), str(destination / path.name))


def write_colmap_model(reconstruction, folder: Path) -> None:
    """The COLMAP model (binary, COLMAP's world) for inspection with COLMAP's tools; replaces an earlier one."""
    temporary = folder.parent / f".{folder.name}.tmp"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    reconstruction.write(str(temporary))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)
