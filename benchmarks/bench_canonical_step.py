"""Milliseconds per training step of the 4real-canonical model, through nerfstudio's Trainer.

Prints one JSON object to stdout (progress and nerfstudio's own messages go to stderr). A demo scene
(`make_demo_scene`, 96 x 54, ~3k seed points) is written to a temporary folder; the pipeline is built from
`fourreal_ns.method_configs.fourreal_canonical.config` with the short CPU options (`short_cpu_schedule`, applied
to the config in Python) and run for `--warmup` + `--steps` steps the way `Trainer.train` runs them
(callbacks before, `Trainer.train_iteration`: `pipeline.get_train_loss_dict` + backward + optimizer and scheduler
steps, callbacks after), without evaluation, checkpoints or a viewer. Every timed step has the deformation MLP on
(`deformation_start_step` 0) except the "no_deformation" variant, which shows the cost of the Gaussians alone.
The multi-view SDS window is moved past the run: this measures reconstruction steps. The runs are short, so no
densification happens (it starts at step 100): the Gaussian count stays at the seed count.

Variants: the paper's MLP (8 layers x 256, skip at 4), the test/CPU-schedule MLP (4 x 64, skip at 2), and no
deformation. Reported per variant: median, mean, min and max ms over the timed steps, Gaussian count, peak RSS
(process-wide running maximum from `resource.getrusage`; CUDA: `torch.cuda.max_memory_allocated` per variant).

    python benchmarks/bench_canonical_step.py           # 3 variants x (3 warm-up + 30 timed steps), ~1-2 min idle
    python benchmarks/bench_canonical_step.py --quick   # 1 warm-up + 3 timed steps each
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

VARIANTS = {
    "paper_mlp_8x256": {"deformation.depth": 8, "deformation.width": 256, "deformation.skip_layer": 4,
                        "deformation_start_step": 0},
    "test_mlp_4x64": {"deformation.depth": 4, "deformation.width": 64, "deformation.skip_layer": 2,
                      "deformation_start_step": 0},
    "no_deformation": {"deformation_start_step": 10**9},
}
NEVER = 10**9


def _cast(text: str, current: Any) -> Any:
    if isinstance(current, bool):
        if text not in ("True", "False"):
            raise ValueError(f"expected True/False, got {text!r}")
        return text == "True"
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if current is None:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return None if text == "None" else text
    return type(current)(text)


def apply_option(config: Any, option: str) -> None:
    """Apply one `--a.b-c=value` CLI option (as `short_cpu_schedule` returns them) to a config object."""
    assert option.startswith("--") and "=" in option, option
    dotted, text = option[2:].split("=", 1)
    parts = [part.replace("-", "_") for part in dotted.split(".")]
    target = config
    for part in parts[:-1]:
        target = target[part] if isinstance(target, dict) else getattr(target, part)
    last = parts[-1]
    if isinstance(target, dict):
        target[last] = _cast(text, target[last])
    else:
        if not hasattr(target, last):
            raise AttributeError(f"{option}: {type(target).__name__} has no field {last!r}")
        setattr(target, last, _cast(text, getattr(target, last)))


def set_model_field(model_config: Any, dotted: str, value: Any) -> None:
    target = model_config
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = getattr(target, part)
    setattr(target, parts[-1], value)


def build_config(scene: Path, output: Path, variant: Dict[str, Any], total_steps: int, device: str,
                 method: str = "canonical"):  # fmt: skip
    """The trainer config of `method` ("canonical" or "motion") with its short CPU options and `variant`'s
    model fields; SDS windows moved past the run."""
    from fourreal_ns import method_configs

    if method == "canonical":
        config = copy.deepcopy(method_configs.fourreal_canonical.config)
        options = method_configs.short_cpu_schedule(total_steps, 0)
    else:
        config = copy.deepcopy(method_configs.fourreal_motion.config)
        options = method_configs.short_cpu_motion_schedule(total_steps, with_canonical=False)
        # Reference frames only: freeze frames sit at the canonical time, where there is no motion to compute.
        config.pipeline.datamanager.dataparser.videos = ("reference",)
    for option in options:
        apply_option(config, option)
    model = config.pipeline.model
    model.num_downscales = 0  # every step at the scene's resolution (the short schedule halves it at first)
    if hasattr(model, "undeformed_fraction"):
        model.undeformed_fraction = 0.0  # every step deformed: the full cost of the per-frame deformation
    for dotted, value in variant.items():
        set_model_field(model, dotted, value)
    for window in ("multiview_sds_start_step", "multiview_sds_end_step", "sds_start_step", "sds_end_step"):
        if hasattr(model, window):
            setattr(model, window, NEVER)
    config.data = scene
    config.pipeline.datamanager.data = scene
    config.output_dir = output
    config.experiment_name = "bench"
    config.vis = "tensorboard"
    config.logging.local_writer.enable = False
    config.machine.device_type = device
    config.set_timestamp()
    return config


def run_variant(name: str, scene: Path, output: Path, warmup: int, steps: int, device: str,
                variants: Dict[str, Dict[str, Any]] = VARIANTS, method: str = "canonical") -> Dict[str, Any]:  # fmt: skip
    total = warmup + steps
    config = build_config(scene, output / name, variants[name], total, device, method)
    torch.manual_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    from nerfstudio.engine.callbacks import TrainingCallbackLocation

    times: List[float] = []
    for step in range(total):
        trainer.step = step
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.pipeline.train()
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        loss, _, _ = trainer.train_iteration(step)
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    model = trainer.pipeline.model
    deformation = getattr(model.config, "deformation", None)
    result: Dict[str, Any] = {
        "variant": name,
        "mlp": None if name in ("no_deformation", "static") or deformation is None
        else f"{deformation.depth}x{deformation.width}",
        "ms_per_step_median": round(statistics.median(times), 1),
        "ms_per_step_mean": round(statistics.fmean(times), 1),
        "ms_per_step_min": round(min(times), 1),
        "ms_per_step_max": round(max(times), 1),
        "timed_steps": steps,
        "warmup_steps": warmup,
        "num_gaussians": int(model.num_points),
        "final_loss": round(float(loss), 5),
        "peak_rss_mb_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if device == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    del trainer
    return result


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 warm-up + 3 timed steps per variant")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 30, quick 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 3, quick 1)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (3 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench_canonical_") as folder, contextlib.redirect_stdout(sys.stderr):
        from fourreal_ns.demo_scene import make_demo_scene

        scene = make_demo_scene(Path(folder) / "scene", seed=0)
        for name in args.variants:
            start = time.perf_counter()
            result = run_variant(name, scene, Path(folder) / "outputs", warmup, steps, args.device)
            result["wall_s"] = round(time.perf_counter() - start, 1)
            results.append(result)
            print(f"{name}: {result['ms_per_step_median']} ms/step", file=sys.stderr)
    report = {
        "benchmark": "canonical_train_step",
        "quick": args.quick,
        "device": args.device,
        "cuda_device": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "scene": "make_demo_scene(seed=0): 96 x 54, 32 freeze frames",
        "schedule": ("short_cpu_schedule options; deformation from step 0 on every step (except no_deformation); "
                     "full resolution; SDS off"),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
