"""One batch item on a Ray worker: `fourreal run` in a child process, its attempts recorded beside its outputs.

The Ray task (`run_item`) starts `python -m fourreal_ns.cli run --out DIR/items/NAME ...` and waits for it. The
child runs every step of `fourreal run` (each skipped when its output exists, so a retry keeps what an earlier
attempt finished) and writes DIR/items/NAME/run_status.json as it goes. Files of the batch under the item's folder:

- `batch/attempt-K.json`: one per attempt (worker pid, child pid, node, start, end, exit code, log); an attempt
  without an end is one whose worker died;
- `logs/batch-attempt-K.log`: the child's whole output;
- `batch/result.json`: written when the item has finished (step seconds, held-out metrics, the video): a resumed
  batch skips the item.

The child dies with the worker (PR_SET_PDEATHSIG, `runs.die_with_parent`), and so do the ns-train / ns-render it
starts, so a worker killed by Ray (a lost node, `ray.cancel`, Ctrl-C of the batch) or by hand leaves nothing running
that could write into the folder the retry trains in; a retry on the same node also kills a process group of an
earlier attempt that is still alive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.errors import FourRealError
from fourreal_ns.run_all import STATUS_FILE
from fourreal_ns.runs import die_with_parent

RESULT_FILE = "batch/result.json"
LOG_TAIL_LINES = 30


class ItemFailed(FourRealError, RuntimeError):
    """`fourreal run` of an item exited with an error; the message has its log's path and tail."""


def attempts_of(folder: Path) -> List[Dict[str, Any]]:
    """The item's attempt records, oldest first."""
    records = []
    for path in (folder / "batch").glob("attempt-*.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue  # being written
    return sorted(records, key=lambda record: record.get("attempt", 0))


def run_status(folder: Path) -> Dict[str, Any]:
    """`fourreal run`'s run_status.json of the item ({} before it starts)."""
    try:
        return json.loads((folder / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def finished_result(folder: Path) -> Optional[Dict[str, Any]]:
    """The item's result when it finished (and its video is still there), else None."""
    try:
        result = json.loads((folder / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return result if (folder / result.get("video", "")).is_file() else None


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop_leftover_attempts(folder: Path, node: str) -> None:
    """Kill the process group of an earlier attempt on this node that never recorded its end (its worker died and
    its child outlived it: a platform without PR_SET_PDEATHSIG)."""
    for record in attempts_of(folder):
        if record.get("ended") is None and record.get("node") == node and record.get("child_pid"):
            try:
                os.killpg(int(record["child_pid"]), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _result(folder: Path) -> Dict[str, Any]:
    status = run_status(folder)
    seconds = {name: step.get("seconds") for name, step in status.get("steps", {}).items()}
    try:
        metrics = json.loads((folder / "metrics.json").read_text()).get("results", {})
    except (OSError, json.JSONDecodeError):
        metrics = {}
    video = "orbit.mp4" if (folder / "orbit.mp4").is_file() else "orbit_through_time.mp4"
    return {"status": "done", "seconds": seconds, "metrics": metrics, "video": video, "finished": time.time()}


def run_item(name: str, folder: str, arguments: List[str], working_directory: Optional[str] = None) -> Dict[str, Any]:
    """The Ray task of one item (module docstring): returns its result, raises ItemFailed when `fourreal run`
    fails."""
    folder_path = Path(folder)
    (folder_path / "batch").mkdir(parents=True, exist_ok=True)
    node = socket.gethostname()
    _stop_leftover_attempts(folder_path, node)
    attempt = max([record.get("attempt", 0) for record in attempts_of(folder_path)], default=0) + 1
    log = folder_path / "logs" / f"batch-attempt-{attempt}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    record: Dict[str, Any] = {"attempt": attempt, "pid": os.getpid(), "node": node, "started": time.time(),
                              "ended": None, "returncode": None, "log": str(log.relative_to(folder_path))}
    record_path = folder_path / "batch" / f"attempt-{attempt}.json"
    command = [sys.executable, "-m", "fourreal_ns.cli", "run", "--out", str(folder_path), *arguments]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    cwd = working_directory if working_directory and Path(working_directory).is_dir() else None
    with open(log, "w") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd, env=environment,
                                 start_new_session=True, preexec_fn=die_with_parent())
        record["child_pid"] = child.pid
        write_json_atomic(record_path, record)
        returncode = child.wait()
    record.update(ended=time.time(), returncode=returncode)
    write_json_atomic(record_path, record)
    if returncode != 0:
        raise ItemFailed(f"item {name}: `fourreal run` exited {returncode} (attempt {attempt}); full output in "
                         f"{log}:\n{log_tail(log)}")
    result = _result(folder_path)
    write_json_atomic(folder_path / RESULT_FILE, result)
    return result
