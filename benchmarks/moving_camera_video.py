"""A handheld-style video of a moving scene: SfM poses, then 4real-motion from scratch. Where does it break?

The input a phone gives: one video in which both the camera and the scene move. The demo world (its ball rolls
over the table) is rendered by its analytic ray caster along a camera arc of `--arc` degrees while time runs from 0
to 1, one frame per time step. Then, as a user would:

    fourreal process --reference FRAMES --no-static-reference --out SCENE     (every frame posed by SfM)
    ns-train 4real-motion --data SCENE   (short CPU motion schedule from scratch, D-NeRF's way)
    ns-eval                              (every 8th frame held out: a camera and a time between trained ones)

Prints JSON: frames posed, SfM seconds, the pose error against the true cameras after a similarity alignment of the
camera centres (degrees; fraction of the path's extent), training seconds, held-out PSNR, and the PSNR of the first
camera replayed at the held-out frames' times against the true scene there (a fixed view through time, which a
monocular video never shows: where such input breaks).

    python benchmarks/moving_camera_video.py [--frames 48] [--arc 60] [--steps 600] [--width 160]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def similarity(source: np.ndarray, target: np.ndarray):
    """(scale, R, t) minimising |scale R source + t - target|^2 over point pairs (Umeyama 1991)."""
    mean_source, mean_target = source.mean(0), target.mean(0)
    U, D, Vt = np.linalg.svd((target - mean_target).T @ (source - mean_source) / len(source))
    sign = np.diag([1.0, 1.0, -1.0 if np.linalg.det(U) * np.linalg.det(Vt) < 0 else 1.0])
    rotation = U @ sign @ Vt
    scale = np.trace(np.diag(D) @ sign) / ((source - mean_source) ** 2).sum(1).mean()
    return scale, rotation, mean_target - scale * rotation @ mean_source


def render_video(folder: Path, frames: int, arc: float, width: int, seed: int):
    from PIL import Image

    from fourreal_ns.demo_scene import intrinsics, orbit_camera, render_true

    height = int(round(width * 9 / 16))
    K = intrinsics(width, height)
    folder.mkdir(parents=True)
    poses, times = [], []
    for j in range(frames):
        pose, t = orbit_camera(-arc / 2 + arc * j / (frames - 1)), j / (frames - 1)
        Image.fromarray(render_true(pose, K, width, height, t, seed=seed)).save(folder / f"{j:05d}.png")
        poses.append(pose)
        times.append(t)
    return poses, times, K, width, height


def pose_errors(scene_folder: Path, true_poses):
    from fourreal_ns.data.scene import load_scene

    frames = load_scene(scene_folder).frames_of("reference")
    estimated = np.stack([frame.transform_matrix for frame in frames])
    true = np.stack([true_poses[int(Path(frame.file_path).stem)] for frame in frames])  # every frame kept: 00007.png
    scale, R, t = similarity(estimated[:, :3, 3], true[:, :3, 3])
    centres = (scale * (R @ estimated[:, :3, 3].T)).T + t
    extent = 2 * np.linalg.norm(true[:, :3, 3] - true[:, :3, 3].mean(0), axis=1).max()
    angles = [np.degrees(np.arccos(np.clip((np.trace((R @ e[:3, :3]).T @ g[:3, :3]) - 1) / 2, -1, 1)))
              for e, g in zip(estimated, true)]
    errors = {"frames_posed": len(frames), "rotation_error_degrees_max": round(float(max(angles)), 3),
              "centre_error_fraction_max": round(float(np.linalg.norm(centres - true[:, :3, 3], axis=1).max()
                                                       / extent), 4)}
    return errors, (scale, R, t)


def fixed_view_psnr(config: Path, true_poses, times, K, width, height, alignment, seed: int) -> float:
    """The first camera replayed at every 8th frame's time, against the true scene there."""
    import torch
    from nerfstudio.cameras.cameras import Cameras
    from nerfstudio.utils.eval_utils import eval_setup

    from fourreal_ns.demo_scene import render_true

    scale, R, t = alignment
    _, pipeline, _, _ = eval_setup(config, test_mode="inference")
    pose = np.array(true_poses[0], dtype=float)
    scene_pose = np.eye(4)  # the true camera in the scene's world: the alignment (scene -> true) inverted
    scene_pose[:3, :3] = R.T @ pose[:3, :3]
    scene_pose[:3, 3] = R.T @ (pose[:3, 3] - t) / scale
    values = []
    for j in range(7, len(times), 8):
        camera = Cameras(camera_to_worlds=torch.tensor(scene_pose[None, :3], dtype=torch.float32),
                         fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]),
                         width=width, height=height, times=torch.tensor([[times[j]]], dtype=torch.float32))
        with torch.no_grad():
            rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"].numpy()
        truth = render_true(pose, K, width, height, times[j], seed=seed).astype(np.float32) / 255.0
        values.append(float(-10 * np.log10(np.mean((rgb - truth) ** 2))))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--arc", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from fourreal_ns.method_configs import short_cpu_motion_schedule

    result = {"frames": args.frames, "arc_degrees": args.arc, "steps": args.steps, "width": args.width}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        poses, times, K, width, height = render_video(tmp / "video", args.frames, args.arc, args.width, args.seed)
        started = time.time()
        process = subprocess.run([str(BIN / "fourreal"), "process", "--reference", str(tmp / "video"),
                                  "--no-static-reference", "--out", str(tmp / "scene"), "--num-threads", "1"],
                                 capture_output=True, text=True)
        result["sfm_seconds"] = round(time.time() - started, 1)
        if process.returncode != 0:
            result["error"] = (process.stdout + process.stderr)[-2000:]
            print(json.dumps(result, indent=1))
            return
        errors, alignment = pose_errors(tmp / "scene", poses)
        result.update(errors)
        started = time.time()
        subprocess.run([str(BIN / "ns-train"), "4real-motion", "--data", str(tmp / "scene"), "--output-dir",
                        str(tmp / "runs"), "--experiment-name", "handheld", "--timestamp", "run", "--vis",
                        "tensorboard", "--viewer.quit-on-train-completion", "True", "--steps-per-save",
                        str(args.steps), *short_cpu_motion_schedule(args.steps, with_canonical=False),
                        "--pipeline.datamanager.dataparser.videos", "reference"],
                       check=True, capture_output=True)
        result["train_seconds"] = round(time.time() - started, 1)
        config = tmp / "runs" / "handheld" / "4real-motion" / "run" / "config.yml"
        subprocess.run([str(BIN / "ns-eval"), "--load-config", str(config), "--output-path", str(tmp / "eval.json")],
                       check=True, capture_output=True)
        result["held_out_psnr"] = round(json.loads((tmp / "eval.json").read_text())["results"]["psnr"], 2)
        result["fixed_first_view_psnr"] = round(fixed_view_psnr(config, poses, times, K, width, height, alignment,
                                                                args.seed), 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
