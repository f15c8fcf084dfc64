"""Shared test helpers: nerfstudio commands in subprocesses, the shared test data, trained runs reused per session.

Session fixtures (built once, on first use, in a temporary folder; under pytest-xdist once for all the workers,
see `built_once`):
- `demo_scene`: `fourreal demo-scene` with seed 0;
- `canonical_run`: config.yml of `ns-train 4real-canonical` on it with the short CPU schedule (CANONICAL_STEPS);
- `motion_run`: config.yml of `ns-train 4real-motion` from it (MOTION_STEPS, paused at MOTION_PAUSE and resumed;
  `paused_and_resumed` also gives the checkpoints the paused part left);
- `tiny_ltx` and `finished_run`: a tiny random-weight LTX pipeline and a finished `fourreal run` with it (TINY_RUN,
  nominal poses, RUN_STEPS per stage; test_run_all.py checks it, test_batch.py reuses its folder as a batch item).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def folder_hashes(folder: Path) -> Dict[str, str]:
    """Relative path -> sha256 of every file under `folder` (new, missing and changed files all show): the tests'
    check that nothing on disk changed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def shared_data_file(name: str) -> Path:
    """A file of ../shared/data: skipped where absent, a failure when FOURREAL_REQUIRE_SHARED=1 (CI)."""
    path = SHARED_DATA / name
    if not path.exists():
        message = f"{path} is absent (the shared test data lives in ../shared/data beside the project)"
        if os.environ.get("FOURREAL_REQUIRE_SHARED") == "1":
            pytest.fail(message + " and FOURREAL_REQUIRE_SHARED=1")
        pytest.skip(message)
    return path


def ns_script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def run_ns(args: List[str], timeout: float = 900, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a console script of this environment; on failure show its output."""
    command = [ns_script(args[0]), *args[1:]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n"
            f"--- stderr\n{result.stderr[-6000:]}"
        )
    return result


def _process_in_this_process(args: List[str]):
    import tyro

    from fourreal_ns.process.command import Process, process

    return process(tyro.cli(Process, args=args))


def run_process(args: List[object]):
    """`fourreal process ARGS` (the same tyro parsing as the command line) in a fresh Python process, as a user runs
    it; its ProcessError is raised here. In the test process itself COLMAP's result depended on what ran there
    before: one full suite posed 4 of the 12 frames of a clip, another 19 of 25 frames of a video, that every fresh
    process poses in full and identically (one COLMAP thread, one seed: three runs equal to the last digit)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_process_in_this_process, [str(arg) for arg in args]).result()


CANONICAL_STEPS = 600


def canonical_command(scene: Path, output: Path, name: str, extra: List[str], steps: int) -> List[str]:
    from fourreal_ns.method_configs import short_cpu_schedule

    return [
        "ns-train", "4real-canonical", "--data", str(scene), "--output-dir", str(output), "--experiment-name", name,
        "--timestamp", "run", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
        "--steps-per-save", str(steps), *short_cpu_schedule(steps), *extra,
    ]  # fmt: skip


def train_canonical(scene: Path, output: Path, name: str, extra: List[str], steps: int = CANONICAL_STEPS) -> Path:
    """`ns-train 4real-canonical` with the short CPU schedule; returns the run's config.yml."""
    run_ns(canonical_command(scene, output, name, extra, steps))
    return output / name / "4real-canonical" / "run" / "config.yml"


def train_canonical_side_by_side(scene: Path, output: Path, runs: Dict[str, List[str]], steps: int,
                                 timeout: float = 1500) -> Dict[str, Path]:  # fmt: skip
    """Independent 4real-canonical runs (name -> extra options) at once, one CPU thread each: on two cores two
    runs take the time of one (the per-step work is too small for a second thread to halve it)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    output.mkdir(parents=True, exist_ok=True)
    processes, logs = {}, {}
    for name, extra in runs.items():
        command = canonical_command(scene, output, name, extra, steps)
        logs[name] = output / f"{name}.log"  # a file, not a pipe: a full pipe would stall the run not read first
        with open(logs[name], "w") as log:
            processes[name] = subprocess.Popen([ns_script(command[0]), *command[1:]], stdout=log,
                                               stderr=subprocess.STDOUT, env=environment)  # fmt: skip
    failures = []
    for name, process in processes.items():
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in processes.values():
                other.kill()
            raise
        if process.returncode != 0:
            failures.append(f"{name} exited {process.returncode}\n{logs[name].read_text()[-6000:]}")
    if failures:
        raise AssertionError("\n".join(failures))
    return {name: output / name / "4real-canonical" / "run" / "config.yml" for name in runs}


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test` runs `-n auto`) each worker gets its share of the cores for torch, and so do
    the commands it starts (OMP_NUM_THREADS is inherited): two one-thread trainings on two cores do 2.2 times the
    work of one two-thread training, two two-thread ones a fifth of it (OpenMP's threads spin on the cores the
    other needs; docs/experiments.md, "The test suite on two cores"). A value the user set wins."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


LONGEST_FIRST = ["test_canonical_e2e.py", "test_dnerf_e2e.py", "test_motion_e2e.py", "test_sds.py",
                 "test_real_footage_e2e.py", "test_motion_sds.py", "test_web_export.py", "test_batch.py",
                 "test_process_footage.py", "test_reliability.py"]  # fmt: skip
"""The files whose tests take longest (`--durations`, 2026-12-07), handed out first. With `--dist loadfile` each
worker starts with one file and takes the next one in this order whenever it has at most two tests left to run
(pytest-xdist's LoadScopeScheduling), so a worker starting with a file of two tests takes a second at once. Hence:
the first worker trains test_canonical_e2e.py's runs, starting with the session's canonical run; the second
trains D-NeRF lego (two tests, ~10 minutes) and then test_motion_e2e.py, whose session motion run needs the
canonical run, finished by then, and which the later files (motion SDS, web export) need in turn. On 2026-12-07,
with test_sds.py third, the motion run started 24 minutes in and two files waited 5 minutes for it."""


def pytest_collection_modifyitems(items) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name` filled by `build(folder)` once per test session. Each pytest-xdist worker is a process
    with its own session fixtures, so there the folder lies beside the workers' own temporary folders and the first
    worker to need it builds it under a file lock while the others wait; a finished build is marked by `.built`."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent  # one folder per test session, shared by its workers
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build on another worker left
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory) -> Path:
    from fourreal_ns.demo_scene import make_demo_scene

    return built_once(tmp_path_factory, "demo", lambda folder: make_demo_scene(folder / "scene", seed=0)) / "scene"


@pytest.fixture(scope="session")
def canonical_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("canonical_runs")


@pytest.fixture(scope="session")
def canonical_run(demo_scene, tmp_path_factory) -> Path:
    """A finished 4real-canonical run on the demo scene (short CPU schedule, per-frame deformation on)."""
    folder = built_once(tmp_path_factory, "canonical_run",
                        lambda output: train_canonical(demo_scene, output, "with_deformation", []))  # fmt: skip
    return folder / "with_deformation" / "4real-canonical" / "run" / "config.yml"


MOTION_STEPS = 600
MOTION_FIT_END = 300  # short_cpu_motion_schedule: 50 % motion fit, 25 % growth, 25 % joint
GROWTH_END = 450
MOTION_PAUSE = 380


def train_motion(scene: Path, output: Path, canonical: Path, steps: int, extra=()) -> Path:
    from fourreal_ns.method_configs import short_cpu_motion_schedule

    schedule = short_cpu_motion_schedule(MOTION_STEPS)
    schedule = [option for option in schedule if not option.startswith("--max-num-iterations")]
    run_ns([
        "ns-train", "4real-motion", "--data", str(scene), "--output-dir", str(output), "--experiment-name", "motion",
        "--timestamp", "run", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
        "--max-num-iterations", str(steps), "--steps-per-save", str(GROWTH_END - 1),
        "--save-only-latest-checkpoint", "False",
        "--pipeline.model.canonical-checkpoint", str(canonical.parent), *schedule, *extra,
    ])  # fmt: skip
    return output / "motion" / "4real-motion" / "run" / "config.yml"


@pytest.fixture(scope="session")
def paused_and_resumed(demo_scene, canonical_run, tmp_path_factory):
    def build(output: Path) -> None:
        config = train_motion(demo_scene, output, canonical_run, MOTION_PAUSE)
        paused = sorted(path.name for path in (config.parent / "nerfstudio_models").glob("*.ckpt"))
        (output / "paused.json").write_text(json.dumps(paused))
        # A resumed run trains to the schedule's last step (--max-num-iterations - 1; trainer.py).
        train_motion(demo_scene, output, canonical_run, MOTION_STEPS,
                     ["--load-dir", str(config.parent / "nerfstudio_models")])  # fmt: skip

    output = built_once(tmp_path_factory, "motion", build)
    paused = set(json.loads((output / "paused.json").read_text()))
    return output / "motion" / "4real-motion" / "run" / "config.yml", paused


def ball_tracking(config: Path, scene: Path):
    """How well a demo-scene motion run carries the canonical ball (its Gaussians within the ball's radius of the true
    centre at t_c) along with the true ball: (distance of their opacity-weighted centre to the true centre at t =
    0.25, 0.5, 0.75, 1; how many Gaussians; how far the true ball travels from t_c to t = 1)."""
    import numpy as np
    import torch

    from fourreal_ns.demo_scene import demo_world
    from fourreal_ns.evaluation import load_pipeline

    model = load_pipeline(config).model
    world = demo_world(json.loads((scene / "transforms.json").read_text())["generation"]["seed"])  # its truth
    start = world.object_center(model.canonical_time)
    ball = np.linalg.norm(model.means.detach().numpy() - start, axis=-1) < world.ball_radius
    opacity = torch.sigmoid(model.opacities.detach()).numpy().ravel()[ball]
    errors = []
    for time in (0.25, 0.5, 0.75, 1.0):
        means = model.gaussians_at_time(time)["means"].detach().numpy()[ball]
        centre = (means * opacity[:, None]).sum(0) / opacity.sum()
        errors.append(float(np.linalg.norm(centre - world.object_center(time))))
    return errors, int(ball.sum()), float(np.linalg.norm(world.object_center(1.0) - start))


@pytest.fixture(scope="session")
def motion_run(paused_and_resumed) -> Path:
    return paused_and_resumed[0]


RUN_STEPS = 40
TINY_RUN = dict(poses="nominal", schedule="short-cpu", render_frames=16)
"""`fourreal run` options of the tiny runs: noise frames from random weights cannot be posed by SfM (nominal
poses); 16 frames, the shortest orbit-through-time path."""
TINY_GENERATION = dict(width=32, height=32, num_inference_steps=2, num_reference_frames=9, num_freeze_frames=25)


@pytest.fixture(scope="session")
def tiny_ltx(tmp_path_factory) -> Path:
    from tiny_diffusers import save_tiny_ltx

    return built_once(tmp_path_factory, "tiny_ltx", lambda folder: save_tiny_ltx(folder / "model")) / "model"


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_ltx):
    from fourreal_ns.generate.command import GenerationOptions
    from fourreal_ns.run_all import RunAll

    def command(out: Path) -> RunAll:
        options = GenerationOptions(model_id=str(tiny_ltx), **TINY_GENERATION)
        return RunAll(prompt="a panda playing guitar in a kitchen", out=out, steps=RUN_STEPS,
                      motion_steps=RUN_STEPS, generation=options, **TINY_RUN)  # fmt: skip

    return command(built_once(tmp_path_factory, "run_all", lambda folder: command(folder / "out").run()) / "out")
