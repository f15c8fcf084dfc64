"""Shared test helpers: nerfstudio commands in subprocesses, the shared test data, trained runs reused per session.

Session fixtures (built once, on first use, in a temporary folder):
- `demo_scene`: `fourreal demo-scene` with seed 0;
- `canonical_run`: config.yml of `ns-train 4real-canonical` on it with the short CPU schedule (CANONICAL_STEPS).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

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


CANONICAL_STEPS = 600


def train_canonical(scene: Path, output: Path, name: str, extra: List[str], steps: int = CANONICAL_STEPS) -> Path:
    """`ns-train 4real-canonical` with the short CPU schedule; returns the run's config.yml."""
    from fourreal_ns.method_configs import short_cpu_schedule

    run_ns([
        "ns-train", "4real-canonical", "--data", str(scene), "--output-dir", str(output), "--experiment-name", name,
        "--timestamp", "run", "--vis", "tensorboard", "--viewer.quit-on-train-completion", "True",
        "--steps-per-save", str(steps), *short_cpu_schedule(steps), *extra,
    ])  # fmt: skip
    return output / name / "4real-canonical" / "run" / "config.yml"


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory) -> Path:
    from fourreal_ns.demo_scene import make_demo_scene

    return make_demo_scene(tmp_path_factory.mktemp("demo") / "scene", seed=0)


@pytest.fixture(scope="session")
def canonical_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("canonical_runs")


@pytest.fixture(scope="session")
def canonical_run(demo_scene, canonical_runs) -> Path:
    """A finished 4real-canonical run on the demo scene (short CPU schedule, per-frame deformation on)."""
    return train_canonical(demo_scene, canonical_runs, "with_deformation", [])
