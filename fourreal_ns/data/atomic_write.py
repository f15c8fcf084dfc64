"""Files that readers never see half-written: the scene's transforms.json and seed points, generation.json."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path` (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, content: dict) -> None:
    """Write `content` as JSON (indent 1, trailing newline) to `path` atomically."""
    atomic_write_bytes(Path(path), (json.dumps(content, indent=1) + "\n").encode("utf-8"))
