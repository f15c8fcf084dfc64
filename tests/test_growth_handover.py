"""The hand-over from motion fit to growth (4real-motion, growth.py) at the last motion-fit step, driven step by step
on a real 4real-canonical run: new Gaussians are copied from the gradients the motion fit accumulated, whichever frame
that last step draws. A reference frame at the canonical time renders with every Gaussian frozen and no motion, so
nothing has a screen-space gradient there; the hand-over must still happen (it crashed in gsplat's `_update_state`
before, in about one motion run in 24 on the demo scene). And the kNN graph of the rigidity losses follows the set of
Gaussians."""

from __future__ import annotations

import pytest
import torch

from fourreal_ns.data.scene import load_scene
from fourreal_ns.evaluation import frame_camera, frame_image

pytestmark = pytest.mark.e2e

MOTION_FIT_STEPS = 3


@pytest.fixture
def motion_model(canonical_run, demo_scene):
    from nerfstudio.data.scene_box import SceneBox

    from fourreal_ns.models.deformation import DeformationFieldConfig
    from fourreal_ns.models.motion import FourRealMotionModelConfig

    scene = load_scene(demo_scene)
    config = FourRealMotionModelConfig(
        canonical_checkpoint=canonical_run.parent, motion_fit_steps=MOTION_FIT_STEPS, growth_steps=2,
        densify_grad_thresh=1e-12, deformation=DeformationFieldConfig(depth=2, width=32, skip_layer=1),
    )  # fmt: skip
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-3.0] * 3, [3.0] * 3])), num_train_data=8,
                         metadata={"canonical": {"time": scene.canonical["time"]}})  # fmt: skip
    model.train()
    model.optimizers = {name: torch.optim.Adam([param], lr=1e-4) for name, param in model.gauss_params.items()}
    return model, scene


def training_step(model, frame, step: int) -> None:
    """One training step as the trainer runs it: render, losses, backward, the Gaussians' optimisers (the field's is
    left out: nothing here depends on it), densification."""
    model.step = step
    outputs = model.get_outputs(frame_camera(frame, frame.time))
    loss = sum(model.get_loss_dict(outputs, {"image": frame_image(frame)}).values())
    loss.backward()
    for optimizer in model.optimizers.values():
        optimizer.step()
        optimizer.zero_grad()
    model.step_post_backward(step)


def test_handover_on_a_frame_at_the_canonical_time(motion_model):
    model, scene = motion_model
    reference = [frame for frame in scene.frames if frame.video == "reference"]
    at_canonical_time = [frame for frame in reference if frame.time == scene.canonical["time"]]
    moving = [frame for frame in reference if frame.time != scene.canonical["time"]]
    assert at_canonical_time and moving
    canonical_means = model.means.detach().clone()
    num_canonical = canonical_means.shape[0]

    for step in range(MOTION_FIT_STEPS - 1):  # the motion fit: screen-space gradients accumulate
        training_step(model, moving[3 * step + 5], step)
    assert model.means.shape[0] == num_canonical and int(model.num_frozen) == 0
    training_step(model, at_canonical_time[0], MOTION_FIT_STEPS - 1)  # the last motion-fit step: the hand-over

    assert int(model.num_frozen) == num_canonical
    assert torch.equal(model.means[:num_canonical], canonical_means)  # frozen, first in every tensor
    # every Gaussian the moving frames saw has a gradient above the (tiny) threshold: it gets a copy
    assert 0 < model.means.shape[0] - num_canonical <= num_canonical
    training_step(model, moving[0], MOTION_FIT_STEPS)  # growth goes on from here
    assert torch.equal(model.means[:num_canonical], canonical_means)


def test_neighbours_follow_the_set_of_gaussians(motion_model):
    """L_rigid / L_rot / L_diff's kNN graph (D.2) is built once per set of Gaussians: reused while the set stays,
    rebuilt when densification (or a same-size replacement, as a split-and-prune can leave) changes it."""
    from torch.nn import Parameter

    from fourreal_ns.models.regularizers import nearest_neighbours

    model, scene = motion_model
    graph = model.neighbours()
    assert graph.num_gaussians == model.means.shape[0] and model.neighbours() is graph
    with torch.no_grad():
        model.means[:5] += 0.1  # an optimiser step moves the positions in place: the same set
    assert model.neighbours() is graph

    permutation = torch.randperm(model.means.shape[0], generator=torch.Generator().manual_seed(0))
    model.gauss_params["means"] = Parameter(model.means.detach()[permutation])  # same count, another tensor
    rebuilt = model.neighbours()
    expected = nearest_neighbours(model.means.detach(), model.config.num_neighbours, model.config.neighbour_falloff)
    assert torch.equal(rebuilt.indices, expected.indices) and not torch.equal(rebuilt.indices, graph.indices)

    moving = [frame for frame in scene.frames if frame.video == "reference" and frame.time != scene.canonical["time"]]
    for step in range(MOTION_FIT_STEPS):  # the hand-over appends copies: another set
        training_step(model, moving[step + 4], step)
    assert model.neighbours().num_gaussians == model.means.shape[0] > graph.num_gaussians
