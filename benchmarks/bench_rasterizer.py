"""Speed and memory of `fourreal_ns.rendering.rasterize`: one forward + backward pass, as splatfacto trains.

Prints one JSON object to stdout. Cases: resolutions (64x36, 128x72, 256x144) x Gaussian counts (2k, 10k, 30k)
plus the goal case (64x36, 5k Gaussians), on the CPU (our PyTorch compositor) and, where CUDA is available, on the
GPU (the same function then calls gsplat 1.4.0). Each case: random Gaussians in the view frustum of one camera
(depth 2..8, world scales 0.01..0.06, SH degree 3, opacities 0.1..0.9: mostly visible, overlapping), rendered
"RGB+ED" with packed=False and absgrad=True as splatfacto calls it, L1 loss to a random image, backward.
Reported: median milliseconds over `--repeats` runs after one warm-up run, and peak memory:
- CPU: the process's peak resident set size (VmHWM) during the case; where Linux lets us reset the peak
  (`/proc/self/clear_refs` "5") it is the case's own peak, otherwise the process's running maximum from
  `resource.getrusage` (then only ever growing: read it as an upper bound);
- CUDA: `torch.cuda.max_memory_allocated` during the case (peak stats reset per case).

    python benchmarks/bench_rasterizer.py            # full grid (~1-2 min on 2 idle cores)
    python benchmarks/bench_rasterizer.py --quick    # one small case + the goal case, one repeat
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from fourreal_ns.rendering import rasterize  # noqa: E402

RESOLUTIONS = ((64, 36), (128, 72), (256, 144))
COUNTS = (2000, 10000, 30000)
GOAL = ((64, 36), 5000)
HORIZONTAL_FOV_DEGREES = 60.0
SH_DEGREE = 3


def make_gaussians(n: int, width: int, height: int, device: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """N random Gaussians inside the frustum of a camera at the origin looking down +z (OpenCV)."""
    g = torch.Generator().manual_seed(seed)
    focal = width / (2.0 * math.tan(math.radians(HORIZONTAL_FOV_DEGREES) / 2.0))
    depth = torch.rand(n, generator=g) * 6.0 + 2.0
    x = (torch.rand(n, generator=g) * 2.0 - 1.0) * depth * (width / 2.0) / focal
    y = (torch.rand(n, generator=g) * 2.0 - 1.0) * depth * (height / 2.0) / focal
    means = torch.stack([x, y, depth], dim=1)
    log_scales = torch.rand(n, 3, generator=g) * (math.log(0.06) - math.log(0.01)) + math.log(0.01)
    sh = torch.randn(n, (SH_DEGREE + 1) ** 2, 3, generator=g) * 0.05
    sh[:, 0] = torch.rand(n, 3, generator=g) * 2.0 - 1.0
    K = torch.tensor([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    params = dict(
        means=means, quats=torch.randn(n, 4, generator=g), log_scales=log_scales,
        opacity_logits=torch.logit(torch.rand(n, generator=g) * 0.8 + 0.1), sh=sh,
    )  # fmt: skip
    out = {k: v.to(device).requires_grad_(True) for k, v in params.items()}
    out["viewmats"] = torch.eye(4, device=device)[None]
    out["Ks"] = K.to(device)[None]
    out["target"] = torch.rand(1, height, width, 3, generator=g).to(device)
    return out


def step(gaussians: Dict[str, torch.Tensor], width: int, height: int) -> int:
    """One forward + backward; returns how many Gaussians were visible (radius > 0)."""
    for key in ("means", "quats", "log_scales", "opacity_logits", "sh"):
        gaussians[key].grad = None
    render, alpha, info = rasterize(
        means=gaussians["means"], quats=gaussians["quats"], scales=torch.exp(gaussians["log_scales"]),
        opacities=torch.sigmoid(gaussians["opacity_logits"]), colors=gaussians["sh"],
        viewmats=gaussians["viewmats"], Ks=gaussians["Ks"], width=width, height=height, packed=False,
        near_plane=0.01, far_plane=1e10, render_mode="RGB+ED", sh_degree=SH_DEGREE, sparse_grad=False,
        absgrad=True, rasterize_mode="classic",
    )  # fmt: skip
    if info["means2d"].requires_grad:
        info["means2d"].retain_grad()  # as gsplat's DefaultStrategy.step_pre_backward does
    loss = (render[..., :3] - gaussians["target"]).abs().mean() + 0.01 * render[..., 3].mean()
    loss.backward()
    return int((info["radii"] > 0).sum())


def _read_vm_hwm_kib() -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_case(width: int, height: int, n: int, device: str, repeats: int) -> Dict[str, object]:
    gaussians = make_gaussians(n, width, height, device)
    can_reset = device == "cpu" and _reset_peak_rss()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    visible = step(gaussians, width, height)  # warm-up (allocations, CUDA kernel loading)
    _sync(device)
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(gaussians, width, height)
        _sync(device)
        times.append((time.perf_counter() - start) * 1000.0)
    result: Dict[str, object] = {
        "device": device, "width": width, "height": height, "num_gaussians": n, "visible_gaussians": visible,
        "forward_backward_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2), "repeats": repeats,
    }  # fmt: skip
    if device == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        hwm = _read_vm_hwm_kib() if can_reset else None
        if hwm is not None:
            result["peak_rss_mb"], result["peak_rss_scope"] = round(hwm / 1024, 1), "case"
        else:
            max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
            result["peak_rss_mb"], result["peak_rss_scope"] = round(max_rss_kib / 1024, 1), "process so far"
    return result


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small case and the goal case, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 5, quick 1)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (1 if args.quick else 5)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    cases: List[Tuple[Tuple[int, int], int, bool]] = []
    if args.quick:
        cases = [(RESOLUTIONS[0], COUNTS[0], False)]
    else:
        cases = [(resolution, n, False) for resolution in RESOLUTIONS for n in COUNTS]
    cases.append((GOAL[0], GOAL[1], True))

    results = []
    for device in devices:
        for (width, height), n, goal in cases:
            result = run_case(width, height, n, device, repeats)
            result["goal_case"] = goal
            results.append(result)
            print(f"{device} {width}x{height} {n}: {result['forward_backward_ms']} ms", file=sys.stderr)
    report = {
        "benchmark": "rasterizer_forward_backward",
        "quick": args.quick,
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "settings": {"sh_degree": SH_DEGREE, "render_mode": "RGB+ED", "packed": False, "absgrad": True,
                     "horizontal_fov_degrees": HORIZONTAL_FOV_DEGREES, "warmup_runs": 1},
        "goal": {"width": GOAL[0][0], "height": GOAL[0][1], "num_gaussians": GOAL[1]},
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
