"""A run's checkpoints (`nerfstudio_models/step-000001234.ckpt`): written atomically, found and loaded robustly.

nerfstudio writes a checkpoint in place with `torch.save` and finds the newest one by parsing every file name in
the folder, so a run killed while saving leaves a truncated newest checkpoint that `--load-dir` cannot read (a miniz
error), and any other file in the folder (`notes.txt`, an editor's backup) stops the resume with `invalid literal
for int()`. Here:

- `save_checkpoint_atomic` writes to a hidden temporary file beside the target, fsyncs it, renames it over the
  target and fsyncs the folder: a reader (or a resume after a crash, a kill or a full disk) sees the old checkpoint
  or the new one, never half of one; a failed write removes its temporary file and leaves the others untouched;
- `checkpoint_files` lists only names of nerfstudio's pattern, by step, and ignores everything else;
- `load_newest_checkpoint` loads the newest checkpoint that loads, skipping (with a warning that names it) any that
  does not.

The trainer (fourreal_ns/trainer.py) saves and resumes through these; 4real-motion reads the canonical run's
Gaussians through `load_newest_checkpoint` too.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from fourreal_ns.data.atomic_write import atomic_write_with
from fourreal_ns.errors import FourRealError

CHECKPOINT_NAME = re.compile(r"^step-(\d+)\.ckpt$")
"""nerfstudio's checkpoint file names (`step-{step:09d}.ckpt`)."""
REQUIRED_KEYS = ("step", "pipeline")


class CheckpointError(FourRealError, OSError):
    """No checkpoint of a folder can be loaded, or a checkpoint cannot be written; the message names the files."""


def checkpoint_name(step: int) -> str:
    return f"step-{step:09d}.ckpt"


def checkpoint_files(folder: Path) -> List[Tuple[int, Path]]:
    """(step, path) of every checkpoint in `folder`, oldest first; other files (and a missing folder) are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHECKPOINT_NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_checkpoint(path: Path) -> Dict[str, Any]:
    """A checkpoint's content; CheckpointError when the file is truncated, corrupt or not a nerfstudio checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - torch raises RuntimeError, EOFError, pickle and zip errors
        raise CheckpointError(f"{path} cannot be read ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a nerfstudio checkpoint (it has no {' / '.join(REQUIRED_KEYS)}).")
    return state


def load_newest_checkpoint(folder: Path, step: Optional[int] = None) -> Tuple[Path, Dict[str, Any]]:
    """The newest checkpoint of `folder` that loads (or the one of `step`), as (path, content).

    A checkpoint that does not load is skipped with a warning naming it; CheckpointError when none loads."""
    folder = Path(folder)
    files = checkpoint_files(folder)
    if step is not None:
        files = [(s, path) for s, path in files if s == step]
        if not files:
            raise CheckpointError(f"{folder / checkpoint_name(step)} does not exist (the checkpoints there: "
                                  f"{[path.name for _, path in checkpoint_files(folder)] or 'none'}).")  # fmt: skip
    if not files:
        raise CheckpointError(f"{folder} holds no checkpoint (step-*.ckpt).")
    problems = []
    for _, path in reversed(files):
        try:
            return path, read_checkpoint(path)
        except CheckpointError as error:
            problems.append(str(error))
            warnings.warn(f"Skipping a checkpoint that does not load: {error}", stacklevel=2)
    raise CheckpointError("No checkpoint of " + str(folder) + " loads:\n  " + "\n  ".join(problems))


def save_checkpoint_atomic(state: Dict[str, Any], path: Path) -> None:
    """`torch.save(state, path)` through a temporary file, fsync and rename (module docstring); CheckpointError when
    the write fails (a full disk, a read-only folder), with every existing checkpoint kept. The temporary file lies
    in the run folder, above `nerfstudio_models/`: nerfstudio's own loaders (ns-viewer, ns-eval) parse every file
    name there, and a process killed while writing would leave it behind."""
    path = Path(path)
    try:
        atomic_write_with(path, lambda handle: torch.save(state, handle), temporary_folder=path.parent.parent)
    except OSError as error:
        raise CheckpointError(
            f"Could not write the checkpoint {path} ({error.strerror or error}); the previous checkpoints are kept. "
            "Free some disk space (or give another --output-dir) and resume the run."
        ) from error


def remove_older_checkpoints(folder: Path, keep: int) -> List[Path]:
    """Delete all but the newest `keep` checkpoints of `folder` (keep <= 0: delete none); returns the deleted."""
    files = checkpoint_files(folder)
    if keep <= 0 or len(files) <= keep:
        return []
    deleted = [path for _, path in files[:-keep]]
    for path in deleted:
        path.unlink(missing_ok=True)
    return deleted

