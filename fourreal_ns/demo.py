"""`fourreal demo`: the whole job on the bundled procedural scene, on the CPU, in a few minutes.

1. `fourreal demo-scene` writes the scene (freeze-time orbit with injected inconsistencies, reference video,
   poses, seed points, ground truth for evaluation);
2. `ns-train 4real-canonical` trains on it with the short CPU schedule (method_configs.short_cpu_schedule);
3. `ns-train 4real-motion` fits the motion from that run (method_configs.short_cpu_motion_schedule);
4. both are compared with ground-truth renders of the true scene at held-out cameras (and times);
5. `ns-render camera-path` renders an orbit at the canonical time and the paper's orbit-through-time video.
Finished steps are kept: running it again reuses the scene and the trained runs, once it has checked that the scene
is the one this run would write (its seed and generator version); a scene whose writing was interrupted is written
again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fourreal_ns.runs import CONSOLE, render_path, run_folder, train_stage

EXPERIMENT = "demo"


def scene_to_reuse(scene: Path, seed: int) -> bool:
    """Whether the demo scene in `scene` can be reused (True) or must be written (False: none there, or its writing
    was interrupted before the ground truth). Raises SystemExit, naming the folder and the fix, for a scene that is not
    the one `make_demo_scene(scene, seed)` writes now: another seed, or an older generator. Touches nothing on disk."""
    from fourreal_ns.data.json_reader import read_json_object
    from fourreal_ns.demo_scene import GENERATOR_VERSION

    transforms_path = scene / "transforms.json"
    if not transforms_path.exists():
        return False
    fix = (f"Pass another --output-dir, or move {scene.parent} away to start over (it holds this scene and the runs "
           "trained on it).")
    transforms = read_json_object(transforms_path, fix, error=SystemExit)
    generation, block = transforms.get("generation"), transforms.get("demo_scene")
    generation, block = (generation if isinstance(generation, dict) else {}), (block if isinstance(block, dict) else {})
    if generation.get("source") != "fourreal demo-scene":
        raise SystemExit(f"{transforms_path} is not a scene written by `fourreal demo-scene`. {fix}")
    if block.get("generator_version", 1) != GENERATOR_VERSION:
        raise SystemExit(f"{transforms_path} was written by another version of `fourreal demo-scene` (generator "
                         f"version {block.get('generator_version', 1)}, now {GENERATOR_VERSION}): its images differ "
                         f"from the scene this version writes, and its runs were trained on them. {fix}")
    if generation.get("seed") != seed:
        raise SystemExit(f"{transforms_path} is the demo scene of seed {generation.get('seed')}, and this run asks for "
                         f"--seed {seed}. {fix}")
    return (scene / "ground_truth" / "transforms.json").exists()


def render_orbit(config: Path, scene: Path, video: Path, num_frames: int = 60) -> Path:
    """An orbit along the freeze-time arc at the canonical time."""
    from fourreal_ns.camera_paths import bullet_time_path, scene_path_geometry
    from fourreal_ns.data.scene import load_scene

    return render_path(config, bullet_time_path(scene_path_geometry(load_scene(scene)), num_frames), video)


def render_orbit_through_time(config: Path, scene: Path, video: Path, num_frames: int = 96) -> Path:
    """The paper's evaluation video: along the orbit, stopping at four poses while time plays."""
    from fourreal_ns.camera_paths import orbit_through_time_path, scene_path_geometry
    from fourreal_ns.data.scene import load_scene

    return render_path(config, orbit_through_time_path(scene_path_geometry(load_scene(scene)), num_frames), video)


@dataclass
class Demo:
    """Build the demo scene, train 4real-canonical and then 4real-motion on it on the CPU (minutes), evaluate
    both against the true scene, and render an orbit video and the paper's orbit-through-time video."""

    output_dir: Path = Path("demo_output")
    """Where the scene, the training run and the video go."""
    seed: int = 0
    """Seed of the procedural scene."""
    retrain: bool = False
    """Train again even if a finished run is there."""

    def main(self) -> None:
        from fourreal_ns.demo_scene import make_demo_scene
        from fourreal_ns.evaluation import evaluate_ground_truth
        from fourreal_ns.method_configs import short_cpu_motion_schedule, short_cpu_schedule

        started = time.time()
        scene = self.output_dir / "scene"
        if scene_to_reuse(scene, self.seed):
            CONSOLE.print(f"Using the demo scene in {scene}")
        else:
            interrupted = (scene / "transforms.json").exists()  # this seed's: only the scene's own files are replaced
            try:
                make_demo_scene(scene, seed=self.seed, overwrite=interrupted)
            except FileExistsError as error:
                raise SystemExit(f"fourreal demo: {error}") from None
            CONSOLE.print(f"Wrote the demo scene to {scene}")

        runs = self.output_dir / "runs"
        canonical = run_folder(runs, "4real-canonical", EXPERIMENT) / "config.yml"
        if self.retrain or not (canonical.parent / "nerfstudio_models").exists():
            canonical = train_stage("4real-canonical", scene, runs, short_cpu_schedule(), experiment=EXPERIMENT)
        else:
            CONSOLE.print(f"Using the trained run {canonical.parent} (--retrain to train again)")
        motion = run_folder(runs, "4real-motion", EXPERIMENT) / "config.yml"
        if self.retrain or not (motion.parent / "nerfstudio_models").exists():
            motion = train_stage("4real-motion", scene, runs, [*short_cpu_motion_schedule(),
                                 "--pipeline.model.canonical-checkpoint", str(canonical.parent)], experiment=EXPERIMENT)
        else:
            CONSOLE.print(f"Using the trained run {motion.parent} (--retrain to train again)")

        metrics = {
            "canonical_stage_at_canonical_time": evaluate_ground_truth(canonical, scene, split="canonical"),
            "canonical_stage_at_heldout_times": evaluate_ground_truth(canonical, scene, split="dynamic"),
            "motion_stage_at_heldout_times": evaluate_ground_truth(motion, scene, split="dynamic"),
        }
        (self.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        orbit = render_orbit(canonical, scene, self.output_dir / "orbit_canonical.mp4")
        through_time = render_orbit_through_time(motion, scene, self.output_dir / "orbit_through_time.mp4")

        CONSOLE.rule("fourreal demo: done")
        CONSOLE.print(f"scene:             {scene}")
        CONSOLE.print(f"training runs:     {canonical.parent}\n                   {motion.parent}")
        CONSOLE.print("PSNR against the true scene at held-out cameras:")
        CONSOLE.print(f"  canonical Gaussians, canonical time:  {metrics['canonical_stage_at_canonical_time']['psnr']:.2f} dB")
        CONSOLE.print(f"  canonical Gaussians, held-out times:  {metrics['canonical_stage_at_heldout_times']['psnr']:.2f} dB")
        CONSOLE.print(f"  4D result,           held-out times:  {metrics['motion_stage_at_heldout_times']['psnr']:.2f} dB")
        CONSOLE.print(f"videos:            {orbit}\n                   {through_time}")
        CONSOLE.print(f"look around:       ns-viewer --load-config {motion}   (time slider in the control panel)")
        CONSOLE.print(f"took {time.time() - started:.0f} s")
