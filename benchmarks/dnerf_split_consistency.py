"""Do D-NeRF lego's test frames agree with its train frames? A quality measurement, not a speed one.

The authors of Deformable 3D Gaussians [67] report (their repository's README) that D-NeRF's lego test images show
the shovel at other angles than the train images, and evaluate lego on its validation images instead. Our tiny
pack's test frames 61-80 are the ones tests/test_dnerf_e2e.py scores. This script trains 4real-motion twice with
that test's options (method_configs.short_cpu_dnerf_schedule) and compares PSNR per frame group:

1. `held_out`: frames 0-49 trained on, as in the test; frames 61-80 held out;
2. `test_trained_on`: frames 61-80 trained on as well (val frames 50-60 stay held out).

A test frame that agrees with the train frames fits about as well as a train frame of similar time once it is
trained on; one that shows another shovel pose cannot be fitted together with them and stays well below the train
frames of its time. (Every frame fits a little worse in the second run: the same steps are spread over 70 frames
instead of 50.) Each group is split at t = 0.6, after which the shovel has moved most. Prints one JSON object;
takes about 10 minutes on 2 CPU cores with the default 1500 steps.

    python benchmarks/dnerf_split_consistency.py [--npz ../shared/data/tiny_dnerf_data.npz] [--steps 1500]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LATE_TIME = 0.6


def train(scene: Path, output: Path, steps: int) -> Path:
    """`ns-train 4real-motion` on `scene` with the D-NeRF test's options; returns the run's config.yml."""
    from fourreal_ns.method_configs import short_cpu_dnerf_schedule

    command = [
        str(Path(sys.executable).parent / "ns-train"), "4real-motion", "--data", str(scene),
        "--output-dir", str(output), "--experiment-name", "lego", "--timestamp", "run", "--vis", "tensorboard",
        "--viewer.quit-on-train-completion", "True", "--steps-per-save", str(steps), *short_cpu_dnerf_schedule(steps),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ns-train failed on {scene}:\n{result.stderr[-3000:]}")
    return output / "lego" / "4real-motion" / "run" / "config.yml"


def psnr_by_group(config: Path, scene: Path, groups: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    """Mean PSNR as the D-NeRF test scores it (evaluation.frame_psnrs: each frame rendered at its camera and time)
    of each group of frames, whole and split at LATE_TIME. `groups` maps an image file path (as in transforms.json)
    to its group name."""
    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.evaluation import frame_psnrs, load_pipeline

    pipeline = load_pipeline(config)
    frames = [frame for frame in load_scene(scene).frames if frame.file_path in groups]
    scores_of_frames = frame_psnrs(pipeline, frames, use_time=True)
    summary = {}
    for group in sorted(set(groups.values())):
        chosen = [i for i, frame in enumerate(frames) if groups[frame.file_path] == group]
        times = np.array([frames[i].time for i in chosen])
        scores = np.array([scores_of_frames[i] for i in chosen])
        summary[group] = {
            "frames": len(chosen),
            "psnr": round(float(scores.mean()), 2),
            f"psnr_t_lt_{LATE_TIME}": round(float(scores[times < LATE_TIME].mean()), 2),
            f"psnr_t_ge_{LATE_TIME}": round(float(scores[times >= LATE_TIME].mean()), 2),
        }
    return summary


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npz", type=Path, default=REPO.parent / "shared" / "data" / "tiny_dnerf_data.npz",
                        help="the packed D-NeRF scene (default: ../shared/data/tiny_dnerf_data.npz)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps of each run (the test's: 1500)")
    args = parser.parse_args(argv)
    if not args.npz.is_file():
        parser.error(f"--npz {args.npz}: no such file; pass the path of tiny_dnerf_data.npz")

    from fourreal_ns.data.dnerf_import import import_dnerf

    result: Dict[str, object] = {"npz": str(args.npz), "steps": args.steps}
    with tempfile.TemporaryDirectory(prefix="dnerf_split_") as folder, contextlib.redirect_stdout(sys.stderr):
        for run in ("held_out", "test_trained_on"):
            scene = import_dnerf(args.npz, Path(folder) / run / "scene", show_progress=False)
            transforms_path = scene / "transforms.json"
            transforms = json.loads(transforms_path.read_text())
            groups = {}
            for frame in transforms["frames"]:
                if frame["split"] in ("train", "test"):
                    groups[frame["file_path"]] = frame["split"]
                if run == "test_trained_on" and frame["split"] == "test":
                    frame["split"] = "train"
            transforms_path.write_text(json.dumps(transforms, indent=1))
            config = train(scene, Path(folder) / run / "runs", args.steps)
            result[run] = psnr_by_group(config, scene, groups)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
