"""`fourreal run` end to end on the CPU: tiny random-weight LTX pipeline -> nominal poses -> both training stages ->
orbit-through-time video.

The video model's weights are random, so the generated frames are noise and SfM could not pose them: the scene gets
the nominal poses (`--poses nominal`), and the runs are a few dozen steps at 32 x 32 pixels. Quality is not asserted
(nothing meaningful can be learnt from noise); the test checks that every stage runs and that each stage's output
loads: both config.yml files through nerfstudio's `eval_setup`, the held-out metrics are written and the video
decodes. A second run must skip every step. The run itself is conftest.py's `finished_run` (test_batch.py reuses it).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import RUN_STEPS
from fourreal_ns.run_all import RunAll
from fourreal_ns.runs import run_folder

STEPS = RUN_STEPS


def test_run_produces_loadable_stages_and_a_video(finished_run: RunAll) -> None:
    import av
    from nerfstudio.utils.eval_utils import eval_setup

    from fourreal_ns.data.scene import load_scene

    scene = load_scene(finished_run.scene)
    assert len(scene.frames_of("freeze")) == 25 and len(scene.frames_of("reference")) == 9
    transforms = json.loads((finished_run.scene / "transforms.json").read_text())
    assert transforms["poses"]["source"] == "nominal"
    assert transforms["generation"]["prompt"] == finished_run.prompt

    for method in ("4real-canonical", "4real-motion"):
        config = run_folder(finished_run.runs, method) / "config.yml"
        _, pipeline, checkpoint, step = eval_setup(config, test_mode="inference")
        assert checkpoint.exists() and step == STEPS - 1
        assert pipeline.model.num_points > 0

    with av.open(str(finished_run.video)) as container:
        frames = [frame for frame in container.decode(video=0)]
    assert len(frames) == 16

    metrics = json.loads(finished_run.metrics.read_text())
    assert np.isfinite(metrics["results"]["psnr"]) and metrics["method_name"] == "4real-motion"
    status = json.loads((finished_run.out / "run_status.json").read_text())
    assert status["finished"] and status["current"] is None
    assert [step["status"] for step in status["steps"].values()] == [
        "done", "done (nominal poses)", "done", "done", f"PSNR {metrics['results']['psnr']:.2f} dB", "done"]


def test_second_run_skips_every_step(finished_run: RunAll, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a finished step ran again")

    monkeypatch.setattr("fourreal_ns.runs.run_command", fail)  # every ns-train and ns-render of `fourreal run`
    monkeypatch.setattr("fourreal_ns.generate.video_models.LTXGenerator.__init__", fail)
    modified = finished_run.video.stat().st_mtime
    finished_run.run()
    assert finished_run.video.stat().st_mtime == modified


def test_bad_options_are_reported(tmp_path) -> None:
    command = RunAll(prompt="x", out=tmp_path / "o", schedule="paper", steps=10)
    with pytest.raises(SystemExit, match="short-cpu"):
        command.main()
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(SystemExit, match="is a file"):
        RunAll(prompt="x", out=a_file).main()


def test_refine_adds_re_upsampled_frames_and_fine_tunes(finished_run: RunAll, tmp_path) -> None:
    """Re-upsampling (paper 3.4) with a tiny random LTX VAE + latent upsampler: the frames are noise; the test checks
    the augmented scene (original frames + re-upsampled ones with their cameras and times) and that the fine-tuned
    run continues from the trained one."""
    from nerfstudio.utils.eval_utils import eval_setup
    from tiny_generators import save_tiny_ltx_upsampler

    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.refine import Refine

    upsampler = save_tiny_ltx_upsampler(tmp_path / "upsampler")
    motion = run_folder(finished_run.runs, "4real-motion") / "config.yml"
    refine = Refine(load_config=motion, out=tmp_path / "refined", model_id=finished_run.generation.model_id,
                    upsampler_id=str(upsampler), num_frames=9, denoise_strength=0.5, num_inference_steps=2,
                    schedule="short-cpu", steps=5)
    config = refine.run()

    scene = load_scene(tmp_path / "refined")
    original = load_scene(finished_run.scene)
    upsampled = [frame for frame in scene.frames_of("reference") if "upsampled" in frame.file_path]
    assert len(scene.frames) == len(original.frames) + 9 and len(upsampled) == 9
    assert [frame.time for frame in upsampled] == pytest.approx(list(np.linspace(0, 1, 9)))
    assert (upsampled[0].width, upsampled[0].height) == (32, 32)
    positions = np.stack([frame.transform_matrix[:3, 3] for frame in upsampled])
    assert np.linalg.norm(positions[0] - positions[-1]) > 0.1  # the camera moves

    _, _, _, step = eval_setup(config, test_mode="inference")
    assert step == STEPS + 5 - 1
