"""`fourreal demo-scene`: a procedural 4D scene in the fourreal scene format (docs/scene_format.md).

The true 4D world (a room with a rolling ball) and its analytic ray caster are demo_world.py; this module places
the cameras and writes the scene.

What is written (all deterministic in `seed`):
- reference video: `num_reference` frames from one fixed camera at times linspace(0, 1); j_c = 0, so the canonical
  time is t_c = 0 (the paper's convention: temporal videos start at the canonical frame);
- freeze-time video: `num_freeze` cameras on a horizontal arc (default 180 degrees, radius 1.35, 0.35 above the
  centre: ~14.5 degrees elevation) looking at the origin, scene frozen at t_c, with video-model-like inconsistencies:
  the ball is offset by a smooth drift along its direction of motion (linear in the orbit position, up to
  `object_drift` x its diameter at the arc ends) plus per-frame random jitter (std `object_jitter` x diameter per
  axis, clipped at 2 std, never downwards into the floor): 1-12 % of its size with the defaults; and each frame's
  colour is multiplied by a per-channel gain 1 +- about `colour_wobble`. The part of these offsets that looks, from
  the orbit, like the object standing at another depth along the canonical camera's ray (parallax) is then removed
  (`_without_canonical_depth_ambiguity`), so that the true canonical scene can be recovered from the video: the
  drifting scene of the ablation test would otherwise score its ball 0.04-0.05 units off where no method could
  tell. The middle frame k_c = num_freeze // 2 uses exactly the reference camera and is the exact true scene: it is
  the same image as reference frame j_c. The orbit angles are reference + (k - k_c) * arc / (num_freeze - 1), so
  the arc is not quite symmetric for an even num_freeze (-92.9 .. +87.1 degrees for 32 frames). Optionally
  (`pose_noise_degrees`, `pose_noise_translation`, both 0 by default) the poses written for the freeze frames other
  than k_c carry random errors like an SfM result's, while their images are rendered from the true poses: what pose
  refinement is for;
- per-frame keys as docs/scene_format.md: freeze frames `view` = k, `time` = t_c; reference frames `view` = 0 (the
  reference view, as the spec says) and their time. An extra top-level `demo_scene` block records the generator's
  version, the orbit, the true object position at t_c and the offsets and gains injected into each freeze frame
  (trainers ignore it);
- `points3d.ply`: points where random rays from the freeze cameras hit the true scene at t_c (so visible from the
  orbit), with the true shaded colour and Gaussian positional noise (std `point_noise`), like an SfM cloud;
- `ground_truth/`: renders of the true scene for evaluation only: split "canonical" (8 cameras at t_c: 4 on the
  orbit halfway between training cameras, 4 off it: higher, lower and closer, farther) and split "dynamic"
  (8 cameras at times halfway between reference frames: 2 at the reference camera, 2 near it, 4 elsewhere on the
  orbit). Ground-truth frames carry `view` = their index in that file (they are no training view).

`render_true` (demo_world.py, imported here) renders the true scene at any camera and time.
"""

from __future__ import annotations

import json
import math
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple

import numpy as np
import tyro
from typing_extensions import Annotated

from fourreal_ns import geometry
from fourreal_ns.data.atomic_write import check_output_folder
from fourreal_ns.data.point_cloud import write_point_cloud_ply
from fourreal_ns.demo_world import DemoWorld, demo_world, render_true, rotation_about, rows_times
from fourreal_ns.geometry import project_opengl

__all__ = ["DemoSceneConfig", "make_demo_scene", "orbit_camera", "intrinsics", "freeze_angles", "render_true",
           "demo_world", "DemoWorld"]

# The orbit (world units; the dataparser applies no transform).
ORBIT_RADIUS = 1.35
ORBIT_HEIGHT = 0.35
TARGET = np.zeros(3)
HORIZONTAL_FOV_DEGREES = 60.0
PROMPT = "a ball rolling in a toy room"
GENERATOR_VERSION = 2
"""Recorded in the `demo_scene` block and raised whenever the scene a seed makes changes, so that `fourreal demo`
does not train on a scene of an older version (1, unrecorded: until 2026-11-25; 2: the drift's depth-ambiguous part
removed, `_without_canonical_depth_ambiguity`)."""


# --------------------------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------------------------


def intrinsics(width: int, height: int, horizontal_fov_degrees: float = HORIZONTAL_FOV_DEGREES) -> np.ndarray:
    """The demo cameras' 3 x 3 pinhole K (geometry.intrinsics at the demo's field of view)."""
    return geometry.intrinsics(width, height, horizontal_fov_degrees)


def orbit_camera(angle_degrees: float, radius: float = ORBIT_RADIUS, height: float = ORBIT_HEIGHT) -> np.ndarray:
    """A camera of the demo orbit (geometry.orbit_camera around the scene centre)."""
    return geometry.orbit_camera(angle_degrees, radius, height, TARGET)


def freeze_angles(num_freeze: int, arc_degrees: float, canonical_index: int,
                  reference_angle: float = 0.0) -> np.ndarray:
    """Orbit angles of the freeze cameras: `arc_degrees` in equal steps, the canonical one at the reference."""
    step = arc_degrees / max(num_freeze - 1, 1)
    return reference_angle + (np.arange(num_freeze) - canonical_index) * step


# --------------------------------------------------------------------------------------------------------------
# Writing the scene folder
# --------------------------------------------------------------------------------------------------------------


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def _perturbed_poses(poses: List[np.ndarray], k_c: int, degrees: float, translation: float,
                     seed: int) -> List[np.ndarray]:
    """The camera-to-world poses with an SfM-like error on each but k_c: a rotation about a random axis by an angle
    of std `degrees` per axis (normal rotation vector), and a translation of std `translation` per axis. Its own
    random stream, so the images, points and poses of a scene without noise are as before the option existed."""
    if degrees == 0 and translation == 0:
        return list(poses)
    rng = np.random.default_rng([int(seed), 11])
    perturbed = []
    for k, pose in enumerate(poses):
        rotation_vector = rng.normal(0.0, math.radians(degrees), 3)
        shift = rng.normal(0.0, translation, 3)
        if k == k_c:
            perturbed.append(pose)  # the canonical frame is the reference camera: exact
            continue
        noisy = np.array(pose, dtype=np.float64)
        angle = float(np.linalg.norm(rotation_vector))
        if angle > 0:
            noisy[:3, :3] = rows_times(rotation_about(rotation_vector, angle), noisy[:3, :3])
        noisy[:3, 3] += shift
        perturbed.append(noisy)
    return perturbed


def _without_canonical_depth_ambiguity(offsets: np.ndarray, poses: List[np.ndarray], k_c: int,
                                       centre: np.ndarray, iterations: int = 20) -> Tuple[np.ndarray, float]:
    """The object offsets of the freeze frames less their part that no reconstruction could tell from the object
    standing at another depth along the canonical camera's ray (parallax), and the length of that part.

    Seen from frame k, the object moved by s along k_c's viewing ray r appears shifted in the image; a drift across
    k_c's view that grows with the orbit angle (like the default drift along the direction of motion) makes almost
    the same image shifts. The canonical frame pins the object in its own image plane, but nothing pins it along r
    except the other frames, so the true canonical position would not be recoverable and a perfect method would be
    scored wrong. s is the least-squares fit of the image shifts of a move along r to those of the offsets (in
    every frame but k_c); each offset loses s times r less its part along frame k's own ray to the object (which
    frame k does not see), then the floor constraint (never downwards) is applied again, `iterations` times
    (alternating projections). Returns (offsets, total s removed)."""
    offsets = np.array(offsets, dtype=np.float64)
    ray = centre - poses[k_c][:3, 3]
    ray = ray / np.linalg.norm(ray)
    others = [k for k in range(len(poses)) if k != k_c]

    def image_shift(k: int, moved: np.ndarray) -> np.ndarray:  # of the object moved to `moved`, frame k, focal 1
        u, v, _ = project_opengl(np.stack([centre, moved]), poses[k], 1.0, 0.0, 0.0)
        return np.array([u[1] - u[0], v[1] - v[0]])

    epsilon = 1e-6
    pattern = {k: image_shift(k, centre + epsilon * ray) / epsilon for k in others}
    ray_across = {}  # r less its part along frame k's ray to the object
    for k in others:
        sight = (centre - poses[k][:3, 3]) / np.linalg.norm(centre - poses[k][:3, 3])
        ray_across[k] = ray - np.dot(ray, sight) * sight
    removed = 0.0
    for _ in range(iterations):
        seen = {k: image_shift(k, centre + offsets[k]) for k in others}
        shift = sum(float(pattern[k] @ seen[k]) for k in others) / sum(float(pattern[k] @ pattern[k]) for k in others)
        for k in others:
            offsets[k] -= shift * ray_across[k]
        offsets[:, 1] = np.maximum(offsets[:, 1], 0.0)  # never into the floor
        removed += shift
    return offsets, removed


def _matrix(pose: np.ndarray) -> List[List[float]]:
    return [[float(value) for value in row] for row in np.asarray(pose)]


def _intrinsics_json(K: np.ndarray, width: int, height: int) -> dict:
    return {"camera_model": "PINHOLE", "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]),
            "cy": float(K[1, 2]), "w": int(width), "h": int(height)}


def make_demo_scene(
    out: Path,
    seed: int = 0,
    width: int = 96,
    height: int = 54,
    num_freeze: int = 32,
    num_reference: int = 24,
    supersample: int = 3,
    arc_degrees: float = 180.0,
    object_jitter: float = 0.02,
    object_drift: float = 0.06,
    colour_wobble: float = 0.02,
    num_points: int = 3000,
    point_noise: float = 0.006,
    pose_noise_degrees: float = 0.0,
    pose_noise_translation: float = 0.0,
    overwrite: bool = False,
) -> Path:
    """Write the procedural demo scene of `seed` to `out` (module docstring; docs/scene_format.md). Returns `out`."""
    out = Path(out)
    if num_freeze < 2 or num_reference < 2:
        raise ValueError("the demo scene needs at least 2 freeze frames and 2 reference frames")
    check_output_folder(out, overwrite, "the demo scene", (
        "images/freeze/frame_*.png", "images/reference/frame_*.png", "ground_truth/images/canonical_*.png",
        "ground_truth/images/dynamic_*.png"))  # fmt: skip
    world = demo_world(int(seed))
    rng = np.random.default_rng([int(seed), 7])
    K = intrinsics(width, height)
    k_c, j_c = num_freeze // 2, 0
    reference_times = np.linspace(0.0, 1.0, num_reference)
    t_c = float(reference_times[j_c])
    reference_pose = orbit_camera(0.0)
    angles = freeze_angles(num_freeze, arc_degrees, k_c)
    freeze_poses = [reference_pose if k == k_c else orbit_camera(float(a)) for k, a in enumerate(angles)]

    # Injected inconsistencies of the freeze-time video (none at k_c).
    size = world.object_size
    drift_direction = world.object_velocity_direction(t_c)
    positions = (np.arange(num_freeze) - k_c) / max(k_c, num_freeze - 1 - k_c, 1)  # in [-1, 1], 0 at k_c
    offsets = (object_drift * size * positions[:, None] * drift_direction[None, :]
               + np.clip(rng.normal(0.0, object_jitter * size, (num_freeze, 3)), -2.0 * object_jitter * size,
                         2.0 * object_jitter * size))
    offsets[:, 1] = np.maximum(offsets[:, 1], 0.0)  # never into the floor
    phase = rng.uniform(0, 2 * math.pi, 3)
    gains = 1.0 + colour_wobble * (0.7 * np.sin(2 * math.pi * 1.3 * positions[:, None] + phase[None, :])
                                   + 0.3 * np.clip(rng.normal(0, 1, (num_freeze, 3)), -2, 2))
    offsets[k_c], gains[k_c] = 0.0, 1.0
    offsets, ambiguous_shift = _without_canonical_depth_ambiguity(offsets, freeze_poses, k_c,
                                                                  world.object_center(t_c))
    written_poses = _perturbed_poses(freeze_poses, k_c, pose_noise_degrees, pose_noise_translation, seed)

    intr = _intrinsics_json(K, width, height)
    frames = []
    for k, pose in enumerate(freeze_poses):
        name = f"images/freeze/frame_{k:05d}.png"
        if k == k_c:
            image = world.render(pose, K, width, height, t_c, supersample)
        else:
            image = world.render(pose, K, width, height, t_c, supersample, object_offset=offsets[k], gain=gains[k])
        _save_png(out / name, image)
        frames.append({"file_path": name, "transform_matrix": _matrix(written_poses[k]), "video": "freeze",
                       "time": t_c, "view": k})
    for j, t in enumerate(reference_times):
        name = f"images/reference/frame_{j:05d}.png"
        _save_png(out / name, world.render(reference_pose, K, width, height, float(t), supersample))
        frames.append({"file_path": name, "transform_matrix": _matrix(reference_pose), "video": "reference",
                       "time": float(t), "view": 0})

    # Seed points: random rays of the freeze cameras hit the true scene at t_c.
    per_camera = int(math.ceil(num_points / num_freeze))
    all_points, all_colours = [], []
    for pose in freeze_poses:
        px = rng.uniform(0, width, per_camera)
        py = rng.uniform(0, height, per_camera)
        dirs = np.stack([(px - K[0, 2]) / K[0, 0], -(py - K[1, 2]) / K[1, 1], -np.ones(per_camera)], axis=1)
        dirs = rows_times(dirs, pose[:3, :3].T)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        colour, points, _ = world.trace(np.broadcast_to(pose[:3, 3], dirs.shape).copy(), dirs, t_c)
        all_points.append(points)
        all_colours.append(colour)
    points = np.concatenate(all_points)[:num_points]
    colours = np.concatenate(all_colours)[:num_points]
    points = points + rng.normal(0.0, point_noise, points.shape)
    write_point_cloud_ply(out / "points3d.ply", points, np.clip(np.round(colours * 255), 0, 255).astype(np.uint8),
                          "fourreal demo-scene seed points")

    canonical = {"time": t_c, "freeze_frame": int(k_c), "reference_frame": int(j_c)}
    generation = {"prompt": PROMPT, "source": "fourreal demo-scene", "seed": int(seed)}
    demo_info = {
        "note": "true scene parameters and the inconsistencies injected into the freeze-time video",
        "generator_version": GENERATOR_VERSION,
        "orbit_radius": ORBIT_RADIUS, "orbit_height": ORBIT_HEIGHT, "arc_degrees": float(arc_degrees),
        "freeze_angles_degrees": [float(a) for a in angles], "supersample": int(supersample),
        "object_size": float(size), "object_center_at_canonical_time": [float(x) for x in world.object_center(t_c)],
        "freeze_object_offsets": [[float(x) for x in row] for row in offsets],
        "depth_ambiguous_shift_removed": float(ambiguous_shift),
        "freeze_colour_gains": [[float(x) for x in row] for row in gains],
        "freeze_pose_noise": {"degrees": float(pose_noise_degrees), "translation": float(pose_noise_translation)},
    }
    transforms = {**intr, "canonical": canonical, "ply_file_path": "points3d.ply", "generation": generation,
                  "demo_scene": demo_info, "frames": frames}
    (out / "transforms.json").write_text(json.dumps(transforms, indent=1))

    _write_ground_truth(out / "ground_truth", world, K, width, height, supersample, angles, reference_times,
                        intr, canonical, generation)
    return out


def _write_ground_truth(folder: Path, world: DemoWorld, K: np.ndarray, width: int, height: int, supersample: int,
                        angles: np.ndarray, reference_times: np.ndarray, intr: dict, canonical: dict,
                        generation: dict) -> None:
    """Held-out renders of the true scene: 8 "canonical" (t_c, new cameras) and 8 "dynamic" (new times)."""
    t_c = float(canonical["time"])
    step = float(angles[1] - angles[0])
    lo, hi = float(angles.min()), float(angles.max())
    # Canonical split: 4 on the orbit halfway between training cameras, 4 off it.
    between = [float(angles[int(round(f * (len(angles) - 2)))] + 0.5 * step) for f in (0.12, 0.37, 0.63, 0.88)]
    canonical_cameras = [orbit_camera(a) for a in between] + [
        orbit_camera(0.3 * lo, height=0.95),  # higher
        orbit_camera(0.35 * hi, height=0.8, radius=1.5),  # higher and farther
        orbit_camera(0.1 * hi, height=0.15, radius=1.0),  # lower and closer
        orbit_camera(0.6 * lo, height=0.55, radius=1.65),  # farther
    ]
    canonical_times = [t_c] * len(canonical_cameras)
    # Dynamic split: times halfway between reference frames; reference camera, near it, elsewhere on the orbit.
    n = len(reference_times)
    slots = np.unique(np.round(np.linspace(0, n - 2, 8)).astype(int))
    times = [float(0.5 * (reference_times[j] + reference_times[j + 1])) for j in slots]
    while len(times) < 8:  # tiny reference videos: other fractions
        times.append(float((len(times) + 0.5) / 8.5))
    dynamic_cameras = [
        orbit_camera(0.0),
        orbit_camera(0.0),
        orbit_camera(8.0, height=0.5),
        orbit_camera(-8.0, radius=1.25),
        orbit_camera(0.65 * lo + 0.5 * step),
        orbit_camera(0.3 * lo),
        orbit_camera(0.35 * hi + 0.5 * step),
        orbit_camera(0.7 * hi),
    ]
    # Interleave times so each camera kind sees early and late times.
    order = [0, 7, 3, 4, 1, 6, 2, 5]
    dynamic_times = [times[i] for i in order]

    frames = []
    for split, cameras, split_times in (("canonical", canonical_cameras, canonical_times),
                                        ("dynamic", dynamic_cameras, dynamic_times)):
        for index, (pose, t) in enumerate(zip(cameras, split_times)):
            name = f"images/{split}_{index:05d}.png"
            _save_png(folder / name, world.render(pose, K, width, height, t, supersample))
            frames.append({"file_path": name, "transform_matrix": _matrix(pose), "video": "ground_truth",
                           "split": split, "time": float(t), "view": len(frames)})
    transforms = {**intr, "canonical": canonical, "generation": generation, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(transforms, indent=1))


@dataclass
class DemoSceneConfig:
    """Write the procedural demo scene: a ball rolling in a textured toy room, rendered by an analytic ray caster
    (freeze-time video with injected inconsistencies, reference video, exact poses, seed points, ground truth)."""

    out: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="OUT")]
    """The scene folder to create (must be empty or absent unless --overwrite)."""
    seed: int = 0
    """Seed of textures, motion, inconsistencies and seed points."""
    width: int = 96
    """Image width in pixels (horizontal field of view 60 degrees)."""
    height: int = 54
    """Image height in pixels."""
    num_freeze: int = 32
    """Freeze-time frames along the arc."""
    num_reference: int = 24
    """Reference frames at times linspace(0, 1)."""
    supersample: int = 3
    """Rays per pixel along each axis (anti-aliasing)."""
    arc_degrees: float = 180.0
    """Extent of the freeze-time orbit."""
    object_jitter: float = 0.02
    """Per-frame jitter of the moving object in the freeze-time video (std per axis, fraction of its size)."""
    object_drift: float = 0.06
    """Smooth drift of the moving object along the orbit (fraction of its size at the ends of the arc)."""
    colour_wobble: float = 0.02
    """Per-frame colour gain wobble of the freeze-time video."""
    pose_noise_degrees: float = 0.0
    """Rotation error (std per axis, degrees) of the poses written for the freeze frames other than k_c; the images
    keep the true poses. Like an SfM result's error: what pose refinement corrects."""
    pose_noise_translation: float = 0.0
    """Translation error (std per axis, scene units; the orbit radius is 1.35) of those poses."""
    num_points: int = 3000
    """Seed points in points3d.ply."""
    overwrite: bool = False
    """Write into a non-empty folder (only the scene's own files are replaced)."""

    def main(self) -> None:
        started = _time.time()
        try:
            make_demo_scene(self.out, seed=self.seed, width=self.width, height=self.height,
                            num_freeze=self.num_freeze, num_reference=self.num_reference,
                            supersample=self.supersample, arc_degrees=self.arc_degrees,
                            object_jitter=self.object_jitter, object_drift=self.object_drift,
                            colour_wobble=self.colour_wobble, num_points=self.num_points,
                            pose_noise_degrees=self.pose_noise_degrees,
                            pose_noise_translation=self.pose_noise_translation, overwrite=self.overwrite)
        except FileExistsError as error:
            raise SystemExit(f"fourreal demo-scene: {error}") from None
        print(f"Wrote the demo scene (seed {self.seed}, {self.width}x{self.height}) to {self.out} "
              f"in {_time.time() - started:.1f} s")
