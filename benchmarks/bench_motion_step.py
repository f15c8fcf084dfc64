"""Milliseconds per training step of the 4real-motion model, with and without the rigidity losses.

Prints one JSON object to stdout. Same harness as bench_canonical_step.py (nerfstudio's Trainer step loop on the
96 x 54 demo scene, no evaluation or checkpoints), with 4real-motion's short CPU options in from-scratch mode (no
canonical run needed), reference frames only and the static warm-up set to 0, so every timed step deforms the
Gaussians in time (freeze frames sit at the canonical time, where there is no motion to compute). The
"static" variant never leaves the warm-up: the cost of the Gaussians alone, the baseline of the issue's goal
(motion + regularisers <= 1.3 x static on CUDA).

Variants: the paper's MLP (8 x 256) and the test MLP (4 x 64), each with all four regularisers (L_norm, L_diff,
L_rigid, L_rot; the test MLP with the CPU schedule's 2048 sampled Gaussians, the paper MLP with every Gaussian)
and without the rigidity pair (L_rigid, L_rot weights 0), plus "static".

    python benchmarks/bench_motion_step.py           # 5 variants x (3 warm-up + 30 timed steps)
    python benchmarks/bench_motion_step.py --quick   # 1 warm-up + 3 timed steps each
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_canonical_step import run_variant  # noqa: E402

PAPER_MLP = {"deformation.depth": 8, "deformation.width": 256, "deformation.skip_layer": 4}
TEST_MLP = {"deformation.depth": 4, "deformation.width": 64, "deformation.skip_layer": 2}
NO_RIGIDITY = {"rigid_weight": 0.0, "rot_weight": 0.0}
VARIANTS: Dict[str, Dict[str, Any]] = {
    "paper_mlp_all_regularisers": {**PAPER_MLP, "static_warmup_steps": 0, "regularizer_samples": None},
    "paper_mlp_no_rigidity": {**PAPER_MLP, **NO_RIGIDITY, "static_warmup_steps": 0},
    "test_mlp_all_regularisers": {**TEST_MLP, "static_warmup_steps": 0},
    "test_mlp_no_rigidity": {**TEST_MLP, **NO_RIGIDITY, "static_warmup_steps": 0},
    "static": {"static_warmup_steps": 10**9},
}


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 3 timed steps per variant")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 30, quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 3, quick 1)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    steps = args.steps or (3 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_motion_") as folder, contextlib.redirect_stdout(sys.stderr):
        from fourreal_ns.demo_scene import make_demo_scene

        scene = make_demo_scene(Path(folder) / "scene", seed=0)
        for name in args.variants:
            start = time.perf_counter()
            result = run_variant(name, scene, Path(folder) / "outputs", warmup, steps, args.device, VARIANTS,
                                 method="motion")  # fmt: skip
            result["wall_s"] = round(time.perf_counter() - start, 1)
            results.append(result)
            print(f"{name}: {result['ms_per_step_median']} ms/step", file=sys.stderr)
    static = next((r["ms_per_step_median"] for r in results if r["variant"] == "static"), None)
    if static:
        for result in results:
            result["relative_to_static"] = round(result["ms_per_step_median"] / static, 2)
    report = {
        "benchmark": "motion_train_step",
        "quick": args.quick,
        "device": args.device,
        "cuda_device": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "scene": "make_demo_scene(seed=0): 96 x 54, reference + freeze frames, 3000 seed points",
        "schedule": "short_cpu_motion_schedule (from scratch), static warm-up 0 (except static); SDS off",
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
