"""4real-motion's stage-2 wiring, step by step on the session's real 4real-canonical run (as test_growth_handover):

- the four regularisers of appendix B are in the training loss dict, weighted as E.1, and reach the motion field;
- the sampled, re-indexed regulariser path (`regularizer_samples`: anchors and their neighbours only, the graph
  re-indexed into them, `anchor_rows`) gives exactly the losses of the full computation on the same anchors;
- the shortcut "before = 0" where t - 1 is the canonical time equals the field's own value there (zero);
- after growth the joint fine-tune unfreezes the canonical Gaussians and densification stops.
"""

from __future__ import annotations

import pytest
import torch

from fourreal_ns.data.scene import load_scene
from fourreal_ns.evaluation import frame_camera, frame_image

pytestmark = pytest.mark.e2e

MOTION_FIT_STEPS, GROWTH_STEPS = 3, 3
WEIGHTS = {"norm_weight": 0.01, "diff_weight": 0.02, "rigid_weight": 0.03, "rot_weight": 0.04}


def make_model(canonical_run, demo_scene, **options):
    from nerfstudio.data.scene_box import SceneBox

    from fourreal_ns.models.deformation import DeformationFieldConfig
    from fourreal_ns.models.motion import FourRealMotionModelConfig

    scene = load_scene(demo_scene)
    config = FourRealMotionModelConfig(
        canonical_checkpoint=canonical_run.parent, motion_fit_steps=MOTION_FIT_STEPS, growth_steps=GROWTH_STEPS,
        densify_grad_thresh=1e-12, refine_every=1, warmup_length=0,
        deformation=DeformationFieldConfig(depth=2, width=32, skip_layer=1), **{**WEIGHTS, **options},
    )  # fmt: skip
    times = sorted({frame.time for frame in scene.frames if frame.video == "reference"})
    # One training image: gsplat pauses refinement for num_train_data + refine_every steps after an opacity reset.
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-3.0] * 3, [3.0] * 3])), num_train_data=1,
                         metadata={"canonical": {"time": scene.canonical["time"]},
                                   "reference_time_step": times[1] - times[0]})  # fmt: skip
    model.train()
    model.optimizers = {name: torch.optim.Adam([param], lr=1e-4) for name, param in model.gauss_params.items()}
    with torch.no_grad():  # a motion field that moves: its output layers start at zero
        for parameter in model.temporal_deformation.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)))
    return model, scene


def moving_frames(scene):
    return [frame for frame in scene.frames if frame.video == "reference" and frame.time != scene.canonical["time"]]


def test_the_regularisers_are_in_the_loss_and_reach_the_motion_field(canonical_run, demo_scene):
    from fourreal_ns.models.regularizers import diff_loss, norm_loss

    model, scene = make_model(canonical_run, demo_scene)
    frame = moving_frames(scene)[4]
    model.step = 0
    outputs = model.get_outputs(frame_camera(frame, frame.time))
    losses = model.get_loss_dict(outputs, {"image": frame_image(frame)})
    assert {"motion_norm", "motion_diff", "motion_rigid", "motion_rot"} <= set(losses)
    assert all(float(losses[name]) > 0 for name in ("motion_norm", "motion_diff", "motion_rigid", "motion_rot"))
    deltas = model.temporal_deformation(model.means.detach(), frame.time)
    assert float(losses["motion_norm"]) == pytest.approx(WEIGHTS["norm_weight"] * float(norm_loss(deltas)), rel=1e-5)
    before = model.temporal_deformation(model.means.detach(), model.previous_time(frame.time))
    assert float(losses["motion_diff"]) == pytest.approx(
        WEIGHTS["diff_weight"] * float(diff_loss(deltas.means, before.means)), rel=1e-5)
    regularisers = sum(losses[name] for name in ("motion_norm", "motion_diff", "motion_rigid", "motion_rot"))
    regularisers.backward()
    field_gradient = sum(float(p.grad.abs().sum()) for p in model.temporal_deformation.parameters()
                         if p.grad is not None)  # fmt: skip
    assert field_gradient > 0
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.gauss_params.values())


def test_sampled_regularisers_equal_the_full_computation_on_the_same_anchors(canonical_run, demo_scene):
    from fourreal_ns.models.regularizers import NeighbourGraph, diff_loss, rigid_loss, rotation_loss

    model, scene = make_model(canonical_run, demo_scene, regularizer_samples=300)
    time = moving_frames(scene)[6].time
    means, quats = model.means.detach(), model.quats.detach()
    now = model.temporal_deformation(means, time)
    torch.manual_seed(7)
    sampled = model.regularizer_losses(now, time)
    torch.manual_seed(7)
    anchors = torch.randperm(means.shape[0])[:300]  # what regularizer_losses drew
    before = model.temporal_deformation(means, model.previous_time(time))
    full_graph = model.neighbours()  # every Gaussian's neighbours, indices into all Gaussians: its anchors' rows
    graph = NeighbourGraph(full_graph.indices[anchors], full_graph.weights[anchors], full_graph.num_gaussians)
    full = {
        "motion_diff": WEIGHTS["diff_weight"] * diff_loss(now.means[anchors], before.means[anchors]),
        "motion_rigid": WEIGHTS["rigid_weight"] * rigid_loss(means + now.means, quats + now.quats,
                                                             means + before.means, quats + before.quats, graph,
                                                             anchors),  # fmt: skip
        "motion_rot": WEIGHTS["rot_weight"] * rotation_loss(quats + now.quats, quats + before.quats, graph, anchors),
    }
    for name, value in full.items():
        assert float(sampled[name]) == pytest.approx(float(value), rel=1e-4, abs=1e-9), name
        assert float(value) > 0


def test_the_zero_before_at_the_canonical_time_is_the_fields_own_value(canonical_run, demo_scene):
    model, scene = make_model(canonical_run, demo_scene)
    canonical_time = scene.canonical["time"]
    time = canonical_time + model.reference_time_step  # t - 1 is t_c
    assert model.previous_time(time) == pytest.approx(canonical_time)
    means = model.means.detach()
    at_canonical = model.temporal_deformation(means, canonical_time)
    assert all(torch.count_nonzero(offset) == 0 for offset in (at_canonical.means, at_canonical.quats,
                                                                at_canonical.scales))  # fmt: skip
    now = model.temporal_deformation(means, time)
    shortcut = model.regularizer_losses(now, time)
    model.config.anchor_canonical_time = False  # no shortcut: the field is evaluated at t_c
    evaluated = model.regularizer_losses(now, time)
    for name in ("motion_diff", "motion_rigid", "motion_rot"):
        assert float(shortcut[name]) == pytest.approx(float(evaluated[name]), rel=1e-6, abs=1e-12), name


def test_the_joint_stage_unfreezes_the_canonical_gaussians_and_stops_densifying(canonical_run, demo_scene):
    model, scene = make_model(canonical_run, demo_scene)
    frames = moving_frames(scene)
    num_canonical = model.means.shape[0]
    counts, frozen_gradients = {}, {}
    for step in range(MOTION_FIT_STEPS + GROWTH_STEPS + 3):
        frame = frames[(3 * step + 1) % len(frames)]
        model.step = step
        outputs = model.get_outputs(frame_camera(frame, frame.time))
        loss = sum(model.get_loss_dict(outputs, {"image": frame_image(frame)}).values())
        loss.backward()
        grad = model.means.grad
        frozen_gradients[model.stage(step)] = 0.0 if grad is None else float(grad[:num_canonical].abs().sum())
        for optimizer in model.optimizers.values():
            optimizer.step()
            optimizer.zero_grad()
        model.step_post_backward(step)
        counts[step] = model.means.shape[0]
    print(f"Gaussians per step: {counts}; gradient on the canonical ones per stage: {frozen_gradients}")
    assert int(model.num_frozen) == num_canonical
    assert frozen_gradients["motion-fit"] == 0 and frozen_gradients["growth"] == 0
    assert frozen_gradients["joint"] > 0  # unfrozen after growth
    growth = range(MOTION_FIT_STEPS, MOTION_FIT_STEPS + GROWTH_STEPS)
    assert len({counts[step] for step in growth}) > 1  # growth densifies (refine every step here)
    joint = [counts[step] for step in counts if model.stage(step) == "joint"]
    assert len(set(joint)) == 1 and joint[0] == counts[growth[-1]]  # the joint fine-tune does not
