"""`fourreal demo`: the whole job on the bundled procedural scene, on the CPU, in a few minutes.

1. `fourreal demo-scene` writes the scene (freeze-time orbit with injected inconsistencies, reference video,
   poses, seed points, ground truth for evaluation);
2. `ns-train 4real-canonical` trains on it with the short CPU schedule (method_configs.short_cpu_schedule);
3. the canonical Gaussians are compared with ground-truth renders of the true scene at held-out cameras;
4. `ns-render camera-path` renders an orbit video.
Finished steps are kept: running it again reuses the scene and the trained run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

from rich.console import Console

CONSOLE = Console()


def ns_command(name: str) -> str:
    """A nerfstudio console script of this Python environment (`ns-train`, `ns-render`, ...)."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"`{name}` was not found: install nerfstudio==1.1.5 in this environment.")
    return found


def run_command(command: List[str]) -> None:
    CONSOLE.print(f"[bold]$ {' '.join(command)}")
    subprocess.run(command, check=True)


def train_canonical(scene: Path, output_dir: Path, extra_args: List[str]) -> Path:
    """`ns-train 4real-canonical` on `scene` into output_dir/demo/4real-canonical/canonical; returns config.yml."""
    from fourreal_ns.method_configs import short_cpu_schedule

    config = output_dir / "demo" / "4real-canonical" / "canonical" / "config.yml"
    command = [
        ns_command("ns-train"), "4real-canonical", "--data", str(scene), "--output-dir", str(output_dir),
        "--experiment-name", "demo", "--timestamp", "canonical", "--vis", "tensorboard",
        "--viewer.quit-on-train-completion", "True", *short_cpu_schedule(), *extra_args,
    ]  # fmt: skip
    run_command(command)
    return config


def render_orbit(config: Path, scene: Path, video: Path, num_frames: int = 60) -> Path:
    """An orbit along the freeze-time arc at the canonical time, rendered by `ns-render camera-path`."""
    import numpy as np

    from fourreal_ns.camera_paths import camera_path_json, orbit_through_poses, vertical_fov_degrees, write_camera_path
    from fourreal_ns.data.scene import load_scene

    loaded = load_scene(scene)
    freeze = sorted((f for f in loaded.frames if f.video == "freeze"), key=lambda f: f.view)
    poses = orbit_through_poses([np.asarray(f.transform_matrix) for f in freeze], num_frames)
    width, height, focal_y = freeze[0].width, freeze[0].height, freeze[0].fl_y
    path = camera_path_json(poses, width, height, vertical_fov_degrees(focal_y, height), seconds=num_frames / 24)
    path_file = write_camera_path(video.with_suffix(".json"), path)
    run_command([
        ns_command("ns-render"), "camera-path", "--load-config", str(config),
        "--camera-path-filename", str(path_file), "--output-path", str(video),
    ])  # fmt: skip
    return video


@dataclass
class Demo:
    """Build the demo scene, train 4real-canonical on it on the CPU (a few minutes), evaluate the canonical
    Gaussians against the true scene, and render an orbit video."""

    output_dir: Path = Path("demo_output")
    """Where the scene, the training run and the video go."""
    seed: int = 0
    """Seed of the procedural scene."""
    retrain: bool = False
    """Train again even if a finished run is there."""

    def main(self) -> None:
        from fourreal_ns.demo_scene import make_demo_scene
        from fourreal_ns.evaluation import evaluate_ground_truth

        started = time.time()
        scene = self.output_dir / "scene"
        if (scene / "transforms.json").exists():
            CONSOLE.print(f"Using the demo scene in {scene}")
        else:
            make_demo_scene(scene, seed=self.seed)
            CONSOLE.print(f"Wrote the demo scene to {scene}")

        runs = self.output_dir / "runs"
        config = runs / "demo" / "4real-canonical" / "canonical" / "config.yml"
        if self.retrain or not (config.parent / "nerfstudio_models").exists():
            config = train_canonical(scene, runs, [])
        else:
            CONSOLE.print(f"Using the trained run {config.parent} (--retrain to train again)")

        metrics = evaluate_ground_truth(config, scene, split="canonical")
        (self.output_dir / "canonical_metrics.json").write_text(json.dumps(metrics, indent=1))
        video = render_orbit(config, scene, self.output_dir / "orbit_canonical.mp4")

        CONSOLE.rule("fourreal demo: done")
        CONSOLE.print(f"scene:            {scene}")
        CONSOLE.print(f"training run:     {config.parent}")
        CONSOLE.print(f"canonical PSNR vs the true scene at held-out cameras: {metrics['psnr']:.2f} dB")
        CONSOLE.print(f"orbit video:      {video}")
        CONSOLE.print(f"look around:      ns-viewer --load-config {config}")
        CONSOLE.print(f"took {time.time() - started:.0f} s")
