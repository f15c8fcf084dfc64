"""One video SDS step inside FourRealPipeline with each backend's tiny random-weight pipeline (tests/tiny_diffusers.py,
saved to a temporary folder and loaded through the same `from_pretrained` path as real weights), on the CPU.

The 4real-motion pipeline on the demo scene (from scratch, no static warm-up, the SDS window from step 0): step 0 is
temporal SDS, step 1 multi-view. Each step's SDS term alone moves the Gaussians and the temporal deformation field,
and leaves the video model's networks without gradients. Then the run's checkpoint holds no guidance tensor, and
loading it as ns-viewer does never builds the guidance.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from tiny_diffusers import TINY_SAVERS

TINY_SDS_SIZE = (32, 32)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_pipelines_sds")
    return {name: saver(root / name) for name, saver in TINY_SAVERS.items()}


def motion_pipeline(scene: Path, backend: str, folder: Path, test_mode: str = "val"):
    from fourreal_ns.guidance.config import GuidanceConfig
    from fourreal_ns.method_configs import fourreal_motion

    config = copy.deepcopy(fourreal_motion.config)
    config.pipeline.datamanager.data = scene
    model = config.pipeline.model
    model.static_warmup_steps, model.sds_start_step, model.sds_end_step = 0, 0, 100
    model.deformation.depth, model.deformation.width, model.deformation.skip_layer = 2, 32, 1
    model.compute_lpips = False
    config.pipeline.sds.num_frames = 4
    config.pipeline.guidance = GuidanceConfig(backend=backend, model_id=str(folder), dtype="float32",
                                              sds_height=TINY_SDS_SIZE[0], sds_width=TINY_SDS_SIZE[1])  # fmt: skip
    pipeline = config.pipeline.setup(device="cpu", test_mode=test_mode, world_size=1, local_rank=0)
    pipeline.model.optimizers = {}  # the trainer hands them over; the densification pre-backward hook reads them
    return config, pipeline


@pytest.mark.parametrize("backend", ["ltx", "wan", "svd"])
def test_one_sds_step_moves_gaussians_and_deformation(demo_scene, tiny_folders, backend):
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only oversubscribe the cores
    try:
        _, pipeline = motion_pipeline(demo_scene, backend, tiny_folders[backend])
        pipeline.train()
        assert pipeline._guidance is None  # not built before the first SDS step
        for step, kind in ((0, "temporal"), (1, "multiview")):
            pipeline.model.step = step
            _, loss_dict, metrics = pipeline.get_train_loss_dict(step)
            assert set(name for name in loss_dict if name.startswith("sds_")) == {f"sds_{kind}"}
            for parameter in pipeline.parameters():
                parameter.grad = None
            loss_dict[f"sds_{kind}"].backward()
            model = pipeline.model
            for name in ("means", "features_dc", "opacities"):
                grad = model.gauss_params[name].grad
                assert grad is not None and grad.abs().sum() > 0, (kind, name)
            if kind == "temporal":  # frames at times other than the canonical one are deformed
                grads = [p.grad for p in model.temporal_deformation.parameters() if p.grad is not None]
                assert grads and sum(float(g.abs().sum()) for g in grads) > 0
            guidance = pipeline._guidance
            assert guidance is not None and guidance.text_encoder is None
            assert all(p.grad is None and not p.requires_grad for p in guidance.parameters())
            assert 0.0 < metrics["sds_sigma"] <= 1.0
        names = list(pipeline.state_dict().keys())
        assert not [name for name in names if "guidance" in name or "vae" in name or "text_encoder" in name]
    finally:
        torch.set_num_threads(previous_threads)


def test_loading_an_sds_run_never_builds_the_guidance(demo_scene, tiny_folders, tmp_path, monkeypatch):
    """A saved run with SDS on (as ns-viewer, ns-render and ns-export load it) renders without the video model."""
    from nerfstudio.utils.eval_utils import eval_setup

    from fourreal_ns.guidance.config import GuidanceConfig
    from fourreal_ns.evaluation import frame_camera
    from fourreal_ns.data.scene import load_scene

    config, pipeline = motion_pipeline(demo_scene, "ltx", tiny_folders["ltx"])
    config.output_dir, config.experiment_name, config.timestamp = tmp_path, "sds", "run"
    config.save_config()
    checkpoints = config.get_base_dir() / "nerfstudio_models"
    checkpoints.mkdir(parents=True)
    torch.save({"step": 0, "pipeline": pipeline.state_dict(), "optimizers": {}, "schedulers": {}, "scalers": {}},
               checkpoints / "step-000000000.ckpt")  # fmt: skip

    def refuse(*args, **kwargs):
        raise AssertionError("the guidance must not be built outside training")

    monkeypatch.setattr(GuidanceConfig, "build", refuse)
    _, loaded, _, _ = eval_setup(config.get_base_dir() / "config.yml", test_mode="inference")
    frame = load_scene(demo_scene).frames[0]
    with torch.no_grad():
        rgb = loaded.model.get_outputs_for_camera(frame_camera(frame, 0.5))["rgb"]
    # ns-viewer reads every attribute of the pipeline looking for GUI elements (nerfstudio's parse_object).
    from nerfstudio.viewer.utils import parse_object
    from nerfstudio.viewer.viewer_elements import ViewerElement

    parse_object(loaded, ViewerElement, "Custom Elements")
    assert rgb.shape[-1] == 3 and loaded._guidance is None


def test_missing_weights_fail_when_training_starts(demo_scene, tmp_path):
    """A wrong --pipeline.guidance.model-id stops the run at setup with the id and the fix, not thousands of steps
    later at the first SDS step; a viewer (test_mode "inference") does not care."""
    from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError

    missing = tmp_path / "no_such_model"
    with pytest.raises(GuidanceWeightsNotFoundError) as error:
        motion_pipeline(demo_scene, "ltx", missing)
    assert str(missing) in str(error.value) and "--pipeline.guidance.model-id" in str(error.value)
    motion_pipeline(demo_scene, "ltx", missing, test_mode="inference")



@pytest.mark.e2e
def test_a_motion_run_with_a_tiny_ltx_pipeline_runs_stage_two_sds_end_to_end(demo_scene, canonical_run, tiny_folders,
                                                                              tmp_path):
    """4real-motion from the session's canonical run through the trainer, with video SDS from step 2 to the end on a
    tiny random-weight LTX pipeline (loaded by `from_pretrained` from a folder): every step of the window runs its
    SDS kind (temporal and multi-view in turn) through `predict_x0` at the annealed noise level, high to low, the
    render of the canonical camera changes, and the run finishes with finite Gaussians. (The oracle of
    sds_oracle.py checks what SDS teaches; random weights teach nothing.)"""
    from nerfstudio.scripts.train import _set_random_seed

    from fourreal_ns.data.scene import load_scene
    from fourreal_ns.evaluation import frame_camera, load_pipeline
    from fourreal_ns.guidance.config import GuidanceConfig
    from fourreal_ns.guidance.sds import annealed_sigma
    from fourreal_ns.method_configs import small_motion_config

    steps, start = 8, 2
    config = small_motion_config(steps)
    config.pipeline.datamanager.data = demo_scene
    config.output_dir, config.experiment_name, config.timestamp = tmp_path, "sds", "run"
    config.vis, config.viewer.quit_on_train_completion, config.machine.device_type = "tensorboard", True, "cpu"
    config.steps_per_eval_image = config.steps_per_eval_all_images = 10**6
    model = config.pipeline.model
    model.canonical_checkpoint = canonical_run.parent
    model.sds_start_step, model.sds_end_step = start, steps
    config.pipeline.sds.num_frames = 4
    config.pipeline.guidance = GuidanceConfig(enabled=True, backend="ltx", model_id=str(tiny_folders["ltx"]),
                                              prompt="a ball rolling in a room", dtype="float32",
                                              sds_height=TINY_SDS_SIZE[0], sds_width=TINY_SDS_SIZE[1])  # fmt: skip
    config.save_config()  # as ns-train does
    _set_random_seed(config.machine.seed)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    pipeline = trainer.pipeline
    calls, seen = [], {}
    original_loss, original_guidance = pipeline.get_train_loss_dict, pipeline.get_guidance

    def get_guidance():
        guidance = original_guidance()
        if not hasattr(guidance, "counted"):
            predict_x0 = guidance.predict_x0

            def counted(frames, condition, sigma):
                calls.append((tuple(frames.shape), float(sigma)))
                return predict_x0(frames, condition, sigma)

            guidance.predict_x0, guidance.counted = counted, True
        return guidance

    def get_train_loss_dict(step: int):
        outputs, losses, metrics = original_loss(step=step)
        seen[step] = ([name for name in losses if name.startswith("sds_")], metrics.get("sds_sigma"))
        return outputs, losses, metrics

    pipeline.get_guidance, pipeline.get_train_loss_dict = get_guidance, get_train_loss_dict
    frame = next(f for f in load_scene(demo_scene).frames if f.video == "reference")
    pipeline.eval()
    with torch.no_grad():
        before = pipeline.model.get_outputs_for_camera(frame_camera(frame, 1.0))["rgb"].clone()
    trainer.train()
    print("SDS per step:", seen, "predict_x0 calls:", calls)
    assert [seen[step][0] for step in range(start)] == [[], []]
    kinds = [seen[step][0] for step in range(start, steps)]
    assert kinds == [["sds_temporal"], ["sds_multiview"]] * ((steps - start) // 2)
    sigmas = [seen[step][1] for step in range(start, steps)]
    expected = [annealed_sigma(step, start, steps, config.pipeline.sds) for step in range(start, steps)]
    assert sigmas == pytest.approx(expected) and sigmas == sorted(sigmas, reverse=True)
    assert [sigma for _, sigma in calls] == pytest.approx(expected)
    assert all(shape[0] == 4 and shape[-2:] == TINY_SDS_SIZE for shape, _ in calls)
    trained = load_pipeline(config.get_base_dir() / "config.yml")
    assert torch.isfinite(trained.model.means).all()
    with torch.no_grad():
        after = trained.model.get_outputs_for_camera(frame_camera(frame, 1.0))["rgb"]
    assert (after - before).abs().max() > 1e-4
