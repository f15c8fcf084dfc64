"""`fourreal run --prompt TEXT --out DIR`: text in, 4D scene and video out, every step of the paper in order.

1. `fourreal generate` (paper 3.2): reference + freeze-time videos into DIR/scene;
2. poses: `fourreal process` (pycolmap SfM, `--poses sfm`, default) or the nominal trajectory the generator was
   asked for (`--poses nominal`, `fourreal_ns.generate.nominal_poses`), giving DIR/scene/transforms.json;
3. `ns-train 4real-canonical` (paper 3.3) into DIR/runs/fourreal/4real-canonical/run;
4. `ns-train 4real-motion --pipeline.model.canonical-checkpoint ...` (paper 3.4) into .../4real-motion/run;
5. held-out metrics: `ns-eval` of the final run on the scene's held-out frames (every 8th frame of each video, the
   dataparser's `eval_every`) into DIR/metrics.json;
6. the paper's orbit-through-time video: `fourreal camera-path orbit-through-time` + `ns-render camera-path` into
   DIR/orbit_through_time.mp4.
Each step is skipped when its output exists (the generation resumes part by part), so running the command again
after an interruption continues where it stopped. One rich progress view shows a row per step; the output of the
nerfstudio commands goes to DIR/logs/STEP.log (its tail is shown when a step fails). DIR/run_status.json records
each step's status and seconds as it goes (what `fourreal batch` shows and reports).

Your own footage instead of a prompt: `fourreal run --freeze VIDEO [VIDEO ...] --out DIR` poses the freeze-time or
orbit video(s) (`fourreal process --freeze`, with `--num-frames` / `--max-size`), trains `4real-canonical` on the
static scene, skips the motion stage (nothing moves) and renders an orbit video, DIR/orbit.mp4.

Training schedules: `--schedule paper` (the method defaults, with the SDS guidance using the generation's video
model), `--schedule small` (the `4real-canonical-small` / `4real-motion-small` presets: small scenes in minutes on a
CPU, SDS on CUDA only) or `--schedule short-cpu` (method_configs.short_cpu_schedule / short_cpu_motion_schedule,
the tests' schedule, no SDS), with `--steps` / `--motion-steps`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Literal, Optional, Tuple

import tyro
from rich.console import Console
from rich.progress import ProgressColumn
from rich.text import Text
from typing_extensions import Annotated

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.generate.command import GenerationOptions
from fourreal_ns.runs import (
    StepFailed,
    evaluate_run,
    is_trained,
    method_name,
    render_path,
    run_folder,
    schedule_arguments,
    train_stage,
)

CONSOLE = Console()
STEPS = ("generate", "poses", "canonical", "motion", "metrics", "video")
STATUS_FILE = "run_status.json"


class StatusColumn(ProgressColumn):
    """A row's `status` field (waiting, running, done, kept); empty for rows without one."""

    def render(self, task) -> Text:
        return Text(str(task.fields.get("status", "")))


@dataclass
class RunAll:
    """Text to 4D scene: generate the videos, pose them, train the canonical and motion stages and render the
    orbit-through-time video (4Real, sections 3.2-3.4). Finished steps are kept: run again to continue."""

    prompt: Optional[str] = None
    """What the scene shows, e.g. 'a panda playing guitar in a kitchen' (or give --freeze)."""
    out: Path = Path("fourreal_run")
    """Folder for everything: scene/, runs/, logs/, metrics.json, run_status.json, orbit_through_time.mp4 (orbit.mp4
    for --freeze)."""
    freeze: Tuple[Path, ...] = ()
    """Your own freeze-time or orbit video(s) (files or frame folders) instead of a prompt: a static scene, trained by
    the canonical stage and shown by an orbit video."""
    num_frames: Optional[int] = None
    """--freeze: frames taken from each video, evenly spread (`fourreal process --num-frames`; default all)."""
    max_size: Optional[int] = None
    """--freeze: longer image side in pixels after extraction (`fourreal process --max-size`; default as is)."""
    poses: Literal["sfm", "nominal"] = "sfm"
    """Camera poses: sfm (`fourreal process`, pycolmap) or nominal (the trajectory the generator was asked for)."""
    schedule: Literal["paper", "small", "short-cpu"] = "paper"
    """Training schedule: paper (method defaults, with video SDS), small (the 4real-*-small presets for small scenes:
    minutes on a CPU) or short-cpu (the tests' schedule, no SDS)."""
    steps: Optional[int] = None
    """Canonical-stage iterations of the short-cpu schedule (default 600)."""
    motion_steps: Optional[int] = None
    """Motion-stage iterations of the short-cpu schedule (default 600)."""
    render_frames: int = 240
    """Frames of the orbit-through-time video."""
    nominal_fov_degrees: float = 60.0
    """Horizontal field of view assumed by --poses nominal."""
    generation: Annotated[GenerationOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=GenerationOptions)
    """Generation settings (as `fourreal generate`)."""

    @property
    def scene(self) -> Path:
        return self.out / "scene"

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def static(self) -> bool:
        """Your own freeze-time video: nothing moves, no motion stage."""
        return bool(self.freeze)

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def video(self) -> Path:
        return self.out / ("orbit.mp4" if self.static else "orbit_through_time.mp4")

    def run_of(self, stage: str) -> Path:
        return run_folder(self.runs, method_name(self.schedule, stage))

    @property
    def final_run(self) -> Path:
        return self.run_of("canonical" if self.static else "motion")

    def _guidance_arguments(self) -> List[str]:
        """The SDS of the paper schedule (and of the small presets, on CUDA) uses the video model that generated the
        scene."""
        if self.schedule == "short-cpu":
            return []
        arguments = ["--pipeline.guidance.backend", self.generation.backend]
        if self.generation.model_id:
            arguments += ["--pipeline.guidance.model-id", self.generation.model_id]
        return arguments

    def check_options(self) -> None:
        """The options' consistency, before anything runs (ValueError naming the fix); `fourreal batch` checks each
        item with it before it starts."""
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; give a folder.")
        if (self.prompt is None) == (not self.freeze):
            raise ValueError("give either --prompt TEXT (generate the videos) or --freeze VIDEO [VIDEO ...] (your own "
                             "freeze-time or orbit video), not " + ("both." if self.prompt is not None else "neither."))
        schedule_arguments(self.schedule, "canonical", self.steps)
        schedule_arguments(self.schedule, "motion", self.motion_steps)

    def main(self) -> None:
        from fourreal_ns.generate.command import GenerateError
        from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError

        try:
            self.check_options()
            self.run()
        except (GenerateError, StepFailed, ValueError, FileNotFoundError) as error:
            raise SystemExit(f"fourreal run: {error}") from None
        except GuidanceWeightsNotFoundError as error:
            from fourreal_ns.generate.command import weights_message

            raise SystemExit(weights_message(error.model_id, error.backend, error.reason)) from None

    def run(self) -> Path:
        """All steps; returns the video."""
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        started = time.time()
        self.out.mkdir(parents=True, exist_ok=True)
        # Rows: one per step, plus the generation's own rows (reference video, freeze-time video) while it runs.
        progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<10}"), BarColumn(),
                            StatusColumn(), TimeElapsedColumn(), console=CONSOLE)
        rows = {name: progress.add_task(name, total=1, status="waiting", start=False) for name in STEPS}
        actions: List[Callable[[], str]] = [self._generate(progress), self._poses(progress), self._canonical,
                                            self._motion, self._metrics, self._video]
        record = {"steps": {name: {"status": "waiting"} for name in STEPS}, "current": None, "finished": False}
        with progress:
            for name, action in zip(STEPS, actions):
                progress.start_task(rows[name])
                progress.update(rows[name], status="running")
                record["current"] = name
                record["steps"][name] = {"status": "running"}
                write_json_atomic(self.out / STATUS_FILE, record)
                step_started = time.time()
                status = action()
                record["steps"][name] = {"status": status, "seconds": round(time.time() - step_started, 2)}
                progress.update(rows[name], completed=1, status=status)
                progress.stop_task(rows[name])
        record.update(current=None, finished=True)
        write_json_atomic(self.out / STATUS_FILE, record)
        CONSOLE.rule("fourreal run: done")
        CONSOLE.print(f"scene:   {self.scene}")
        CONSOLE.print(f"runs:    {self.run_of('canonical')}" + ("" if self.static else f"\n         "
                                                                    f"{self.run_of('motion')}"))
        CONSOLE.print(f"video:   {self.video}")
        results = json.loads(self.metrics.read_text()).get("results", {})
        CONSOLE.print("held-out: " + ", ".join(f"{key} {value:.3f}" for key, value in sorted(results.items())
                                                if key in ("psnr", "ssim", "lpips")))
        CONSOLE.print(f"look around: ns-viewer --load-config {self.final_run / 'config.yml'}")
        CONSOLE.print(f"took {time.time() - started:.0f} s")
        return self.video

    # ------------------------------------------------------------------ steps (each returns its status)
    def _generate(self, progress) -> Callable[[], str]:
        def step() -> str:
            from fourreal_ns.generate.command import generate_scene
            from fourreal_ns.generate.parts import GenerationRecord

            if self.static:
                return "skipped (your video)"
            record = GenerationRecord.read(self.scene)
            complete = record is not None and record.is_done("freeze")
            generate_scene(self.prompt, self.scene, self.generation, progress=progress)
            return "kept" if complete else "done"

        return step

    def _poses(self, progress) -> Callable[[], str]:
        def step() -> str:
            if (self.scene / "transforms.json").is_file():
                return "kept"
            if self.poses == "nominal":
                from fourreal_ns.generate.nominal_poses import write_nominal_transforms

                write_nominal_transforms(self.scene, fov_degrees=self.nominal_fov_degrees,
                                         seed=self.generation.seed)
                return "done (nominal poses)"
            from fourreal_ns.process.command import Process

            progress.stop()  # `fourreal process` shows its own progress
            try:
                if self.static:
                    Process(freeze=[tuple(self.freeze)], out=self.scene, num_frames=self.num_frames,
                            max_size=self.max_size).main()
                else:
                    Process(scene=self.scene).main()
            finally:
                progress.start()
            return "done (SfM)"

        return step

    def _canonical(self) -> str:
        if is_trained(self.run_of("canonical")):
            return "kept"
        arguments = schedule_arguments(self.schedule, "canonical", self.steps) + self._guidance_arguments()
        train_stage(method_name(self.schedule, "canonical"), self.scene, self.runs, arguments,
                    self.out / "logs" / "canonical.log")
        return "done"

    def _motion(self) -> str:
        if self.static:
            return "skipped (static scene)"
        if is_trained(self.run_of("motion")):
            return "kept"
        arguments = (schedule_arguments(self.schedule, "motion", self.motion_steps) + self._guidance_arguments()
                     + ["--pipeline.model.canonical-checkpoint", str(self.run_of("canonical"))])
        train_stage(method_name(self.schedule, "motion"), self.scene, self.runs, arguments,
                    self.out / "logs" / "motion.log")
        return "done"

    def _metrics(self) -> str:
        if self.metrics.is_file():
            return "kept"
        results = evaluate_run(self.final_run / "config.yml", self.metrics, self.out / "logs" / "metrics.log")
        return f"PSNR {results['psnr']:.2f} dB"

    def _video(self) -> str:
        if self.video.is_file():
            return "kept"
        from fourreal_ns.camera_paths import OrbitThroughTime

        config = self.final_run / "config.yml"
        path = self.video.with_suffix(".json")
        OrbitThroughTime(load_config=config, output=path, num_frames=self.render_frames, data=self.scene).main()
        render_path(config, path, self.video, self.out / "logs" / "render.log")
        return "done"
