"""The trainer of the 4real methods: nerfstudio's, made to survive the faults of long runs (docs/reliability.md).

`ns-train 4real-*` builds `FourRealTrainerConfig` (method_configs.py), so each of these holds for every run:

- **Fail fast.** nerfstudio's `ns-train` calls `config.set_timestamp()` first, before it prints the config and
  writes `config.yml`: there `preflight.check_training_run` checks what the run will need later (the scene, the
  device, the canonical run, the guidance weights). A problem, or any FourRealError while the trainer is set up
  (the dataparser, the model), is printed as its message alone (`--show-tracebacks True` for the traceback), exit
  status 2, and leaves no run folder that looks like a run (`config.yml` is removed again where no checkpoint
  exists). A run whose folder already holds its last step says so and exits without touching it.
- **Never lose a run.** Checkpoints are written atomically (fourreal_ns/checkpoints.py) and the newest
  `keep_checkpoints` are kept. SIGINT (Ctrl-C) or SIGTERM ends the step under way, saves a checkpoint and exits with
  128 + the signal number; a second signal exits at once. An exception while training saves the last completed
  step before it propagates. Resuming: `--load-dir RUN/nerfstudio_models` (or the same command again where the
  run folder is fixed with `--timestamp`, which finds the run's own checkpoints) loads the newest checkpoint that
  loads, skipping broken ones with a warning, ignores other files, and trains to the schedule's last step,
  `max_num_iterations - 1`, not `max_num_iterations` steps more. The stages (4real-canonical's deformation start,
  4real-motion's motion fit, growth and joint phases, the SDS windows) are functions of the step and the
  checkpointed state (`num_frozen`), so they continue where they were.
- **Bounded.** A step whose loss or gradients are not finite makes no optimiser or scheduler step and no
  densification; it is counted (`Train/nonfinite_steps`) and logged. After `nonfinite_patience` in a row the run
  stops, saves the last good state (the parameters those steps never changed) and names the steps.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Type

import torch

from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import writer
from nerfstudio.utils.decorators import check_main_thread
from nerfstudio.utils.rich_utils import CONSOLE

from fourreal_ns.checkpoints import (
    CheckpointError,
    checkpoint_files,
    checkpoint_name,
    load_newest_checkpoint,
    read_checkpoint,
    remove_older_checkpoints,
    save_checkpoint_atomic,
)
from fourreal_ns.errors import FourRealError

SETUP_ERROR_STATUS = 2
NONFINITE_STATUS = 1


@dataclass
class FourRealTrainerConfig(TrainerConfig):
    """nerfstudio's TrainerConfig, with the fault handling of this module."""

    _target: Type = field(default_factory=lambda: FourRealTrainer)
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep (with --save-only-latest-checkpoint True, the default): two, so
    that a newest checkpoint that does not load has one to fall back on."""
    nonfinite_patience: int = 20
    """Stop after this many steps in a row whose loss or gradients are not finite (each is skipped)."""
    show_tracebacks: bool = False
    """Print the traceback of a start-up error too (for debugging); by default its message alone."""

    def set_timestamp(self) -> None:
        """nerfstudio's, then the checks before step 0 (module docstring)."""
        super().set_timestamp()
        from fourreal_ns.preflight import check_training_run

        try:
            check_training_run(self)
        except FourRealError as error:
            exit_with_message(error, self.show_tracebacks)
        last = newest_step(self.get_checkpoint_dir())
        if last is not None and last >= self.max_num_iterations - 1:
            CONSOLE.print(f"{self.get_base_dir()} holds the last step ({last}) of this {self.max_num_iterations}-step "
                          "run already: nothing to train (give another --timestamp to train again).")  # fmt: skip
            sys.exit(0)


def exit_with_message(error: BaseException, show_traceback: bool, status: int = SETUP_ERROR_STATUS) -> None:
    """Print a FourRealError's message alone (it names the problem and the fix) and exit."""
    if show_traceback:
        raise error
    CONSOLE.print("[bold red]Error[/bold red] (ns-train stopped before training):")
    print(str(error), file=sys.stderr, flush=True)  # not through rich: no wrapping, no markup
    sys.exit(status)


def newest_step(folder: Path) -> Optional[int]:
    files = checkpoint_files(folder)
    return files[-1][0] if files else None


def remove_unstarted_run(base_dir: Path, output_dir: Path) -> None:
    """Remove what `ns-train` wrote for a run that never trained (no checkpoint): its config.yml and the folders it
    made, as far as they are empty. A folder holding checkpoints is never touched."""
    if checkpoint_files(base_dir / "nerfstudio_models"):
        return
    for name in ("config.yml", "dataparser_transforms.json"):
        (base_dir / name).unlink(missing_ok=True)
    if (base_dir / "nerfstudio_models").is_dir() and not any((base_dir / "nerfstudio_models").iterdir()):
        (base_dir / "nerfstudio_models").rmdir()
    folder, stop = base_dir, Path(output_dir).resolve()
    while folder.is_dir() and not any(folder.iterdir()) and folder.resolve() != stop:
        folder.rmdir()
        folder = folder.parent


@dataclass
class NonFiniteSteps:
    """The steps whose loss or gradients were not finite: in all, and the current run of them."""

    patience: int
    total: int = 0
    in_a_row: int = 0
    first_of_row: Optional[int] = None
    terms: List[str] = field(default_factory=list)

    def record(self, step: int, terms: List[str]) -> bool:
        """Count a skipped step; True when `patience` steps in a row have been skipped."""
        self.total += 1
        self.in_a_row += 1
        if self.in_a_row == 1:
            self.first_of_row, self.terms = step, terms
        return self.in_a_row >= self.patience

    def reset(self) -> None:
        self.in_a_row, self.first_of_row = 0, None


class UnlessStepSkipped:
    """A training callback that does not run after a skipped step (densification would read its NaN gradients)."""

    def __init__(self, callback, trainer: "FourRealTrainer") -> None:
        self.callback, self.trainer = callback, trainer

    def run_callback_at_location(self, step: int, location: TrainingCallbackLocation) -> None:
        if location == TrainingCallbackLocation.AFTER_TRAIN_ITERATION and self.trainer.step_skipped:
            return
        self.callback.run_callback_at_location(step, location)

    def __getattr__(self, name):
        return getattr(self.callback, name)


class FourRealTrainer(Trainer):
    config: FourRealTrainerConfig

    def __init__(self, config: FourRealTrainerConfig, local_rank: int = 0, world_size: int = 1) -> None:
        super().__init__(config, local_rank, world_size)
        self.completed_step: Optional[int] = None
        """The last step whose update was applied or skipped (what a checkpoint after a stop records)."""
        self.step_skipped = False
        self.nonfinite = NonFiniteSteps(config.nonfinite_patience)
        self.stop_reason: Optional[str] = None
        self.stop_status = 0
        self.unsaved: Optional[CheckpointError] = None

    # ---------------------------------------------------------------- start-up
    def setup(self, test_mode="val") -> None:
        try:
            super().setup(test_mode)
        except FourRealError as error:
            remove_unstarted_run(self.base_dir, self.config.output_dir)
            exit_with_message(error, self.config.show_tracebacks)
        except BaseException:
            remove_unstarted_run(self.base_dir, self.config.output_dir)
            raise
        self.callbacks = [UnlessStepSkipped(callback, self) for callback in self.callbacks]

    def _load_checkpoint(self) -> None:
        """Resume from --load-dir / --load-checkpoint, or from the run's own checkpoints (module docstring)."""
        if self.config.load_checkpoint is not None:
            path, state = self.config.load_checkpoint, read_checkpoint(self.config.load_checkpoint)
        elif self.config.load_dir is not None:
            path, state = load_newest_checkpoint(self.config.load_dir, self.config.load_step)
        elif checkpoint_files(self.checkpoint_dir):
            path, state = load_newest_checkpoint(self.checkpoint_dir)
        else:
            CONSOLE.print("No checkpoint to resume from: training from step 0.")
            return
        self._start_step = state["step"] + 1
        self.pipeline.load_pipeline(state["pipeline"], state["step"])
        self.optimizers.load_optimizers(state["optimizers"])
        if "schedulers" in state and self.config.load_scheduler:
            self.optimizers.load_schedulers(state["schedulers"])
        self.grad_scaler.load_state_dict(state["scalers"])
        self.completed_step = state["step"]
        CONSOLE.print(f"Resuming from {path} (step {state['step']}): training steps {self._start_step} to "
                      f"{self.config.max_num_iterations - 1}.")  # fmt: skip

    # ---------------------------------------------------------------- the loop
    def train(self) -> None:
        """nerfstudio's loop, from the resumed step to the schedule's last, stopping cleanly on signals."""
        total = self.config.max_num_iterations
        if self._start_step >= total:
            CONSOLE.print(f"The checkpoint holds the last step ({self._start_step - 1}) of this {total}-step run: "
                          "nothing to train.")  # fmt: skip
            return
        self.config.max_num_iterations = total - self._start_step  # nerfstudio counts from the resumed step
        try:
            with stop_on_signals(self):
                super().train()
        except Exception:
            if self.completed_step is not None and self.stop_reason is None:
                if self.save_checkpoint(self.completed_step):
                    CONSOLE.print(f"Training failed after step {self.completed_step}; its checkpoint is saved: "
                                  f"resume with --load-dir {self.checkpoint_dir}.")  # fmt: skip
            raise
        finally:
            self.config.max_num_iterations = total

    def request_stop(self, reason: str, status: int) -> None:
        """End the run after the step under way, with a checkpoint (signals, non-finite losses)."""
        self.stop_reason, self.stop_status = reason, status
        self.stop_training = True

    def _after_train(self) -> None:
        if self.stop_reason is None:
            super()._after_train()
            if self.unsaved is not None:
                exit_with_message(self.unsaved, False, status=1)
            return
        self.training_state = "completed"
        saved = self.completed_step is not None and self.save_checkpoint(self.completed_step)
        writer.write_out_storage()
        if saved:
            path = self.checkpoint_dir / checkpoint_name(self.completed_step)
            where = f"after step {self.completed_step}, checkpoint {path}"
        else:
            where = "before any step of this run: no new checkpoint"
        CONSOLE.print(f"{self.stop_reason} {where}. Resume with the same command plus --load-dir {self.checkpoint_dir} "
                      "(or the same command alone where --timestamp is fixed).", soft_wrap=True)
        sys.exit(self.stop_status)

    def train_iteration(self, step: int):
        """One step, skipped (no optimiser, scheduler or densification step) when its loss or gradients are not
        finite. Gradient accumulation and mixed precision as nerfstudio's are not used by the 4real methods."""
        self.optimizers.zero_grad_all()
        cpu_or_cuda = "cuda" if self.device.split(":")[0] == "cuda" else "cpu"
        with torch.autocast(device_type=cpu_or_cuda, enabled=self.mixed_precision):
            _, loss_dict, metrics_dict = self.pipeline.get_train_loss_dict(step=step)
            loss = functools.reduce(torch.add, loss_dict.values())
        finite = bool(torch.isfinite(loss))
        if finite:
            self.grad_scaler.scale(loss).backward()  # type: ignore[union-attr]
            finite = self.gradients_finite()
        self.step_skipped = not finite
        self.completed_step = step
        if not finite:
            self.optimizers.zero_grad_all()
            self.skip_step(step, loss_dict)
            return loss.detach(), loss_dict, metrics_dict
        self.nonfinite.reset()
        self.optimizers.optimizer_scaler_step_all(self.grad_scaler)
        scale = self.grad_scaler.get_scale()
        self.grad_scaler.update()
        if scale <= self.grad_scaler.get_scale():  # as nerfstudio: no scheduler step when the scaler backed off
            self.optimizers.scheduler_step_all(step)
        return loss, loss_dict, metrics_dict

    def gradients_finite(self) -> bool:
        grads = [p.grad for params in self.optimizers.parameters.values() for p in params if p.grad is not None]
        return not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def skip_step(self, step: int, loss_dict) -> None:
        terms = [name for name, value in loss_dict.items() if not bool(torch.isfinite(value).all())]
        stop = self.nonfinite.record(step, terms or ["gradients"])
        writer.put_scalar(name="Train/nonfinite_steps", scalar=self.nonfinite.total, step=step)
        if self.nonfinite.in_a_row == 1 or stop:
            CONSOLE.print(f"[yellow]Step {step}: the loss or its gradients are not finite "
                          f"({', '.join(terms or ['gradients'])}); the step is skipped "
                          f"({self.nonfinite.total} so far).[/yellow]")  # fmt: skip
        if stop:
            last_good = self.nonfinite.first_of_row - 1
            self.request_stop(
                f"Training stopped: the loss was not finite for {self.nonfinite.in_a_row} steps in a row (steps "
                f"{self.nonfinite.first_of_row} to {step}; {', '.join(self.nonfinite.terms)}; likely causes: a "
                "learning rate too high for this scene, a corrupt image, a degenerate camera). Those steps changed "
                f"nothing, so the parameters are those of step {last_good}, the last good one; saved", NONFINITE_STATUS)

    # ---------------------------------------------------------------- checkpoints
    @check_main_thread
    def save_checkpoint(self, step: int) -> bool:  # type: ignore[override]
        """nerfstudio's checkpoint, written atomically; the newest `keep_checkpoints` are kept. A failed write
        (a full disk) is a warning and keeps every checkpoint; the run goes on and fails at its end if the last
        save fails too. Returns whether the checkpoint was written."""
        path = self.checkpoint_dir / checkpoint_name(step)
        pipeline = self.pipeline.module if hasattr(self.pipeline, "module") else self.pipeline
        state = {
            "step": step,
            "pipeline": pipeline.state_dict(),  # type: ignore[union-attr]
            "optimizers": {k: v.state_dict() for (k, v) in self.optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for (k, v) in self.optimizers.schedulers.items()},
            "scalers": self.grad_scaler.state_dict(),
        }
        try:
            save_checkpoint_atomic(state, path)
        except CheckpointError as error:
            self.unsaved = error
            CONSOLE.print(f"[bold yellow]Warning:[/bold yellow] {error}")
            return False
        self.unsaved = None
        if self.config.save_only_latest_checkpoint:
            remove_older_checkpoints(self.checkpoint_dir, self.config.keep_checkpoints)
        return True


@contextmanager
def stop_on_signals(trainer: FourRealTrainer) -> Iterator[None]:
    """SIGINT and SIGTERM end the run after the step under way, with a checkpoint; a second one (or one after
    training has finished, in the viewer) exits at once. Python handles signals only in the main thread: elsewhere
    this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.getsignal(number) for number in watched}

    def handler(number, frame) -> None:
        if trainer.stop_reason is not None or trainer.training_state == "completed":
            sys.exit(128 + number)
        name = signal.Signals(number).name
        trainer.request_stop(f"Stopped by {name}", 128 + number)
        CONSOLE.print(f"[yellow]{name}: saving a checkpoint after this step ({name} again to quit at once).[/yellow]")

    for number in watched:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
