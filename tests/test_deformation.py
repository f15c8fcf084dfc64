"""The deformation MLP of appendix D.3: shape, zero initialisation, exact zero at the canonical code."""

import torch

from fourreal_ns.models.deformation import (DeformationField, DeformationFieldConfig, concatenated_network,
                                            positional_encoding)
from fourreal_ns.models.regularizers import small_motion_loss


def randomise_heads(field: DeformationField) -> None:
    for head in (field.head_means, field.head_quats, field.head_scales):
        torch.nn.init.normal_(head.weight, std=0.1)
        torch.nn.init.normal_(head.bias, std=0.1)


def test_positional_encoding_shape_and_values():
    values = torch.tensor([[0.5, -1.0, 2.0]])
    encoded = positional_encoding(values, 4)
    assert encoded.shape == (1, 3 * (1 + 2 * 4))
    assert torch.equal(encoded[:, :3], values)
    assert torch.allclose(encoded[0, 3], torch.sin(torch.tensor(0.5)))


def test_paper_architecture():
    field = DeformationField(DeformationFieldConfig())
    assert len(field.layers) == 8 and all(layer.out_features == 256 for layer in field.layers)
    input_dim = 3 * 21 + 13
    assert field.layers[0].in_features == input_dim
    assert field.layers[4].in_features == 256 + input_dim  # the input is concatenated again at layer 4


def test_heads_start_at_zero():
    torch.manual_seed(0)
    field = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2), canonical_code=0.5)
    deltas = field(torch.randn(50, 3), 0.1)
    for offset in deltas:
        assert torch.count_nonzero(offset) == 0


def test_exactly_zero_at_the_canonical_code_and_not_elsewhere():
    torch.manual_seed(0)
    field = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2), canonical_code=0.25)
    randomise_heads(field)
    positions = torch.randn(40, 3)
    at_canonical = field(positions, 0.25)
    assert all(torch.count_nonzero(offset) == 0 for offset in at_canonical)
    elsewhere = field(positions, 0.75)
    assert all(offset.abs().min() > 0 for offset in elsewhere)
    # Per-Gaussian codes: the canonical entries are exactly zero, the others move.
    codes = torch.tensor([0.25, 0.75] * 20)
    mixed = field(positions, codes)
    assert torch.count_nonzero(mixed.means[0::2]) == 0 and mixed.means[1::2].abs().min() > 0


def test_the_anchor_is_continuous():
    """continuous_anchor (default): F(x, c) - F(x, c_canonical) goes to zero next to the canonical code, the way a
    neighbouring frame or time should move a little; the masked field (False) jumps there instead."""
    torch.manual_seed(0)
    positions = torch.randn(40, 3)
    for continuous in (True, False):
        torch.manual_seed(1)
        field = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2, continuous_anchor=continuous),
                                 canonical_code=0.25)
        randomise_heads(field)
        near, far = field(positions, 0.25 + 1e-5).means.abs().max(), field(positions, 0.75).means.abs().max()
        assert far > 0.01
        assert (near < 1e-3 * far) if continuous else (near > 0.1 * far)


def test_scale_offsets_off_moves_and_turns_only():
    """scale_offsets=False (eqs. 1-2: (dx, dq) only): ds is zero and the scale head gets no gradient; dx and dq are
    the same as the full field's."""
    torch.manual_seed(0)
    positions = torch.randn(40, 3)
    fields = []
    for scale_offsets in (True, False):
        torch.manual_seed(1)
        field = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2, scale_offsets=scale_offsets),
                                 canonical_code=0.0)
        randomise_heads(field)
        fields.append(field)
    full, moves_and_turns = (field(positions, 0.5) for field in fields)
    assert full.scales.abs().min() > 0 and torch.count_nonzero(moves_and_turns.scales) == 0
    assert torch.equal(full.means, moves_and_turns.means) and torch.equal(full.quats, moves_and_turns.quats)
    sum(delta.sum() for delta in moves_and_turns).backward()
    assert fields[1].head_means.weight.grad.abs().sum() > 0
    assert fields[1].head_scales.weight.grad is None or torch.count_nonzero(fields[1].head_scales.weight.grad) == 0


def test_a_field_without_anchor_moves_at_every_code():
    """canonical_code=None (4real-motion from scratch with --pipeline.model.anchor-canonical-time False): no code is
    forced to zero, and the anchor survives a state_dict round trip."""
    torch.manual_seed(0)
    field = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2), canonical_code=None)
    randomise_heads(field)
    positions = torch.randn(40, 3)
    for code in (0.0, 0.25, torch.tensor([0.0, 0.5] * 20)):
        assert field(positions, code).means.abs().min() > 0
    reloaded = DeformationField(DeformationFieldConfig(depth=3, width=32, skip_layer=2), canonical_code=0.0)
    reloaded.load_state_dict(field.state_dict())
    assert reloaded(positions, 0.0).means.abs().min() > 0


def test_small_motion_loss_is_l1_and_reaches_the_network():
    torch.manual_seed(0)
    field = DeformationField(DeformationFieldConfig(depth=2, width=16, skip_layer=1))
    randomise_heads(field)
    deltas = field(torch.randn(10, 3), 0.5)
    loss = small_motion_loss(deltas)
    expected = deltas.means.abs().sum(-1).sum() + deltas.quats.abs().sum(-1).sum()  # eq. 3 sums over Gaussians
    assert torch.allclose(loss, expected)
    loss.backward()
    assert field.head_means.weight.grad.abs().sum() > 0 and field.layers[0].weight.grad.abs().sum() > 0


def test_the_split_input_layers_are_the_concatenated_network():
    """DeformationField.mlp splits the layers reading the encoded input into position and code columns (the
    position part once for both of the anchor's codes): the same offsets and gradients as the plain network."""
    torch.manual_seed(0)
    config = DeformationFieldConfig(depth=4, width=32, skip_layer=2)
    field = DeformationField(config, canonical_code=0.25)
    randomise_heads(field)
    positions = torch.randn(40, 3)
    per_gaussian = torch.rand(40, 1)
    per_gaussian[::5] = 0.25  # some at the canonical code
    for code in (torch.tensor([[0.7]]), per_gaussian):
        codes = code.expand(40, 1)
        expected = [moving - anchor for moving, anchor in zip(
            concatenated_network(field, positions, codes),
            concatenated_network(field, positions, torch.full_like(codes, 0.25)))]
        expected = [offset * (codes != 0.25) for offset in expected]
        got = field(positions, code if code.shape[0] > 1 else 0.7)
        for a, b in zip(got, expected):
            assert torch.allclose(a, b, atol=1e-6)
        weights = [torch.randn_like(offset) for offset in expected]
        grads = []
        for outputs in (got, expected):
            field.zero_grad()
            sum((output * weight).sum() for output, weight in zip(outputs, weights)).backward(retain_graph=True)
            grads.append([parameter.grad.clone() for parameter in field.parameters()])
        for a, b in zip(*grads):
            assert torch.allclose(a, b, atol=1e-5)
    unanchored = DeformationField(config, canonical_code=None)
    unanchored.load_state_dict({k: v for k, v in field.state_dict().items() if k != "canonical_code"}, strict=False)
    for a, b in zip(unanchored(positions, per_gaussian), concatenated_network(unanchored, positions, per_gaussian)):
        assert torch.allclose(a, b, atol=1e-6)
