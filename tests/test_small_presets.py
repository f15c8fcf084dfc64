"""The small-scene schedules (method_configs.adjust_steps, small_*_config, the 4real-*-small presets), the Gaussian
budget, the per-frame appearance correction and 4real-motion's refusal of a static scene: unit tests (seconds)."""

from __future__ import annotations

import pytest
import torch
import tyro

from fourreal_ns import method_configs


def field(config, option: str):
    value = config
    for part in option.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def test_adjust_steps_scales_every_step_count_in_one_place():
    paper = method_configs.canonical_trainer_config()
    config = method_configs.adjust_steps(method_configs.canonical_trainer_config(), 2000)
    assert config.max_num_iterations == 2000
    for name in ("deformation_start_step", "stop_split_at", "multiview_sds_start_step", "multiview_sds_end_step",
                 "warmup_length", "refine_every", "sh_degree_interval", "resolution_schedule"):
        assert getattr(config.pipeline.model, name) == getattr(paper.pipeline.model, name) // 10, name
    for name, group in config.optimizers.items():
        if group["scheduler"] is not None:
            assert group["scheduler"].max_steps == paper.optimizers[name]["scheduler"].max_steps // 10, name
    motion = method_configs.adjust_steps(method_configs.motion_trainer_config(), 200)
    assert (motion.pipeline.model.motion_fit_steps, motion.pipeline.model.growth_steps,
            motion.pipeline.model.sds_start_step) == (100, 50, 150)
    assert method_configs.adjust_steps(method_configs.canonical_trainer_config(), 10).pipeline.model.refine_every == 1


@pytest.mark.parametrize("stage", ["canonical", "motion"])
def test_the_short_schedules_command_line_sets_the_typed_small_config(stage):
    """The tests' and the demo's `ns-train` options are generated from the typed config: parsed as ns-train parses
    them, they give the same settings."""
    if stage == "canonical":
        base, wanted = method_configs.canonical_trainer_config(), method_configs.small_canonical_config(450)
        arguments, options = method_configs.short_cpu_schedule(450), method_configs.CANONICAL_SCHEDULE_OPTIONS
    else:
        base, wanted = method_configs.motion_trainer_config(), method_configs.small_motion_config(450, False)
        arguments = method_configs.short_cpu_motion_schedule(450, with_canonical=False)
        options = method_configs.MOTION_SCHEDULE_OPTIONS
    parsed = tyro.cli(tyro.conf.FlagConversionOff[type(base)], default=base, args=arguments)
    for option in options:
        assert field(parsed, option) == field(wanted, option), option
    assert parsed.pipeline.model.deformation.width == 64 and parsed.max_num_iterations == 450


def test_the_small_presets_are_registered_under_their_names():
    from nerfstudio.configs.method_configs import all_methods

    for name, steps in (("4real-canonical-small", method_configs.SMALL_CANONICAL_STEPS),
                        ("4real-motion-small", method_configs.SMALL_MOTION_STEPS)):
        config = all_methods[name]
        assert config.method_name == name and config.max_num_iterations == steps
        assert config.pipeline.model.max_gaussians == method_configs.SMALL_MAX_GAUSSIANS
        assert config.pipeline.guidance.enabled == torch.cuda.is_available()  # SDS on CUDA only
    assert all_methods["4real-canonical"].max_num_iterations == method_configs.CANONICAL_STEPS


def small_canonical_model(count: int, **options):
    from nerfstudio.data.scene_box import SceneBox

    from fourreal_ns.models.canonical import FourRealCanonicalModelConfig
    from fourreal_ns.models.deformation import DeformationFieldConfig

    config = FourRealCanonicalModelConfig(num_random=count, deformation=DeformationFieldConfig(depth=2, width=16),
                                          **options)
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=4,
                         metadata={"canonical": {"time": 0.0, "freeze_frame": 1}, "num_freeze_views": 4})
    model.optimizers = {name: torch.optim.Adam([param], lr=1e-3) for name, param in model.gauss_params.items()}
    return model


def test_the_gaussian_budget_removes_the_least_opaque():
    model = small_canonical_model(300, max_gaussians=200)
    opacities = torch.linspace(-4.0, 4.0, 300)[torch.randperm(300)]
    model.gauss_params["opacities"].data[:] = opacities[:, None]
    sum(param.sum() for param in model.gauss_params.values()).backward()
    for optimizer in model.optimizers.values():
        optimizer.step()  # Adam now holds per-Gaussian moments, which the removal must shrink too
    kept_threshold = torch.sort(model.opacities.detach().flatten(), descending=True).values[199]
    assert model.enforce_gaussian_budget() == 100
    assert model.num_points == 200
    assert float(model.opacities.detach().min()) >= float(kept_threshold)
    moments = [state["exp_avg"].shape[0] for optimizer in model.optimizers.values()
               for state in optimizer.state.values()]
    assert len(moments) == 6 and set(moments) == {200}
    assert model.enforce_gaussian_budget() == 0
    unlimited = small_canonical_model(300)
    assert unlimited.enforce_gaussian_budget() == 0 and unlimited.num_points == 300


def test_appearance_is_learned_per_frame_and_interpolated_for_held_out_frames():
    from fourreal_ns.models.appearance import FrameAppearance

    appearance = FrameAppearance(num_views=5, canonical_view=0)
    rgb = torch.rand(4, 4, 3)
    with torch.no_grad():
        appearance.transforms[:, :, 3] = torch.arange(5.0)[:, None] * 0.1  # frame k: + 0.1 k
    assert torch.equal(appearance(rgb, 0, training=True), rgb)  # the canonical frame keeps its appearance
    for view in (1, 4):
        assert torch.allclose(appearance(rgb, view, training=True), rgb + 0.1 * view)
    # frames 2 and 3 were never trained: interpolated between 1 and 4 (its neighbours along the orbit)
    assert torch.allclose(appearance(rgb, 2, training=False), rgb + 0.1 * (1 + (4 - 1) / 3))
    assert torch.allclose(appearance(rgb, 3, training=False), rgb + 0.1 * (1 + 2 * (4 - 1) / 3))
    assert torch.allclose(appearance(rgb, 4, training=False), rgb + 0.4)
    loss = appearance(rgb, 1, training=True).sum()
    loss.backward()
    assert appearance.transforms.grad[1].abs().sum() > 0 and appearance.transforms.grad[2].abs().sum() == 0


def test_appearance_renders_the_canonical_look_for_the_viewer():
    """A camera without frame metadata (viewer, ns-render) is not changed by the correction."""
    from nerfstudio.cameras.cameras import Cameras

    model = small_canonical_model(50, appearance_correction=True)
    with torch.no_grad():
        model.appearance.transforms[:, :, 3] = 0.3
        model.appearance.trained[:] = True
    model.eval()
    camera = Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=20.0, fy=20.0, cx=8.0, cy=8.0, width=16, height=16)
    plain = model.get_outputs(camera)["rgb"]
    camera.metadata = {"view": torch.tensor([[2]]), "video_id": torch.tensor([[0]])}
    corrected = model.get_outputs(camera)["rgb"]
    assert torch.allclose(corrected, (plain + 0.3).clamp(0, 1), atol=1e-5)
    assert "appearance" in model.get_param_groups()


def test_4real_motion_refuses_a_static_scene():
    from nerfstudio.data.scene_box import SceneBox

    from fourreal_ns.models.motion import FourRealMotionModelConfig, StaticSceneError

    with pytest.raises(StaticSceneError, match="scenes/orbit is a static scene .*ns-train 4real-canonical --data "
                                               "scenes/orbit"):
        FourRealMotionModelConfig().setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])),
                                          num_train_data=1, metadata={"static": True, "scene": "scenes/orbit"})
