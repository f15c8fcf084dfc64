"""The deformation network of 4Real (paper appendix D.3, after Deformable 3D Gaussians [67]).

One MLP maps a Gaussian's canonical position and a scalar code to offsets of its position, rotation and
(log-)scale:

    F(gamma(x), gamma(c)) -> (dx, dq, ds)

- gamma is the NeRF positional encoding [v, sin(2^k v), cos(2^k v)] for k < num_freqs, per coordinate;
- 8 fully connected layers of 256 units with ReLU, the encoded input concatenated again at layer 4;
- three linear heads without activation, initialised to zero so that training starts from the canonical scene.

The code c is a per-frame code (stage 1: the freeze-time frame's position along the orbit) or time (stage 2).
The field is exactly zero at the canonical code: the paper picks the canonical frame so that its deformation is
zero (section 3.3), and we make that exact rather than learned, as F(x, c) - F(x, c_canonical), so that it is also
continuous there: frames and times next to the canonical one move a little, never by a jump (`continuous_anchor`).
A field built with `canonical_code=None` has no such anchor (Deformable 3D Gaussians' latent canonical space), for
dynamic data trained from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from nerfstudio.configs.base_config import InstantiateConfig


def positional_encoding(values: Tensor, num_freqs: int) -> Tensor:
    """[..., D] -> [..., D * (1 + 2 * num_freqs)]: the identity, then sin and cos at frequencies 2^0 .. 2^(F-1)."""
    if num_freqs == 0:
        return values
    freqs = 2.0 ** torch.arange(num_freqs, device=values.device, dtype=values.dtype)
    scaled = values[..., None, :] * freqs[:, None]  # [..., F, D]
    encoded = torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=-2).flatten(-2)
    return torch.cat([values, encoded], dim=-1)


class Deltas(NamedTuple):
    """Offsets for every Gaussian: position [N, 3], quaternion [N, 4] (wxyz, added before normalisation), log-scale
    [N, 3]."""

    means: Tensor
    quats: Tensor
    scales: Tensor

    @staticmethod
    def zeros(num: int, device: torch.device, dtype: torch.dtype = torch.float32) -> "Deltas":
        return Deltas(
            torch.zeros(num, 3, device=device, dtype=dtype),
            torch.zeros(num, 4, device=device, dtype=dtype),
            torch.zeros(num, 3, device=device, dtype=dtype),
        )


@dataclass
class DeformationFieldConfig(InstantiateConfig):
    """Shape of the deformation MLP (appendix D.3)."""

    _target: Type = field(default_factory=lambda: DeformationField)
    depth: int = 8
    """Number of hidden fully connected layers (paper: 8)."""
    width: int = 256
    """Units per hidden layer (paper: 256)."""
    skip_layer: int = 4
    """The encoded input is concatenated to the input of this layer (paper: the fourth)."""
    position_freqs: int = 10
    """Positional-encoding frequencies for the canonical position x (Deformable 3DGS: 10)."""
    code_freqs: int = 6
    """Positional-encoding frequencies for the per-frame code or time (Deformable 3DGS: 6 for time)."""
    scale_offsets: bool = True
    """Whether the field's scale head ds is applied. Appendix D.3's network (after Deformable 3DGS) has one, but the
    paper's deformations are (dx, dq) (eqs. 1 and 2 render the canonical scales) and eq. 3, the small-motion loss
    of stage 1, does not keep ds small; False returns ds = 0 (the head stays, untrained)."""
    continuous_anchor: bool = True
    """How the field is zero at the canonical code: True subtracts the network's output there, F(x, c) -
    F(x, c_canonical), so that the offsets also go to zero continuously next to the canonical frame or time (one
    network pass on twice the points); False only zeroes the canonical code itself, which leaves a jump between it
    and its neighbours."""


class DeformationField(nn.Module):
    """w(x, c) -> (dx, dq, ds), exactly zero wherever c equals the canonical code (if it has one)."""

    def __init__(self, config: DeformationFieldConfig, canonical_code: Optional[float] = 0.0) -> None:
        super().__init__()
        self.config = config
        # A buffer so that it follows the module to its device and is saved in checkpoints; NaN (equal to no code)
        # when the field has no canonical anchor.
        anchor = float("nan") if canonical_code is None else float(canonical_code)
        self.register_buffer("canonical_code", torch.tensor(anchor))
        input_dim = 3 * (1 + 2 * config.position_freqs) + (1 + 2 * config.code_freqs)
        self.layers = nn.ModuleList()
        for i in range(config.depth):
            in_dim = input_dim if i == 0 else config.width
            if i == config.skip_layer and i > 0:
                in_dim += input_dim
            self.layers.append(nn.Linear(in_dim, config.width))
        self.head_means = nn.Linear(config.width, 3)
        self.head_quats = nn.Linear(config.width, 4)
        self.head_scales = nn.Linear(config.width, 3)
        for head in (self.head_means, self.head_quats, self.head_scales):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, positions: Tensor, code: Tensor | float) -> Deltas:
        """positions [N, 3] (canonical means; the caller decides whether gradients flow into them), code: a scalar
        (one frame or time for every Gaussian) or [N] / [N, 1]."""
        num = positions.shape[0]
        code = torch.as_tensor(code, device=positions.device, dtype=positions.dtype).reshape(-1, 1)
        if code.shape[0] == 1 and bool(code[0, 0] == self.canonical_code):
            return Deltas.zeros(num, positions.device, positions.dtype)
        codes = [code]
        anchored = self.config.continuous_anchor and not bool(torch.isnan(self.canonical_code))
        if anchored:  # F(x, c) - F(x, c_canonical): zero at the canonical code and continuous around it
            codes.append(self.canonical_code.reshape(1, 1).to(positions.dtype))
        outputs = self.mlp(positions, codes)
        if anchored:
            outputs = [output[:num] - output[num:] for output in outputs]
        if code.shape[0] == 1:  # one code for all, not the canonical one: every Gaussian moves
            return Deltas(*outputs)
        # Per-Gaussian codes: zero exactly (not just up to rounding) where the code is the canonical one.
        moving = (code != self.canonical_code).to(positions.dtype)
        return Deltas(*(output * moving for output in outputs))

    def mlp(self, positions: Tensor, codes: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """The raw network F(gamma(x), gamma(c)) -> (dx, dq, ds) for positions [N, 3] and each code of `codes`
        ([N, 1], or [1, 1] for one code for all), stacked: [N * len(codes), ...].

        The layers that read the encoded input (the first and the skip layer) are split into their position and
        code columns, W [gamma(x), gamma(c)] = W_x gamma(x) + W_c gamma(c): the position part is computed once for
        all codes (the continuous anchor evaluates the same positions at two codes) and a single code costs one row.
        The same network as concatenating the inputs (tests/test_deformation.py compares them), on fewer FLOPs."""
        num, position_dim = positions.shape[0], 3 * (1 + 2 * self.config.position_freqs)
        encoded_position = positional_encoding(positions, self.config.position_freqs)
        encoded_codes = [positional_encoding(code, self.config.code_freqs) for code in codes]

        def encoded_input(layer: nn.Linear, offset: int) -> Tensor:
            """The layer's product with the encoded input (its columns from `offset` on), for every code, stacked."""
            weight = layer.weight[:, offset:]
            from_position = encoded_position @ weight[:, :position_dim].T
            from_codes = [encoded_code @ weight[:, position_dim:].T for encoded_code in encoded_codes]
            return torch.cat([(from_position + from_code).expand(num, -1) for from_code in from_codes])

        hidden = torch.relu(encoded_input(self.layers[0], 0) + self.layers[0].bias)
        for i, layer in enumerate(self.layers[1:], start=1):
            if i == self.config.skip_layer:
                width = hidden.shape[1]
                hidden = torch.relu(hidden @ layer.weight[:, :width].T + encoded_input(layer, width) + layer.bias)
            else:
                hidden = torch.relu(layer(hidden))
        # Without scale offsets the scale head is not evaluated (and stays untrained).
        scales = self.head_scales(hidden) if self.config.scale_offsets else hidden.new_zeros(hidden.shape[0], 3)
        return self.head_means(hidden), self.head_quats(hidden), scales


def concatenated_network(field: DeformationField, positions: Tensor, codes: Tensor) -> List[Tensor]:
    """The raw network of appendix D.3 written plainly, the encoded inputs concatenated at the first and the skip
    layer, for positions [N, 3] and codes [N, 1]: the reference that `DeformationField.mlp`'s split layers equal
    (tests/test_deformation.py) and are timed against (benchmarks/bench_deformation_field.py)."""
    config = field.config
    encoded = torch.cat([positional_encoding(positions, config.position_freqs),
                         positional_encoding(codes, config.code_freqs)], dim=-1)
    hidden = encoded
    for i, layer in enumerate(field.layers):
        if i == config.skip_layer and i > 0:
            hidden = torch.cat([hidden, encoded], dim=-1)
        hidden = torch.relu(layer(hidden))
    return [field.head_means(hidden), field.head_quats(hidden), field.head_scales(hidden)]
