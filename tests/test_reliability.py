"""Training that survives faults (fourreal_ns/trainer.py, preflight.py, checkpoints.py; docs/reliability.md).

Each fault is made for real on the demo scene: `ns-train` in a subprocess for what a user sees (guidance without
weights, SIGTERM and the same command again, 4real-motion without its canonical run), the trainer in this process
where the fault has to be injected (a NaN loss, a full disk, a truncated checkpoint, stray files, a Gaussian cap).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ns_script

pytestmark = pytest.mark.e2e


# ---------------------------------------------------------------------------------------------------- helpers
def make_trainer(scene: Path, output: Path, steps: int, **trainer_options):
    """The 4real-canonical trainer of the short CPU schedule, set up in this process (nerfstudio's train_loop)."""
    from nerfstudio.scripts.train import _set_random_seed

    from fourreal_ns.method_configs import small_canonical_config

    config = small_canonical_config(steps)
    config.pipeline.datamanager.data = scene
    config.output_dir, config.experiment_name, config.timestamp = output, "run", "run"
    config.vis, config.viewer.quit_on_train_completion = "tensorboard", True
    config.machine.device_type = "cpu"
    config.steps_per_eval_image = config.steps_per_eval_all_images = 10**6  # no evaluation: faster
    for name, value in trainer_options.items():
        setattr(config, name, value)
    _set_random_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def poison_loss(trainer, steps, record=None):
    """Make the loss NaN at `steps` (a set, or a predicate); `record[step]` keeps the means before each step."""
    original = trainer.pipeline.get_train_loss_dict

    def get_train_loss_dict(step: int):
        if record is not None:
            record[step] = trainer.pipeline.model.means.detach().clone()
        outputs, losses, metrics = original(step=step)
        if (steps(step) if callable(steps) else step in steps):
            losses = {**losses, "main_loss": losses["main_loss"] * float("nan")}
        return outputs, losses, metrics

    trainer.pipeline.get_train_loss_dict = get_train_loss_dict


def ns_train_command(scene: Path, output: Path, steps: int, *extra: str):
    from fourreal_ns.method_configs import short_cpu_schedule

    return [
        ns_script("ns-train"), "4real-canonical", "--data", str(scene), "--output-dir", str(output),
        "--experiment-name", "run", "--timestamp", "run", "--vis", "tensorboard",
        "--viewer.quit-on-train-completion", "True", "--steps-per-save", "100000", *short_cpu_schedule(steps), *extra,
    ]  # fmt: skip


def checkpoint_steps(folder: Path):
    from fourreal_ns.checkpoints import checkpoint_files

    return [step for step, _ in checkpoint_files(folder)]


# ---------------------------------------------------------------------------------------------------- fail fast
def test_guidance_without_weights_fails_in_seconds_with_the_message(demo_scene, tmp_path):
    """The paper schedule (SDS on) where the weights are neither local nor in the cache and the hub cannot be
    reached: stopped before the config dump, with the fix, and no run folder (was: over an hour, then a crash at the
    first SDS step under four tracebacks)."""
    output = tmp_path / "outputs"
    environment = {**os.environ, "HF_HOME": str(tmp_path / "empty_cache"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    environment.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    result = subprocess.run([ns_script("ns-train"), "4real-canonical", "--data", str(demo_scene), "--output-dir",
                             str(output), "--vis", "tensorboard"], capture_output=True, text=True, timeout=300,
                            env=environment, cwd=tmp_path)  # fmt: skip
    seconds = time.monotonic() - start
    combined = result.stdout + result.stderr
    print(f"ns-train stopped after {seconds:.1f} s with status {result.returncode}")
    assert result.returncode == 2, combined[-3000:]
    assert seconds < 60
    assert "Could not load the 'ltx' video-guidance model 'Lightricks/LTX-Video-0.9.5'" in combined
    assert "http://127.0.0.1:9 could not be reached" in combined
    assert "--pipeline.guidance.enabled False" in combined and "huggingface-cli download" in combined
    assert "Traceback" not in combined and "TrainerConfig(" not in combined
    assert not output.exists()


def test_4real_motion_without_a_canonical_run_on_a_freeze_time_scene_stops(demo_scene, tmp_path):
    """Stage 2 from scratch where a freeze-time video exists is an error unless asked for (--pipeline.model.from-
    scratch True): stage 1's run would go unused without a word."""
    base = [ns_script("ns-train"), "4real-motion", "--data", str(demo_scene), "--output-dir", str(tmp_path / "out"),
            "--vis", "tensorboard", "--pipeline.guidance.enabled", "False"]  # fmt: skip
    result = subprocess.run(base, capture_output=True, text=True, timeout=300)
    combined = result.stdout + result.stderr
    assert result.returncode == 2, combined[-3000:]
    flat = " ".join(combined.split())
    assert "has a freeze-time video, but no --pipeline.model.canonical-checkpoint was given" in flat
    assert "--pipeline.model.from-scratch True" in flat
    assert not (tmp_path / "out").exists()

    from fourreal_ns.method_configs import small_motion_config
    from fourreal_ns.preflight import check_training_run

    intended = small_motion_config(20, with_canonical=False)  # from_scratch True
    intended.pipeline.datamanager.data = demo_scene
    assert check_training_run(intended).folder == demo_scene


# ---------------------------------------------------------------------------------------------------- never lose a run
def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes_to_the_schedules_end(demo_scene, tmp_path):
    steps = 120
    command = ns_train_command(demo_scene, tmp_path / "out", steps)
    run = tmp_path / "out" / "run" / "4real-canonical" / "run"
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    deadline = time.monotonic() + 300
    while not (run / "dataparser_transforms.json").exists():  # written when the training loop starts
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()[-3000:]
        time.sleep(0.2)
    time.sleep(2.0)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    saved = checkpoint_steps(run / "nerfstudio_models")
    print(f"SIGTERM: checkpoint at step {saved}")
    assert len(saved) == 1 and 0 <= saved[0] < steps - 1
    assert f"Stopped by SIGTERM after step {saved[0]}" in " ".join(output.split())

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    combined = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, combined[-3000:]
    flat = " ".join(combined.split())
    assert f"(step {saved[0]}): training steps {saved[0] + 1} to {steps - 1}" in flat
    # The uninterrupted run's last step, not `steps` more.
    assert checkpoint_steps(run / "nerfstudio_models") == [saved[0], steps - 1]

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to train" in again.stdout + again.stderr
    assert checkpoint_steps(run / "nerfstudio_models") == [saved[0], steps - 1]


def test_a_full_disk_a_truncated_checkpoint_and_stray_files_lose_nothing(demo_scene, tmp_path, monkeypatch, capsys):
    """A checkpoint write that fails (ENOSPC half-way) keeps the others and leaves no partial file; a resume skips a
    truncated newest checkpoint with a warning, ignores stray files and trains to the schedule's end."""
    import fourreal_ns.checkpoints as checkpoints

    trainer = make_trainer(demo_scene, tmp_path, steps=30, steps_per_save=10)
    folder = trainer.checkpoint_dir
    real_save = torch.save

    def full_disk_at_step_20(state, handle):
        if state["step"] == 20:
            handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(state, handle)

    monkeypatch.setattr(checkpoints.torch, "save", full_disk_at_step_20)
    trainer.train()
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    assert "No space left on device" in capsys.readouterr().out
    assert checkpoint_steps(folder) == [10, 29]
    assert not [path for path in folder.parent.rglob("*.tmp")]
    checkpoints.read_checkpoint(folder / "step-000000010.ckpt")

    newest = folder / "step-000000029.ckpt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    (folder / "notes.txt").write_text("a stray file")
    (folder / "step-latest.ckpt").write_text("not a checkpoint name")
    with pytest.warns(UserWarning, match="step-000000029.ckpt cannot be read"):
        resumed = make_trainer(demo_scene, tmp_path / "resumed", steps=40, load_dir=folder)
    assert resumed._start_step == 11
    resumed.train()
    assert checkpoint_steps(resumed.checkpoint_dir)[-1] == 39


def test_a_process_killed_at_a_random_moment_leaves_checkpoints_that_load(demo_scene, tmp_path):
    """SIGKILL (no handler runs) while a checkpoint is written every step: whatever is in nerfstudio_models loads,
    nothing half-written is left there, and the same command resumes to the end."""
    import random

    from fourreal_ns.checkpoints import checkpoint_files, read_checkpoint

    steps = 100
    command = ns_train_command(demo_scene, tmp_path / "out", steps)
    command[command.index("--steps-per-save") + 1] = "1"
    run = tmp_path / "out" / "run" / "4real-canonical" / "run"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not checkpoint_files(run / "nerfstudio_models"):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(random.Random(os.getpid()).uniform(0.2, 2.0))
    process.kill()
    process.wait(timeout=60)
    files = checkpoint_files(run / "nerfstudio_models")
    print(f"killed with checkpoints {[step for step, _ in files]}; other files: "
          f"{sorted(p.name for p in (run / 'nerfstudio_models').iterdir() if p not in [f for _, f in files])}")
    assert files and all(path.name.startswith("step-") for path in (run / "nerfstudio_models").iterdir())
    for _, path in files:
        read_checkpoint(path)
    command[command.index("--steps-per-save") + 1] = "100000"  # the resume needs no checkpoint per step
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert checkpoint_steps(run / "nerfstudio_models")[-1] == steps - 1


def test_an_exception_while_training_saves_the_last_step_first(demo_scene, tmp_path):
    trainer = make_trainer(demo_scene, tmp_path, steps=40)
    original = trainer.pipeline.get_train_loss_dict

    def fails_at_step_15(step: int):
        if step == 15:
            raise RuntimeError("a bug at step 15")
        return original(step=step)

    trainer.pipeline.get_train_loss_dict = fails_at_step_15
    with pytest.raises(RuntimeError, match="a bug at step 15"):
        trainer.train()
    assert checkpoint_steps(trainer.checkpoint_dir)[-1] == 14


def test_preflight_names_what_cannot_work(demo_scene, tmp_path, monkeypatch):
    """A device that is not there and guidance weights that are not in the cache stop before training, each with
    its option; SDS whose window lies after the run's end needs no weights."""
    from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError
    from fourreal_ns.method_configs import small_canonical_config
    from fourreal_ns.preflight import PreflightError, check_training_run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_cache"))
    config = small_canonical_config(20)
    config.pipeline.datamanager.data = demo_scene
    check_training_run(config)
    if not torch.cuda.is_available():
        config.machine.device_type = "cuda"
        with pytest.raises(PreflightError, match="--machine.device-type cpu"):
            check_training_run(config)
        config.machine.device_type = "cpu"
    config.pipeline.guidance.enabled = True
    config.pipeline.model.multiview_sds_start_step = 20  # after the last step (19)
    check_training_run(config)
    config.pipeline.model.multiview_sds_start_step = 10
    expected = "(?s)HF_HUB_OFFLINE is set.*--pipeline.guidance.enabled False"
    with pytest.raises(GuidanceWeightsNotFoundError, match=expected):
        check_training_run(config)


# ---------------------------------------------------------------------------------------------------- bounded
def test_a_nonfinite_loss_is_skipped_and_training_goes_on_within_the_gaussian_cap(demo_scene, tmp_path):
    seeds = make_trainer(demo_scene, tmp_path / "probe", steps=1).pipeline.model.means.shape[0]
    cap = seeds // 2
    trainer = make_trainer(demo_scene, tmp_path, steps=80)
    trainer.pipeline.model.config.max_gaussians = cap
    means = {}
    poison_loss(trainer, {62, 63}, record=means)
    trainer.train()
    assert trainer.nonfinite.total == 2
    assert checkpoint_steps(trainer.checkpoint_dir)[-1] == 79
    # Steps 62 and 63 changed nothing (no optimiser step, no densification); the steps around them did.
    assert torch.equal(means[62], means[64]) and not torch.equal(means[61], means[62])
    assert torch.isfinite(trainer.pipeline.model.means).all()
    count = trainer.pipeline.model.means.shape[0]
    print(f"{seeds} seed Gaussians, cap {cap}, {count} at the end")
    assert count <= cap


def test_a_run_of_nonfinite_losses_stops_with_the_last_good_state(demo_scene, tmp_path, capsys):
    trainer = make_trainer(demo_scene, tmp_path, steps=60, nonfinite_patience=5)
    means = {}
    poison_loss(trainer, lambda step: step >= 20, record=means)
    with pytest.raises(SystemExit) as stopped:
        trainer.train()
    assert stopped.value.code == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "not finite for 5 steps in a row (steps 20 to 24; main_loss" in out
    assert "the parameters are those of step 19" in out
    from fourreal_ns.checkpoints import load_newest_checkpoint

    _, state = load_newest_checkpoint(trainer.checkpoint_dir)
    assert state["step"] == 24
    assert torch.equal(state["pipeline"]["_model.gauss_params.means"], means[20])


def test_the_environment_matches_the_constraints_file():
    """`make` installs from constraints.txt: what runs here is what it pins (a fresh machine gets the same)."""
    from importlib.metadata import PackageNotFoundError, version

    from conftest import PROJECT_ROOT

    pins = {}
    for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            pins[name.strip().lower()] = pinned.strip()
    assert {"nerfstudio", "gsplat", "torch", "diffusers", "transformers", "pycolmap", "tyro", "av"} <= set(pins)
    wrong = {}
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # a pin for a platform-specific package this machine does not need
        if installed.split("+")[0] != pinned.split("+")[0]:
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from constraints.txt (pinned, installed): {wrong}"
    assert sys.version_info >= (3, 10)


def test_fourreal_run_counts_a_stage_stopped_half_way_as_unfinished(tmp_path):
    """`fourreal run` keeps finished stages; one stopped half-way (a checkpoint before its last step) is trained on
    (ns-train resumes it from its own checkpoints)."""
    import yaml

    from fourreal_ns.method_configs import small_canonical_config
    from fourreal_ns.runs import is_trained

    run = tmp_path / "run"
    (run / "nerfstudio_models").mkdir(parents=True)
    (run / "config.yml").write_text(yaml.dump(small_canonical_config(30)))
    assert not is_trained(run)
    (run / "nerfstudio_models" / "step-000000012.ckpt").write_bytes(b"")
    assert not is_trained(run)
    (run / "nerfstudio_models" / "step-000000029.ckpt").write_bytes(b"")
    assert is_trained(run)
