"""Shared test helpers: nerfstudio commands in subprocesses, the shared test data, trained runs reused per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


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
