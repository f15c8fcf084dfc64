"""4real-motion's clear errors: a wrong --pipeline.model.canonical-checkpoint, a checkpoint that is not a
4real-canonical run, and an unanchored motion field on top of canonical Gaussians."""

from __future__ import annotations

import pytest
import torch

from fourreal_ns.models.motion import (
    FourRealMotionModelConfig,
    load_canonical_gaussians,
    resolve_canonical_checkpoint,
)


def test_missing_path_names_the_option_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="canonical-checkpoint .*no such file.*ns-train 4real-canonical"):
        resolve_canonical_checkpoint(tmp_path / "nowhere")


def test_folder_without_checkpoints_is_a_clear_error(tmp_path):
    (tmp_path / "nerfstudio_models").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resolve_canonical_checkpoint(tmp_path)


def canonical_state(step: int, value: float) -> dict:
    from fourreal_ns.models.motion import GAUSSIAN_NAMES

    gaussians = {f"_model.gauss_params.{name}": torch.full((2, 3), value) for name in GAUSSIAN_NAMES}
    return {"step": step, "pipeline": {**gaussians, "_model.deformation.canonical_code": torch.zeros(1)}}


def test_the_newest_checkpoint_that_loads_is_chosen(tmp_path):
    """A run folder, its config.yml or its nerfstudio_models folder: the newest checkpoint that loads (a truncated
    one is skipped with a warning that names it; other files are ignored)."""
    models = tmp_path / "nerfstudio_models"
    models.mkdir()
    for step in (99, 200):
        torch.save(canonical_state(step, float(step)), models / f"step-{step:09d}.ckpt")
    (models / "step-000001000.ckpt").write_bytes(b"truncated")
    (models / "notes.txt").write_text("a stray file")
    (tmp_path / "config.yml").write_text("")
    for given in (tmp_path, tmp_path / "config.yml", models):
        assert resolve_canonical_checkpoint(given) == models
        with pytest.warns(UserWarning, match="step-000001000.ckpt cannot be read"):
            assert float(load_canonical_gaussians(given)["means"][0, 0]) == 200.0


def test_a_motion_run_or_another_model_is_refused(tmp_path):
    motion = tmp_path / "motion.ckpt"
    torch.save({"step": 0, "pipeline": {"_model.gauss_params.means": torch.zeros(1, 3),
                             "_model.temporal_deformation.canonical_code": torch.tensor(0.0)}}, motion)
    with pytest.raises(ValueError, match="is a 4real-motion run"):
        load_canonical_gaussians(motion)
    splatfacto = tmp_path / "splatfacto.ckpt"
    torch.save({"step": 0, "pipeline": {"_model.gauss_params.means": torch.zeros(1, 3)}}, splatfacto)
    with pytest.raises(ValueError, match="not a 4real-canonical checkpoint"):
        load_canonical_gaussians(splatfacto)


def test_unanchored_motion_needs_training_from_scratch(tmp_path):
    from nerfstudio.data.scene_box import SceneBox

    config = FourRealMotionModelConfig(canonical_checkpoint=tmp_path, anchor_canonical_time=False)
    with pytest.raises(ValueError, match="anchor-canonical-time False needs training from scratch"):
        config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1, metadata={})


def test_ns_train_with_a_missing_canonical_run_fails_at_setup(demo_scene, tmp_path):
    """Training needs stage 1's Gaussians: the error comes before any step and names the option (loading a
    finished run does not need them: test_motion_e2e::test_a_finished_run_opens_without_its_canonical_run)."""
    import subprocess

    from conftest import ns_script

    missing = tmp_path / "no_canonical_run"
    result = subprocess.run([
        ns_script("ns-train"), "4real-motion", "--data", str(demo_scene), "--output-dir", str(tmp_path / "out"),
        "--vis", "tensorboard", "--max-num-iterations", "2", "--pipeline.model.canonical-checkpoint", str(missing),
    ], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode != 0
    assert f"--pipeline.model.canonical-checkpoint {missing}: no such file" in result.stdout + result.stderr
    assert not list((tmp_path / "out").rglob("*.ckpt"))
