"""`fourreal batch --prompts FILE --out DIR`: many scenes, each one Ray task running the steps of `fourreal run`.

Items (fourreal_ns/batch/items.py) are checked before Ray starts. Each unfinished item becomes a Ray task
(fourreal_ns/batch/worker.py) asking for `--cpus-per-item` CPUs and `--gpus-per-item` GPUs (1 where the cluster has
GPUs), so Ray packs items onto GPUs and machines; `--max-running` caps how many run at once. Without
`--ray-address` a local Ray instance uses this machine (`--num-cpus` / `--num-gpus` limit it); with one, the batch
joins that cluster (`ray start --head` on one machine, `ray start --address HEAD:6379` on the others; DIR must be a
folder every machine sees at the same path). docs/batch.md has the cluster recipes.

Faults: a failed item is retried up to `--max-retries` times and then reported with its log while the others go
on; a worker that dies mid-item (a killed process, a lost machine) is rescheduled by Ray within the same
retries; running the same command again resumes (finished items skipped; an unfinished item's finished steps kept,
as `fourreal run` keeps them). Ctrl-C cancels the running items (their workers and ns-train stop), writes the
report and keeps everything finished.

Seeing it: a progress bar of items done / running / failed / waiting with a row per running item (its current
step), Ray's dashboard (printed at the start; `--no-dashboard` for a local instance without it), and DIR/batch.json
plus DIR/index.html, a gallery of each item's orbit video with its prompt, times and metrics (report.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import tyro
from rich.console import Console
from typing_extensions import Annotated

from fourreal_ns.batch.items import BatchItem, BatchItemsError, parse_settings, read_items
from fourreal_ns.batch.report import item_folder, item_report, write_report
from fourreal_ns.batch.worker import attempts_of, finished_result, run_item, run_status

CONSOLE = Console()
INSTALL_HINT = ("fourreal batch needs Ray: pip install -e '.[cluster]' in this project's environment (it installs "
                "the pinned ray[default]; docs/batch.md).")


@dataclass
class Batch:
    """Many scenes on Ray: each line (or YAML/JSON item) of --prompts is one `fourreal run` (generate -> process ->
    canonical -> motion -> metrics -> orbit video), one Ray task per item, with retries, resume, a progress bar and
    a gallery (DIR/index.html). Run the same command again to resume."""

    prompts: Path
    """Items: a text file with one prompt a line, or a YAML / JSON list of items with per-item `fourreal run` options
    (seed, schedule, freeze: [video] instead of a prompt, ...; docs/batch.md)."""
    out: Path = Path("fourreal_batch")
    """Folder for everything: items/NAME (one `fourreal run --out` folder each), batch.json, index.html."""
    settings: Annotated[Tuple[str, ...], tyro.conf.arg(name="set")] = ()
    """`fourreal run` options for every item, as KEY=VALUE (e.g. --set schedule=small seed=3); the file's `defaults`
    give way to them, an item's own options win."""
    ray_address: Optional[str] = None
    """Join a running Ray cluster (`auto`, or HEAD:6379 of `ray start --head`); default: a local Ray instance."""
    num_cpus: Optional[int] = None
    """Local instance: CPUs Ray may use (default all)."""
    num_gpus: Optional[int] = None
    """Local instance: GPUs Ray may use (default all it finds)."""
    cpus_per_item: float = 1.0
    """CPUs each item asks Ray for (torch's CPU threads follow it: Ray sets OMP_NUM_THREADS)."""
    gpus_per_item: Optional[float] = None
    """GPUs each item asks Ray for (default 1 where the cluster has GPUs, else 0)."""
    max_running: Optional[int] = None
    """At most this many items at once (default: as many as the resources allow)."""
    max_retries: int = 2
    """Retries of an item whose `fourreal run` fails or whose worker dies, before it is reported failed."""
    dashboard: bool = True
    """Local instance: start Ray's dashboard (its address is printed)."""

    def main(self) -> None:
        if importlib.util.find_spec("ray") is None:
            raise SystemExit(INSTALL_HINT)
        try:
            summary = self.run()
        except BatchItemsError as error:
            raise SystemExit(f"fourreal batch: {error}") from None
        if summary["failed"]:
            raise SystemExit(f"fourreal batch: {summary['failed']} of {summary['items']} items failed; their logs "
                             f"are listed above and in {self.out / 'batch.json'}.")

    # ------------------------------------------------------------------ the batch
    def run(self) -> Dict[str, Any]:
        """Check the items, run the unfinished ones on Ray, write the report; returns batch.json's summary."""
        import ray

        items = read_items(self.prompts, parse_settings(self.settings))
        if self.out.exists() and not self.out.is_dir():
            raise BatchItemsError(f"--out {self.out} is a file; give a folder.")
        (self.out / "items").mkdir(parents=True, exist_ok=True)
        started = time.time()
        kept = [item for item in items if finished_result(item_folder(self.out, item)) is not None]
        statuses: Dict[str, str] = {item.name: ("done" if item in kept else "waiting") for item in items}
        errors: Dict[str, str] = {}
        CONSOLE.print(f"fourreal batch: {len(items)} items from {self.prompts}, {len(kept)} finished before (kept)")
        local = self._start_ray()
        try:
            self._schedule([item for item in items if item not in kept], statuses, errors, started, items, kept)
        except KeyboardInterrupt:
            CONSOLE.print("[yellow]fourreal batch: interrupted; running items cancelled, finished ones kept. Run the "
                          "same command again to resume.")
            for name, status in statuses.items():
                if status in ("running", "waiting"):
                    statuses[name] = "interrupted"
            self._report(items, statuses, errors, started, kept)
            raise SystemExit(130) from None
        finally:
            if local:
                ray.shutdown()
        summary = self._report(items, statuses, errors, started, kept)
        for item in items:
            if statuses[item.name] == "failed":
                CONSOLE.print(f"[red]failed: {item.name} ({item.where}): {errors.get(item.name, '')}")
        CONSOLE.print(f"fourreal batch: {summary['done']} done, {summary['failed']} failed in "
                      f"{summary['wall_seconds']:.0f} s; gallery: {self.out / 'index.html'}")
        return summary

    def _start_ray(self) -> bool:
        """Connect to the cluster or start a local instance; True when it is local (shut down at the end)."""
        import ray

        local = self.ray_address is None and not os.environ.get("RAY_ADDRESS")
        options: Dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING)
        if local:
            options.update(num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=self.dashboard)
        elif self.num_cpus is not None or self.num_gpus is not None:
            raise BatchItemsError("--num-cpus / --num-gpus size a local Ray instance; a cluster's resources are set "
                                  "by `ray start` on each machine.")
        ray_started = time.time()
        context = ray.init(address=self.ray_address, **options)
        self._ray_start_seconds = round(time.time() - ray_started, 2)
        resources = self._resources = ray.cluster_resources()
        if self.gpus_per_item is None:
            self.gpus_per_item = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        for name, need in (("CPU", self.cpus_per_item), ("GPU", self.gpus_per_item)):
            if local and need > resources.get(name, 0):
                ray.shutdown()
                raise BatchItemsError(f"each item asks for {need:g} {name}(s) but this machine gives Ray "
                                      f"{resources.get(name, 0):g}; lower --{name.lower()}s-per-item.")
        dashboard = getattr(context, "dashboard_url", None)
        CONSOLE.print(f"Ray: {'local instance' if local else self.ray_address or os.environ.get('RAY_ADDRESS')}, "
                      f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs; each item "
                      f"{self.cpus_per_item:g} CPU(s), {self.gpus_per_item:g} GPU(s)"
                      + (f"; dashboard http://{dashboard}" if dashboard else ""))
        return local

    def _schedule(self, to_run: List[BatchItem], statuses: Dict[str, str], errors: Dict[str, str],
                  started: float, items: List[BatchItem], kept: List[BatchItem]) -> None:
        import ray
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        task = ray.remote(run_item)
        resources = dict(num_cpus=self.cpus_per_item, num_gpus=self.gpus_per_item, max_retries=self.max_retries,
                         retry_exceptions=True)
        waiting = list(to_run)
        running: Dict[Any, BatchItem] = {}
        progress = Progress(TextColumn("[bold]{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=CONSOLE)
        overall = progress.add_task("items", total=len(items), status="", completed=len(items) - len(to_run))
        rows: Dict[str, Any] = {}
        with progress:
            while waiting or running:
                while waiting and (self.max_running is None or len(running) < self.max_running):
                    item = waiting.pop(0)
                    folder = item_folder(self.out, item)
                    reference = task.options(name=f"fourreal-item:{item.name}", **resources).remote(
                        item.name, str(folder.resolve()), item.arguments, os.getcwd())
                    running[reference] = item
                try:
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                except KeyboardInterrupt:
                    # an item whose last attempt ended just before Ctrl-C is reported as what it is (done or
                    # failed), not as interrupted: its result may already be here
                    ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                    self._collect(ready, running, statuses, errors, progress, rows)
                    raise
                self._collect(ready, running, statuses, errors, progress, rows)
                if ready:
                    self._report(items, statuses, errors, started, kept)
                for item in running.values():
                    self._show_running(progress, rows, item, statuses, started)
                counts = _counts(statuses)
                progress.update(overall, completed=counts["done"] + counts["failed"],
                                status=" · ".join(f"{counts[key]} {key}" for key in
                                                  ("done", "running", "failed", "waiting")))

    @staticmethod
    def _collect(ready: List[Any], running: Dict[Any, BatchItem], statuses: Dict[str, str], errors: Dict[str, str],
                 progress, rows: Dict[str, Any]) -> None:
        """Record the outcome of each finished task (done, or failed with its item's error) and drop its row."""
        import ray

        for reference in ready:
            item = running.pop(reference)
            try:
                ray.get(reference)
                statuses[item.name] = "done"
            except ray.exceptions.RayError as error:
                statuses[item.name] = "failed"
                errors[item.name] = _error_text(error)
            if item.name in rows:
                progress.remove_task(rows.pop(item.name))

    def _show_running(self, progress, rows: Dict[str, Any], item: BatchItem, statuses: Dict[str, str],
                      started: float) -> None:
        """An item is running once an attempt of this batch has started; its row shows its current step."""
        folder = item_folder(self.out, item)
        attempts = [attempt for attempt in attempts_of(folder) if attempt.get("started", 0) >= started]
        if not attempts:
            return
        statuses[item.name] = "running"
        current = run_status(folder).get("current") or "starting"
        text = f"{current} (attempt {len(attempts)})" if len(attempts) > 1 else current
        if item.name not in rows:
            rows[item.name] = progress.add_task(f"  {item.name}", total=None, status=text)
        progress.update(rows[item.name], status=text)

    def _report(self, items: List[BatchItem], statuses: Dict[str, str], errors: Dict[str, str], started: float,
                kept: List[BatchItem]) -> Dict[str, Any]:
        entries = [item_report(self.out, item, statuses[item.name], errors.get(item.name)) for item in items]
        wall = time.time() - started
        counts = _counts(statuses)
        newly_done = counts["done"] - len(kept)
        summary = {
            "items": len(items), **counts, "kept": len(kept), "started": started, "updated": time.time(),
            "wall_seconds": round(wall, 1),
            "items_per_hour": round(newly_done / (wall / 3600.0), 2) if newly_done and wall > 0 else None,
            "per_item": {"cpus": self.cpus_per_item, "gpus": self.gpus_per_item, "max_retries": self.max_retries},
            "ray": {"address": self.ray_address or "local", "resources": getattr(self, "_resources", None),
                    "start_seconds": getattr(self, "_ray_start_seconds", None)},
            "prompts": str(self.prompts),
        }
        write_report(self.out, entries, summary)
        return summary


def _counts(statuses: Dict[str, str]) -> Dict[str, int]:
    values = list(statuses.values())
    return {key: values.count(key) for key in ("done", "failed", "running", "waiting", "interrupted")}


def _error_text(error: Exception) -> str:
    """The item's own error (ItemFailed: exit code, log, tail) rather than Ray's wrapper and traceback."""
    import ray

    cause = getattr(error, "cause", None)
    if isinstance(error, ray.exceptions.RayTaskError) and cause is not None:
        return str(cause)
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return "its worker died on every attempt (killed, out of memory, or a lost machine); see its attempt logs."
    return str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
