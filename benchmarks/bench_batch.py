"""`fourreal batch` throughput on this machine: items per hour with the tiny random-weight LTX pipeline, for 1 and
2 items at a time, and what Ray adds per item.

Prints one JSON object. Each item is a whole `fourreal run` (generation at 32 x 32 with tiny random weights, nominal
poses, --steps / --motion-steps of the short CPU schedule, held-out metrics, a 16-frame orbit video): the time is
mostly the nerfstudio processes' start-up (ns-train twice, ns-eval, ns-render), as it would be for any small item.

- `direct`: one item as `python -m fourreal_ns.cli run` without Ray (OMP_NUM_THREADS=2), the baseline;
- `workers_1`: the batch with `--max-running 1 --cpus-per-item 2` (one item at a time, both cores);
- `workers_2`: `--cpus-per-item 1` (two at a time, one core each).
For each: wall seconds, items per hour (items / wall, Ray's start included), Ray's start, the mean seconds of an
item's `fourreal run` inside its worker, and Ray's overhead per item: (wall - Ray's start) / items - the mean
item seconds, for one item at a time (scheduling, worker start, the task's bookkeeping).

    python benchmarks/bench_batch.py             # 4 items, 10 steps a stage
    python benchmarks/bench_batch.py --items 2   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

PROMPTS = ["a panda playing guitar in a kitchen", "a red fox jumping over a log", "a lynx walking in the snow",
           "a robot watering plants", "a sailboat in a storm", "a cat knocking a cup off a table"]


def item_options(model: Path, steps: int) -> dict:
    return {"model_id": str(model), "poses": "nominal", "schedule": "short-cpu", "steps": steps,
            "motion_steps": steps, "render_frames": 16, "width": 32, "height": 32, "num_inference_steps": 2,
            "num_reference_frames": 9, "num_freeze_frames": 25}


def run_batch(folder: Path, items_file: Path, workers: int, items: int) -> dict:
    from fourreal_ns.batch.command import Batch
    from fourreal_ns.batch.worker import attempts_of

    out = folder / f"workers_{workers}"
    started = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # the batch's console; stdout is the JSON
        summary = Batch(prompts=items_file, out=out, num_cpus=2, cpus_per_item=2 / workers, max_running=workers,
                        max_retries=0, dashboard=False).run()
    wall = time.time() - started
    item_seconds = [attempt["ended"] - attempt["started"] for path in (out / "items").iterdir()
                    for attempt in attempts_of(path) if attempt.get("ended")]
    ray_start = summary["ray"]["start_seconds"]
    return {"done": summary["done"], "failed": summary["failed"], "wall_seconds": round(wall, 1),
            "items_per_hour": round(items / (wall / 3600), 1), "ray_start_seconds": ray_start,
            "mean_item_seconds": round(statistics.mean(item_seconds), 2),
            "ray_overhead_per_item_seconds": round((wall - ray_start) / items - statistics.mean(item_seconds), 2)
            if workers == 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="iterations of each training stage")
    args = parser.parse_args()
    from tiny_diffusers import save_tiny_ltx

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        model = save_tiny_ltx(folder / "tiny_ltx")
        options = item_options(model, args.steps)
        items_file = folder / "items.yaml"
        items_file.write_text(yaml.safe_dump({"defaults": options, "items": [
            {"prompt": PROMPTS[index % len(PROMPTS)], "seed": index} for index in range(args.items)]}))

        arguments = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
        started = time.time()
        subprocess.run([sys.executable, "-m", "fourreal_ns.cli", "run", "--out", str(folder / "direct"),
                        "--prompt", PROMPTS[0], *arguments], check=True, capture_output=True,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
        direct = round(time.time() - started, 2)
        results = {f"workers_{workers}": run_batch(folder, items_file, workers, args.items) for workers in (1, 2)}
    print(json.dumps({"benchmark": "bench_batch", "items": args.items, "steps_per_stage": args.steps,
                      "cpus": os.cpu_count(), "direct_seconds_per_item": direct, **results,
                      "speedup_2_vs_1_workers": round(results["workers_1"]["wall_seconds"]
                                                      / results["workers_2"]["wall_seconds"], 2)}, indent=1))


if __name__ == "__main__":
    main()
