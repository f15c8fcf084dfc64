"""Files that readers never see half-written: the scene's transforms.json and seed points, generation.json, the
training checkpoints (fourreal_ns/checkpoints.py).

The content goes to a hidden temporary file beside the target, is flushed and fsynced, and is renamed over the
target (atomic on POSIX); the folder is fsynced so that the rename survives a power cut. A failed write (a full
disk, an exception while serialising) removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Sequence


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where a folder cannot be opened or fsynced)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write_with(path: Path, write: Callable[[BinaryIO], object], temporary_folder: Optional[Path] = None) -> None:
    """Call `write(handle)` on a temporary file beside `path` (or in `temporary_folder`, which must be on the same
    file system), then make it `path` (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(temporary_folder or path.parent) / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    atomic_write_with(path, lambda handle: handle.write(data))


def write_json_atomic(path: Path, content: dict) -> None:
    """Write `content` as JSON (indent 1, trailing newline) to `path` atomically."""
    atomic_write_bytes(Path(path), (json.dumps(content, indent=1) + "\n").encode("utf-8"))


def check_output_folder(out: Path, overwrite: bool, what: str, own_files: Sequence[str]) -> None:
    """Refuse to write `what` into a non-empty folder unless `overwrite`; with it, remove only the files matching
    `own_files` (glob patterns of what the writer itself writes: stale frames of a larger earlier write), nothing
    else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder.")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} exists and is not empty: refusing to write {what} into it. Pick a new folder or pass "
                f"overwrite=True (--overwrite) to replace {what}'s own files there.")
        for pattern in own_files:
            for stale in out.glob(pattern):
                if stale.is_file():
                    stale.unlink()
