"""Running nerfstudio's commands for the orchestrators (`fourreal demo`, `fourreal run`, `fourreal refine`): the
console scripts of this environment, one `ns-train` command line for a stage, where a stage's run lies, whether it
is finished, the schedules, rendering a camera path, and the error of a failed step.

Nothing here knows about a particular orchestrator; they import it, never the other way round.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from rich.console import Console

CONSOLE = Console()
EXPERIMENT = "fourreal"
"""The experiment name `fourreal run` and `fourreal refine` train under (`fourreal demo`'s is "demo")."""


class StepFailed(RuntimeError):
    """A step of an orchestrator failed; the message names its log."""


def ns_command(name: str) -> str:
    """A nerfstudio console script of this Python environment (`ns-train`, `ns-render`, ...)."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"`{name}` was not found: install nerfstudio==1.1.5 in this environment.")
    return found


def die_with_parent():
    """A child process's `preexec_fn`: the kernel kills the child when the process that started it dies (Linux's
    PR_SET_PDEATHSIG; None elsewhere). A killed `fourreal run` (or a `fourreal batch` worker killed by Ray or by
    hand) then leaves no ns-train behind that would go on writing into a run folder a retry trains in. The libc
    function is looked up here, in the parent: the forked child only calls it (no import after a fork)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def run_command(command: List[str], log: Optional[Path] = None) -> None:
    """Run a command: its output on the console (the command line printed first), or in `log`, with the log's tail
    in the StepFailed raised when it fails. The command dies with this process (`die_with_parent`)."""
    if log is None:
        CONSOLE.print(f"[bold]$ {' '.join(command)}")
        subprocess.run(command, check=True, preexec_fn=die_with_parent())
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise StepFailed(f"`{' '.join(command[:2])} ...` exited {result.returncode}; full output in {log}:\n{tail}")


def run_folder(runs: Path, method: str, experiment: str = EXPERIMENT) -> Path:
    """Where `train_stage` puts a stage's run (a fixed timestamp, so that the same command resumes it)."""
    return runs / experiment / method / "run"


def is_trained(run: Path) -> bool:
    """Whether the run's newest checkpoint is its schedule's last step (a run stopped half-way is trained on: ns-train
    resumes it from its own checkpoints, fourreal_ns/trainer.py)."""
    from fourreal_ns.checkpoints import checkpoint_files
    from fourreal_ns.run_config import RunConfigError, read_run_config

    files = checkpoint_files(run / "nerfstudio_models")
    if not (run / "config.yml").is_file() or not files:
        return False
    try:
        steps = int(read_run_config(run / "config.yml").get("max_num_iterations", 0))
    except (RunConfigError, TypeError, ValueError):
        return True  # a config.yml of another layout: trust its checkpoint
    return files[-1][0] >= steps - 1


def train_stage(method: str, scene: Path, runs: Path, arguments: List[str], log: Optional[Path] = None,
                experiment: str = EXPERIMENT) -> Path:
    """`ns-train METHOD` on `scene` into `run_folder(runs, method, experiment)` (tensorboard, no viewer); returns the
    run's config.yml. Output to `log`, or to the console where there is none."""
    run_command([
        ns_command("ns-train"), method, "--data", str(scene), "--output-dir", str(runs),
        "--experiment-name", experiment, "--timestamp", "run", "--vis", "tensorboard",
        "--viewer.quit-on-train-completion", "True", *arguments,
    ], log)  # fmt: skip
    return run_folder(runs, method, experiment) / "config.yml"


def render_path(config: Path, path, video: Path, log: Optional[Path] = None) -> Path:
    """Render a camera path (a dict, see camera_paths.py, written beside the video; or a path file) to `video` with
    `ns-render camera-path`."""
    from fourreal_ns.camera_paths import write_camera_path

    path_file = Path(path) if isinstance(path, (str, Path)) else write_camera_path(video.with_suffix(".json"), path)
    run_command([
        ns_command("ns-render"), "camera-path", "--load-config", str(config),
        "--camera-path-filename", str(path_file), "--output-path", str(video),
    ], log)  # fmt: skip
    return video


def evaluate_run(config: Path, output: Path, log: Optional[Path] = None) -> dict:
    """`ns-eval` of a run on its scene's held-out frames (the dataparser's `eval_every`) into `output`; returns the
    metrics (psnr, ssim, ...; lpips where the model computes it)."""
    run_command([ns_command("ns-eval"), "--load-config", str(config), "--output-path", str(output)], log)
    return dict(json.loads(output.read_text())["results"])


def method_name(schedule: str, stage: str) -> str:
    """The ns-train method of a stage: 4real-canonical / 4real-motion, or their -small presets."""
    return f"4real-{stage}" + ("-small" if schedule == "small" else "")


def schedule_arguments(schedule: str, stage: str, steps: Optional[int]) -> List[str]:
    """ns-train options of a schedule ("paper", "small" or "short-cpu") for the canonical or motion stage."""
    from fourreal_ns.method_configs import short_cpu_motion_schedule, short_cpu_schedule

    if schedule in ("paper", "small"):
        if steps is not None:
            raise ValueError(f"--steps / --motion-steps shorten the short-cpu schedule; the {schedule} schedule has "
                             "fixed stage lengths (use --schedule short-cpu, or ns-train directly).")
        return []
    if stage == "canonical":
        return short_cpu_schedule(600 if steps is None else steps)
    return short_cpu_motion_schedule(600 if steps is None else steps)
