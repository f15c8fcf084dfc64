"""Camera paths in the JSON format of `ns-render camera-path`, and the three 4D paths of `fourreal camera-path`.

The file (`camera_path_json`) is what nerfstudio 1.1.5's `get_path_from_json` (nerfstudio/cameras/camera_paths.py)
reads: `render_width`, `render_height`, `camera_type`, `seconds` and a `camera_path` list with one entry per
rendered frame (ns-render does not interpolate between entries; the video runs at len(camera_path) / seconds fps).
Each entry has
- `camera_to_world`: a flattened 4 x 4 OpenGL camera-to-world in the model's space, used as given. Our dataparser
  applies no transform beyond `scale_factor` (positions are multiplied by it), so model space = scene space x scale;
- `fov`: the vertical field of view in degrees (ns-render: fx = fy = H / 2 / tan(fov / 2), principal point at the
  image centre; `aspect` is written for the viewer but ns-render ignores it: the frame is render_width x height);
- `render_time`: the scene time in [0, 1]. ns-render builds `Cameras(times=...)` only when every entry has one
  (otherwise times are None and our models render the canonical time), and the model reads `camera.times`.

The paths (`fourreal camera-path {bullet-time, fixed-view, orbit-through-time} --load-config CFG --output PATH`):
- bullet-time: the camera sweeps the freeze-time arc at one fixed time (default: the canonical time t_c). Without
  a freeze-time video (an imported D-NeRF scene) it circles once around the point all cameras look at;
- fixed-view: the reference camera (the canonical reference frame's camera; for a D-NeRF scene the first train
  frame) while time plays 0 -> 1;
- orbit-through-time: the 4Real paper's evaluation video (section 4, user study: "the camera moving along a circular
  trajectory and stopping at four fixed poses to highlight object motions"): along the same arc or circle the
  camera moves, stops, plays time 0 -> 1 at that pose, moves on, four times. While it moves time is held at
  `--time` (default t_c), so each move is a short bullet-time shot; time jumps from 1 back to it when the camera
  leaves a stop. On a full circle the first stop is the start (the reference camera's side) and the path ends where
  it began; on an arc the stops sit at the middles of four equal parts and the path runs from one end to the other.
  Moves ease in and out (cosine) and take frames in proportion to their length.

Orbits: the circle through the cameras' mean distance and height around `target` (least-squares point nearest to
every optical axis), in the plane perpendicular to `up`: the cameras' mean up vector, snapped to the nearest world
axis when within 25 degrees (the demo scene is +y up, Blender/D-NeRF scenes +z up).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fourreal_ns.geometry import Y_UP, look_at

SNAP_UP_DEGREES = 25.0


# --------------------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------------------


def closest_point_to_axes(poses: Sequence[np.ndarray]) -> np.ndarray:
    """The point nearest, in least squares, to every camera's optical axis: what an orbit looks at."""
    lhs, rhs = np.zeros((3, 3)), np.zeros(3)
    for pose in poses:
        direction = -pose[:3, 2] / np.linalg.norm(pose[:3, 2])
        projector = np.eye(3) - np.outer(direction, direction)
        lhs += projector
        rhs += projector @ pose[:3, 3]
    return np.linalg.lstsq(lhs, rhs, rcond=None)[0]


def scene_up(poses: Sequence[np.ndarray], snap_degrees: float = SNAP_UP_DEGREES) -> np.ndarray:
    """The scene's up direction: the cameras' mean up (+y of each OpenGL camera), snapped to the nearest world axis
    when within `snap_degrees` of it."""
    mean = np.sum([np.asarray(pose)[:3, 1] for pose in poses], axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-8:
        return Y_UP.copy()
    mean = mean / norm
    axis = int(np.argmax(np.abs(mean)))
    snapped = np.zeros(3)
    snapped[axis] = math.copysign(1.0, mean[axis])
    if math.degrees(math.acos(min(1.0, abs(float(mean[axis]))))) <= snap_degrees:
        return snapped
    return mean


def _plane_axes(up: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (a, b) spanning the plane perpendicular to `up`, with angle 0 along b and a = up x b
    (for +y up: a = +x, b = +z, so angles are atan2(x, z))."""
    reference = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    b = reference - np.dot(reference, up) * up
    b = b / np.linalg.norm(b)
    return np.cross(up, b), b


@dataclass
class Orbit:
    """A circle of cameras looking at `target`: `radius` from the `up` axis through it, `height` above it."""

    target: np.ndarray
    up: np.ndarray
    radius: float
    height: float
    start: float
    """Angle (radians) of the path's start."""
    sweep: float
    """Signed angle from start to end."""

    @property
    def closed(self) -> bool:
        return abs(abs(self.sweep) - 2.0 * math.pi) < 1e-9

    @classmethod
    def through(cls, poses: Sequence[np.ndarray], target: Optional[np.ndarray] = None,
                up: np.ndarray = Y_UP) -> "Orbit":
        """The arc of `poses` (ordered along it): mean radius and height around `target` (default: the point the
        cameras look at) from the first camera's angle to the last's."""
        up = np.asarray(up, dtype=float) / np.linalg.norm(up)
        if target is None:
            target = closest_point_to_axes(poses)
        angles, radii, heights = _cylindrical([p[:3, 3] for p in poses], target, up)
        angles = np.unwrap(angles)
        return cls(target=np.asarray(target, float), up=up, radius=float(np.mean(radii)),
                   height=float(np.mean(heights)), start=float(angles[0]), sweep=float(angles[-1] - angles[0]))

    @classmethod
    def circle_around(cls, poses: Sequence[np.ndarray], start_pose: np.ndarray, up: np.ndarray) -> "Orbit":
        """A full turn around the point `poses` look at, at their mean radius and height, starting at the angle of
        `start_pose`."""
        orbit = cls.through(poses, up=up)
        angles, _, _ = _cylindrical([start_pose[:3, 3]], orbit.target, orbit.up)
        orbit.start, orbit.sweep = float(angles[0]), 2.0 * math.pi
        return orbit

    def pose(self, fraction: float) -> np.ndarray:
        """The camera at `fraction` (0: start, 1: end) of the sweep."""
        a, b = _plane_axes(self.up)
        angle = self.start + self.sweep * float(fraction)
        position = self.target + self.radius * (math.sin(angle) * a + math.cos(angle) * b) + self.height * self.up
        return look_at(position, self.target, self.up)

    def fractions(self, num_frames: int) -> np.ndarray:
        """`num_frames` evenly spaced fractions; a closed circle does not repeat its start at the end."""
        if self.closed:
            return np.arange(num_frames) / num_frames
        return np.linspace(0.0, 1.0, num_frames)


def _cylindrical(positions: Sequence[np.ndarray], target: np.ndarray, up: np.ndarray):
    a, b = _plane_axes(up)
    offsets = np.stack(positions) - target
    along_a, along_b, heights = offsets @ a, offsets @ b, offsets @ up
    return np.arctan2(along_a, along_b), np.hypot(along_a, along_b), heights


def orbit_through_poses(poses: Sequence[np.ndarray], num_frames: int, target: Optional[np.ndarray] = None,
                        up: np.ndarray = Y_UP) -> list:
    """`num_frames` cameras sweeping the arc of `poses` (ordered along the orbit): positions on the circle through
    their mean radius and height around `target` (default: the point the cameras look at, least squares)."""
    orbit = Orbit.through(poses, target=target, up=up)
    return [orbit.pose(fraction) for fraction in np.linspace(0.0, 1.0, num_frames)]


# --------------------------------------------------------------------------------------------------------------
# The JSON file
# --------------------------------------------------------------------------------------------------------------


def camera_path_json(
    poses: Sequence[np.ndarray],
    width: int,
    height: int,
    vertical_fov_degrees: float,
    seconds: float,
    times: Optional[Sequence[float]] = None,
) -> dict:
    """The dictionary `ns-render camera-path --camera-path-filename` reads (module docstring)."""
    keyframes = []
    for index, pose in enumerate(poses):
        keyframe = {"camera_to_world": np.asarray(pose, dtype=float).reshape(-1).tolist(), "fov": vertical_fov_degrees,
                    "aspect": width / height}
        if times is not None:
            keyframe["render_time"] = float(times[index])
        keyframes.append(keyframe)
    return {
        "camera_type": "perspective",
        "render_width": width,
        "render_height": height,
        "seconds": seconds,
        "camera_path": keyframes,
    }


def write_camera_path(path: Path, camera_path: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(camera_path, indent=1))
    return path


def vertical_fov_degrees(focal_y: float, height: int) -> float:
    return math.degrees(2.0 * math.atan(height / (2.0 * focal_y)))


# --------------------------------------------------------------------------------------------------------------
# The three 4D paths of a scene
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ScenePathGeometry:
    """What the paths need from a scene, in the model's space (positions x scale_factor)."""

    orbit: Orbit
    """The freeze-time arc, or a full circle around the look-at point when the scene has no freeze-time video."""
    reference_pose: np.ndarray
    """The canonical reference frame's camera (freeze view k_c without a reference video)."""
    canonical_time: float
    width: int
    height: int
    fov_degrees: float


def reference_frame(scene):
    """The scene's reference camera frame: the canonical reference frame j_c (time order among reference frames);
    without a reference video the canonical freeze frame k_c; else the first frame."""
    references = scene.frames_of("reference")
    if references:
        return references[min(int(scene.canonical["reference_frame"]), len(references) - 1)]
    freeze = [frame for frame in scene.frames_of("freeze") if frame.view == scene.canonical["freeze_frame"]]
    return freeze[0] if freeze else scene.frames[0]


def scene_path_geometry(scene, scale_factor: float = 1.0) -> ScenePathGeometry:
    """Orbit, reference camera, canonical time and image size of a loaded scene (`fourreal_ns.data.scene`)."""

    def scaled(pose: np.ndarray) -> np.ndarray:
        pose = np.array(pose, dtype=float)
        pose[:3, 3] *= scale_factor
        return pose

    reference = reference_frame(scene)
    reference_pose = scaled(reference.transform_matrix)
    freeze = scene.frames_of("freeze")
    all_poses = [scaled(frame.transform_matrix) for frame in scene.frames]
    up = scene_up(all_poses)
    if len(freeze) >= 2:
        orbit = Orbit.through([scaled(frame.transform_matrix) for frame in freeze], up=up)
    else:
        orbit = Orbit.circle_around(all_poses, reference_pose, up=up)
    return ScenePathGeometry(orbit=orbit, reference_pose=reference_pose, canonical_time=float(scene.canonical["time"]),
                             width=reference.width, height=reference.height,
                             fov_degrees=vertical_fov_degrees(reference.fl_y, reference.height))


def _check(num_frames: int, time: Optional[float], minimum: int = 2) -> None:
    if num_frames < minimum:
        raise ValueError(f"--num-frames {num_frames}: this path needs at least {minimum} frames.")
    if time is not None and not 0.0 <= time <= 1.0:
        raise ValueError(f"--time {time}: scene times are in [0, 1].")


def _json(geometry: ScenePathGeometry, poses: List[np.ndarray], times: Sequence[float],
          seconds: Optional[float], fps: float) -> dict:
    seconds = len(poses) / fps if seconds is None else float(seconds)
    if seconds <= 0:
        raise ValueError(f"--seconds {seconds}: the video length must be positive.")
    return camera_path_json(poses, geometry.width, geometry.height, geometry.fov_degrees, seconds, times)


def bullet_time_path(geometry: ScenePathGeometry, num_frames: int = 120, time: Optional[float] = None,
                     seconds: Optional[float] = None, fps: float = 24.0) -> dict:
    """The camera sweeps the orbit at one time (default the canonical time)."""
    _check(num_frames, time)
    time = geometry.canonical_time if time is None else float(time)
    poses = [geometry.orbit.pose(fraction) for fraction in geometry.orbit.fractions(num_frames)]
    return _json(geometry, poses, [time] * num_frames, seconds, fps)


def fixed_view_path(geometry: ScenePathGeometry, num_frames: int = 96, seconds: Optional[float] = None,
                    fps: float = 24.0) -> dict:
    """The reference camera while time plays 0 -> 1."""
    _check(num_frames, None)
    poses = [geometry.reference_pose.copy() for _ in range(num_frames)]
    return _json(geometry, poses, np.linspace(0.0, 1.0, num_frames), seconds, fps)


def _split_frames(total: int, weights: Sequence[float]) -> List[int]:
    """`total` frames shared in proportion to `weights` (largest remainders)."""
    weights = np.asarray(weights, dtype=float)
    if total <= 0 or weights.sum() <= 0:
        return [0] * len(weights)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts))[: total - counts.sum()]:
        counts[index] += 1
    return counts.tolist()


def orbit_through_time_path(geometry: ScenePathGeometry, num_frames: int = 240, time: Optional[float] = None,
                            seconds: Optional[float] = None, fps: float = 24.0, num_stops: int = 4,
                            stop_fraction: float = 0.5) -> dict:
    """Move along the orbit, stop and play time 0 -> 1, move on (module docstring). `stop_fraction` of the frames
    are spent at the stops; moves are held at `time` (default the canonical time)."""
    _check(num_frames, time, minimum=4 * num_stops)
    if num_stops < 1:
        raise ValueError(f"--num-stops {num_stops}: at least one stop.")
    if not 0.0 < stop_fraction < 1.0:
        raise ValueError(f"--stop-fraction {stop_fraction}: a fraction strictly between 0 and 1.")
    time = geometry.canonical_time if time is None else float(time)
    orbit = geometry.orbit
    if orbit.closed:
        stops = [index / num_stops for index in range(num_stops)]
    else:
        stops = [(index + 0.5) / num_stops for index in range(num_stops)]
    frames_per_stop = max(2, int(round(num_frames * stop_fraction / num_stops)))
    waypoints = [0.0, *stops, 1.0]
    lengths = [waypoints[i + 1] - waypoints[i] for i in range(len(waypoints) - 1)]
    move_frames = _split_frames(num_frames - frames_per_stop * num_stops, lengths)

    poses: List[np.ndarray] = []
    times: List[float] = []
    for segment, (begin, end) in enumerate(zip(waypoints[:-1], waypoints[1:])):
        count = move_frames[segment]
        for step in range(1, count + 1):  # endpoints excluded: they are stops (or the path's ends)
            eased = 0.5 - 0.5 * math.cos(math.pi * step / (count + 1))
            poses.append(orbit.pose(begin + (end - begin) * eased))
            times.append(time)
        if segment < num_stops:
            stop_pose = orbit.pose(stops[segment])
            poses.extend(stop_pose.copy() for _ in range(frames_per_stop))
            times.extend(np.linspace(0.0, 1.0, frames_per_stop).tolist())
    return _json(geometry, poses, times, seconds, fps)


# --------------------------------------------------------------------------------------------------------------
# `fourreal camera-path ...`
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _CameraPathCommand:
    load_config: Path
    """The training run's config.yml: its scene folder gives the cameras (the model is not loaded)."""
    output: Path = Path("camera_path.json")
    """Where to write the camera path (render it with `ns-render camera-path --camera-path-filename OUTPUT`)."""
    num_frames: int = 120
    """Frames of the video (one camera-path entry each)."""
    seconds: Optional[float] = None
    """Length of the video (default: num_frames / 24)."""
    data: Optional[Path] = None
    """The scene folder, if not where the config says (its relative paths are read from the current directory)."""

    def _geometry(self) -> ScenePathGeometry:
        from fourreal_ns.data.scene import load_scene
        from fourreal_ns.run_config import scene_of_run

        run = scene_of_run(self.load_config, data=self.data)
        return scene_path_geometry(load_scene(run.folder, check_images=False), run.scale_factor)

    def _build(self, geometry: ScenePathGeometry) -> dict:
        raise NotImplementedError

    def main(self) -> None:
        from fourreal_ns.data.scene import SceneFormatError
        from fourreal_ns.run_config import RunConfigError

        name = type(self).__name__
        try:
            camera_path = self._build(self._geometry())
        except (RunConfigError, SceneFormatError, ValueError) as error:
            raise SystemExit(f"fourreal camera-path: {error}") from None
        write_camera_path(self.output, camera_path)
        entries = camera_path["camera_path"]
        print(f"Wrote {len(entries)} cameras ({camera_path['seconds']:.1f} s, {name}) to {self.output}. Render with\n"
              f"  ns-render camera-path --load-config {self.load_config} --camera-path-filename {self.output} "
              f"--output-path renders/{self.output.stem}.mp4")


@dataclass
class BulletTime(_CameraPathCommand):
    """Bullet time: the camera sweeps the freeze-time arc (or circles the scene when there is no freeze-time video)
    with time frozen at --time (default: the canonical time)."""

    time: Optional[float] = None
    """Scene time in [0, 1] (default: the scene's canonical time)."""

    def _build(self, geometry: ScenePathGeometry) -> dict:
        return bullet_time_path(geometry, self.num_frames, self.time, self.seconds)


@dataclass
class FixedView(_CameraPathCommand):
    """Fixed view: the reference camera (the canonical reference frame's) while time plays from 0 to 1."""

    num_frames: int = 96
    """Frames of the video (one camera-path entry each)."""

    def _build(self, geometry: ScenePathGeometry) -> dict:
        return fixed_view_path(geometry, self.num_frames, self.seconds)


@dataclass
class OrbitThroughTime(_CameraPathCommand):
    """The 4Real evaluation video: the camera moves along the orbit and stops at four poses; at each stop time plays
    from 0 to 1, while moving time is held at --time (default: the canonical time)."""

    num_frames: int = 240
    """Frames of the video (one camera-path entry each)."""
    time: Optional[float] = None
    """Scene time while the camera moves (default: the scene's canonical time)."""
    num_stops: int = 4
    """Poses at which the camera stops while time plays."""
    stop_fraction: float = 0.5
    """Share of the frames spent at the stops."""

    def _build(self, geometry: ScenePathGeometry) -> dict:
        return orbit_through_time_path(geometry, self.num_frames, self.time, self.seconds,
                                       num_stops=self.num_stops, stop_fraction=self.stop_fraction)
