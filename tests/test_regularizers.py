"""Appendix B's regularisers against closed-form cases, and their gradients reaching the deformation field."""

from __future__ import annotations

import math

import torch

from fourreal_ns.models.deformation import DeformationField, DeformationFieldConfig, Deltas
from fourreal_ns.models.growth import FrozenPrefixStrategy, introduce_new_gaussians
from fourreal_ns.models.regularizers import (
    diff_loss,
    nearest_neighbours,
    norm_loss,
    quaternion_multiply,
    quaternion_to_matrix,
    rigid_loss,
    rotation_loss,
)


def random_cloud(num: int = 300, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    means = torch.rand(num, 3, generator=generator, dtype=torch.float64)
    quats = torch.nn.functional.normalize(torch.randn(num, 4, generator=generator, dtype=torch.float64), dim=-1)
    return means, quats


def axis_angle_quaternion(axis, angle: float) -> torch.Tensor:
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    return torch.cat([torch.tensor([math.cos(angle / 2)], dtype=torch.float64), math.sin(angle / 2) * axis])


def test_quaternion_helpers_agree():
    q1, q2 = axis_angle_quaternion([0, 0, 1], 0.3), axis_angle_quaternion([1, 1, 0], -0.7)
    product = quaternion_to_matrix(quaternion_multiply(q1, q2))
    assert torch.allclose(product, quaternion_to_matrix(q1) @ quaternion_to_matrix(q2), atol=1e-12)
    rotation = quaternion_to_matrix(axis_angle_quaternion([0, 0, 1], math.pi / 2))
    assert torch.allclose(rotation @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)  # fmt: skip


def test_rigid_motion_of_the_whole_cloud_costs_nothing():
    means, quats = random_cloud()
    graph = nearest_neighbours(means, k=20)
    turn = axis_angle_quaternion([0.2, 1.0, -0.4], 0.8)
    rotation = quaternion_to_matrix(turn)
    moved_means = means @ rotation.T + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    moved_quats = quaternion_multiply(turn.expand_as(quats), quats)
    assert rigid_loss(moved_means, moved_quats, means, quats, graph) < 1e-10
    assert rotation_loss(moved_quats, quats, graph) < 1e-10
    # A quaternion's sign is no motion.
    assert rotation_loss(-moved_quats, quats, graph) < 1e-10


def test_shear_costs_something():
    means, quats = random_cloud()
    graph = nearest_neighbours(means, k=20)
    shear = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert rigid_loss(means @ shear.T, quats, means, quats, graph) > 1e-3
    # Neighbours turning differently is penalised by L_rot.
    half = torch.arange(len(quats)) % 2 == 0
    turned = quats.clone()
    turned[half] = quaternion_multiply(axis_angle_quaternion([0, 0, 1], 0.5).expand(int(half.sum()), 4), quats[half])
    assert rotation_loss(turned, quats, graph) > 1e-3


def test_neighbour_weights_follow_eq_9():
    means, _ = random_cloud(50)
    graph = nearest_neighbours(means, k=5, lambda_w=10.0)
    distances = (means[graph.indices] - means[:, None]).norm(dim=-1)
    assert torch.allclose(graph.weights, torch.exp(-10.0 * distances**2))
    assert graph.indices.shape == (50, 5) and not (graph.indices == torch.arange(50)[:, None]).any()
    adaptive = nearest_neighbours(means, k=5)
    assert torch.allclose((-torch.log(adaptive.weights)).mean() / 1.0, torch.tensor(1.0, dtype=torch.float64))


def test_diff_loss_is_zero_for_offsets_constant_in_time_and_norm_loss_is_l1():
    offsets = torch.randn(100, 3)
    assert diff_loss(offsets, offsets.clone()) == 0
    assert torch.isclose(diff_loss(offsets + torch.tensor([3.0, 4.0, 0.0]), offsets), torch.tensor(5.0))
    deltas = Deltas(torch.full((10, 3), -1.0), torch.full((10, 4), 0.5), torch.full((10, 3), 2.0))
    assert torch.isclose(norm_loss(deltas), torch.tensor(3.0 + 2.0 + 6.0))


def test_gradients_reach_the_deformation_field():
    torch.manual_seed(0)
    field = DeformationField(DeformationFieldConfig(depth=2, width=16, skip_layer=1), canonical_code=0.0)
    for head in (field.head_means, field.head_quats, field.head_scales):
        torch.nn.init.normal_(head.weight, std=0.1)  # leave the zero start (|0| has no gradient in torch)
    means, quats = random_cloud(200)
    means, quats = means.float(), quats.float()
    now, before = field(means, 0.6), field(means, 0.5)
    graph = nearest_neighbours(means, k=8)
    loss = (norm_loss(now) + diff_loss(now.means, before.means)
            + rigid_loss(means + now.means, quats + now.quats, means + before.means, quats + before.quats, graph)
            + rotation_loss(quats + now.quats, quats + before.quats, graph))  # fmt: skip
    loss.backward()
    for name, parameter in field.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_growth_copies_high_gradient_gaussians_and_keeps_the_frozen_prefix():
    num = 10
    params = {name: torch.nn.Parameter(torch.randn(num, dim)) for name, dim in (("means", 3), ("scales", 3),
                                                                               ("opacities", 1))}  # fmt: skip
    params["opacities"].data[:] = -10.0  # every Gaussian would be pruned for its opacity
    optimizers = {name: torch.optim.Adam([p], lr=1e-3) for name, p in params.items()}
    state = {"grad2d": torch.zeros(num), "count": torch.ones(num), "radii": None, "scene_scale": 1.0}
    state["grad2d"][[2, 7]] = 1.0
    assert introduce_new_gaussians(params, optimizers, state, grad_threshold=0.5) == 2
    assert params["means"].shape[0] == 12
    assert torch.equal(params["means"][10:], params["means"][[2, 7]])
    strategy = FrozenPrefixStrategy(prune_opa=0.01, reset_every=10**9, num_frozen=num)
    frozen = params["means"][:num].detach().clone()
    assert strategy.prune(params, optimizers, state, step=1) == 2  # only the two copies
    assert torch.equal(params["means"], frozen)
