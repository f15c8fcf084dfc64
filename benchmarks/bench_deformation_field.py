"""Milliseconds per forward + backward of the deformation field (models/deformation.py), as `DeformationField.mlp`
computes it (the layers reading the encoded input split into position and code columns, the position part once
for the continuous anchor's two codes) against the same network written plainly (encoded inputs concatenated at
the first and the skip layer, the anchored batch of twice the points), side by side in one process.

Prints one JSON object. One code for all Gaussians (as a training step), the anchor on, one thread unless --threads.

    python benchmarks/bench_deformation_field.py            # 4x64 and 8x256 at 5k and 20k points, ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fourreal_ns.models.deformation import DeformationField, DeformationFieldConfig, concatenated_network  # noqa: E402


def concatenated(field: DeformationField, positions: torch.Tensor, code: float) -> List[torch.Tensor]:
    """F(x, c) - F(x, c_canonical) as before the split: the plain network on the anchored batch [x; x]."""
    num = positions.shape[0]
    codes = torch.cat([torch.full((num, 1), code), torch.full((num, 1), float(field.canonical_code))])
    outputs = concatenated_network(field, torch.cat([positions, positions]), codes)
    return [output[:num] - output[num:] for output in outputs]


def time_ms(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sum(output.sum() for output in run()).backward()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--points", type=int, nargs="+", default=[5000, 20000])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for num in args.points:
        for depth, width, skip in ((4, 64, 2), (8, 256, 4)):
            torch.manual_seed(0)
            field = DeformationField(DeformationFieldConfig(depth=depth, width=width, skip_layer=skip), 0.0)
            for head in (field.head_means, field.head_quats, field.head_scales):
                torch.nn.init.normal_(head.weight, std=0.1)
            positions = torch.randn(num, 3, requires_grad=True)
            split = time_ms(lambda: field(positions, 0.3), args.repeats)
            plain = time_ms(lambda: concatenated(field, positions, 0.3), args.repeats)
            results.append({"points": num, "mlp": f"{depth}x{width}", "split_ms": round(split, 1),
                            "concatenated_ms": round(plain, 1), "speedup": round(plain / split, 2)})
    print(json.dumps({"threads": args.threads, "torch": torch.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
