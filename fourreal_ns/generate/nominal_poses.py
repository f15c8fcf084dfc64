"""Nominal poses: transforms.json from the trajectory the generator was *asked* for, without SfM.

`fourreal process` poses a generated scene with SfM (paper 3.3: poses from COLMAP, refined during training). When
SfM cannot register the frames (tests with random-weight video models, very textureless scenes) this writes the
poses the generation assumed instead (`fourreal run --poses nominal`):
- freeze frame k on a circle around the origin, looking at it: angle (k - k_c) x `degrees_per_frame` (from
  generation.json; the frames cover its `arc_degrees`), horizontal radius `radius`, `elevation_degrees` above the
  centre; increasing k turns the camera counter-clockwise seen from above (+y up), an assumption: the video model
  decides which way "Camera circulating around" goes, and the trainers' camera optimizer refines the poses;
- every reference frame has the canonical freeze frame's pose (the generated reference video's camera is static),
  time j / (J - 1);
- pinhole intrinsics from an assumed horizontal field of view (`fov_degrees`), principal point at the centre;
- seed points: `num_points` uniform in a cube of half-size `box_half_size` around the origin, coloured by projecting
  them into the canonical frame (grey where they fall outside it).
The result follows docs/scene_format.md; transforms.json records `"poses": {"source": "nominal", ...}`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import numpy as np

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.data.json_reader import read_json_object
from fourreal_ns.data.point_cloud import write_point_cloud_ply
from fourreal_ns.generate.parts import GENERATION_FILE


def _frame_files(folder: Path) -> List[Path]:
    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no PNG frames: run `fourreal generate` first.")
    return files


def nominal_freeze_poses(num_frames: int, canonical_index: int, degrees_per_frame: float, radius: float,
                         elevation_degrees: float) -> List[np.ndarray]:
    """OpenGL camera-to-world poses of the freeze frames on the nominal circle (module docstring)."""
    from fourreal_ns.geometry import orbit_camera

    height = radius * math.tan(math.radians(elevation_degrees))
    return [orbit_camera((k - canonical_index) * degrees_per_frame, radius=radius, height=height)
            for k in range(num_frames)]


def _seed_points(image: np.ndarray, pose: np.ndarray, focal: float, count: int, half_size: float,
                 seed: int):
    """Uniform points in the cube, coloured by the pixel they project to in `image` (grey outside)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-half_size, half_size, (count, 3))
    height, width = image.shape[:2]
    in_camera = (points - pose[:3, 3]) @ pose[:3, :3]  # world -> camera (OpenGL: looks down -z)
    depth = -in_camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = width / 2 + focal * in_camera[:, 0] / depth
        v = height / 2 - focal * in_camera[:, 1] / depth
    inside = (depth > 1e-6) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    colours = np.full((count, 3), 128, dtype=np.uint8)
    colours[inside] = image[v[inside].astype(int), u[inside].astype(int)]
    return points, colours


def write_nominal_transforms(scene: Path, fov_degrees: float = 60.0, radius: float = 2.0,
                             elevation_degrees: float = 10.0, num_points: int = 2000, box_half_size: float = 0.75,
                             seed: int = 0, overwrite: bool = False,
                             degrees_per_frame: Optional[float] = None) -> Path:
    """Write `scene/transforms.json` and `scene/points3d.ply` from the nominal trajectory; returns transforms.json."""
    from PIL import Image

    scene = Path(scene)
    out = scene / "transforms.json"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it with nominal poses.")
    if not 0 < fov_degrees < 180:
        raise ValueError("the field of view must be in (0, 180) degrees")
    generation_path = scene / GENERATION_FILE
    generation = read_json_object(generation_path, "Nominal poses need a scene from `fourreal generate`.")
    freeze_files = _frame_files(scene / "images" / "freeze")
    reference_files = _frame_files(scene / "images" / "reference")
    canonical = generation.get("canonical", {})
    k_c = int(canonical.get("freeze_frame", len(freeze_files) // 2))
    j_c = int(canonical.get("reference_frame", 0))
    if not (0 <= k_c < len(freeze_files) and 0 <= j_c < len(reference_files)):
        raise ValueError(f"{generation_path}: canonical frames (k_c {k_c}, j_c {j_c}) are outside the videos "
                         f"({len(freeze_files)} freeze, {len(reference_files)} reference frames).")
    if degrees_per_frame is None:
        arc = float(generation.get("arc_degrees", 180.0))
        degrees_per_frame = float(generation.get("degrees_per_frame", arc / max(len(freeze_files) - 1, 1)))
    t_c = j_c / max(len(reference_files) - 1, 1)

    canonical_image = np.asarray(Image.open(freeze_files[k_c]).convert("RGB"))
    height, width = canonical_image.shape[:2]
    focal = width / 2.0 / math.tan(math.radians(fov_degrees) / 2.0)
    poses = nominal_freeze_poses(len(freeze_files), k_c, degrees_per_frame, radius, elevation_degrees)

    def matrix(pose: np.ndarray) -> List[List[float]]:
        return [[float(value) for value in row] for row in pose]

    frames = [{"file_path": file.relative_to(scene).as_posix(), "transform_matrix": matrix(pose), "video": "freeze",
               "time": t_c, "view": k} for k, (file, pose) in enumerate(zip(freeze_files, poses))]
    num_reference = len(reference_files)
    frames += [{"file_path": file.relative_to(scene).as_posix(), "transform_matrix": matrix(poses[k_c]),
                "video": "reference", "time": j / max(num_reference - 1, 1), "view": 0}
               for j, file in enumerate(reference_files)]

    points, colours = _seed_points(canonical_image, poses[k_c], focal, num_points, box_half_size, seed)
    write_point_cloud_ply(scene / "points3d.ply", points, colours, "fourreal generate: nominal-pose seed points")
    content = {
        "camera_model": "PINHOLE", "fl_x": focal, "fl_y": focal, "cx": width / 2.0, "cy": height / 2.0,
        "w": width, "h": height,
        "canonical": {"time": t_c, "freeze_frame": k_c, "reference_frame": j_c},
        "ply_file_path": "points3d.ply",
        "generation": generation,
        "poses": {"source": "nominal", "fov_degrees": fov_degrees, "radius": radius,
                  "elevation_degrees": elevation_degrees, "degrees_per_frame": degrees_per_frame,
                  "num_points": num_points, "box_half_size": box_half_size},
        "frames": frames,
    }
    write_json_atomic(out, content)
    return out
