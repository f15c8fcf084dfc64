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
from typing import BinaryIO, Callable, Optional


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
