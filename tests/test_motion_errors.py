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


def test_latest_checkpoint_of_a_run_folder_is_chosen(tmp_path):
    models = tmp_path / "nerfstudio_models"
    models.mkdir()
    for step in (99, 1000, 200):
        (models / f"step-{step:09d}.ckpt").write_bytes(b"")
    assert resolve_canonical_checkpoint(tmp_path).name == "step-000001000.ckpt"
    (tmp_path / "config.yml").write_text("")
    assert resolve_canonical_checkpoint(tmp_path / "config.yml").name == "step-000001000.ckpt"


def test_a_motion_run_or_another_model_is_refused(tmp_path):
    motion = tmp_path / "motion.ckpt"
    torch.save({"pipeline": {"_model.gauss_params.means": torch.zeros(1, 3),
                             "_model.temporal_deformation.canonical_code": torch.tensor(0.0)}}, motion)
    with pytest.raises(ValueError, match="is a 4real-motion run"):
        load_canonical_gaussians(motion)
    splatfacto = tmp_path / "splatfacto.ckpt"
    torch.save({"pipeline": {"_model.gauss_params.means": torch.zeros(1, 3)}}, splatfacto)
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
