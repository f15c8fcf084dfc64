"""Regularisers on the deformation fields (paper eq. 3 and appendix B).

Stage 1 uses the small-motion loss: among the many pairs of (canonical scene, per-frame deformation) that explain
the freeze-time video equally well, prefer the one that moves the Gaussians least.

Stage 2 keeps the temporal deformation plausible (appendix B, after Dynamic 3D Gaussians [33] and CoGS [69]):
- L_norm (eq. 7): no motion where none is needed (the background);
- L_diff (eq. 8): each Gaussian's offset changes smoothly from one time to the next;
- L_rigid (eqs. 9-11): neighbours keep their relative positions in the rotating frame of each Gaussian;
- L_rot (eq. 12): neighbours turn by the same rotation.
Neighbours are the k nearest canonical positions, weighted by exp(-lambda_w d^2) (eq. 9); `NeighbourGraph`
holds them. Every loss here is a mean, so the weight 0.01 of appendix E.1 does not depend on the number of
Gaussians.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fourreal_ns.models.deformation import Deltas


def small_motion_loss(deltas: Deltas, reduction: str = "sum") -> Tensor:
    """Eq. 3: ||dx||_1 + ||dq||_1 over Gaussians, summed (as the paper writes it) or averaged."""
    per_gaussian = deltas.means.abs().sum(-1) + deltas.quats.abs().sum(-1)
    return per_gaussian.sum() if reduction == "sum" else per_gaussian.mean()


def norm_loss(deltas: Deltas) -> Tensor:
    """Eq. 7: (1/N) sum_i ||dx_i||_1 + ||dq_i||_1 + ||ds_i||_1 (appendix B calls it an L1 norm regularisation)."""
    return (deltas.means.abs().sum(-1) + deltas.quats.abs().sum(-1) + deltas.scales.abs().sum(-1)).mean()


def diff_loss(offsets_now: Tensor, offsets_before: Tensor) -> Tensor:
    """Eq. 8: (1/N) sum_i ||dx_{i,t} - dx_{i,t-1}||_2, position offsets [N, 3] at two consecutive times."""
    return (offsets_now - offsets_before).norm(dim=-1).mean()


# ------------------------------------------------------------------------------------------- neighbours
class NeighbourGraph(NamedTuple):
    """The k nearest canonical neighbours of every Gaussian and their weights w_ij = exp(-lambda_w d_ij^2)."""

    indices: Tensor  # [N, k] long
    weights: Tensor  # [N, k]
    num_gaussians: int


def nearest_neighbours(positions: Tensor, k: int, lambda_w: Optional[float] = None) -> NeighbourGraph:
    """kNN over canonical positions [N, 3] (the point itself excluded), with eq. 9's weights.

    lambda_w: the fall-off of eq. 9. The paper gives no value and [33] uses 2000 for its metric scenes; the right
    value depends on the scene's units, so None picks 1 / mean(d^2) over all neighbour pairs: a neighbour at the
    typical distance gets weight exp(-1)."""
    from sklearn.neighbors import NearestNeighbors

    num = positions.shape[0]
    k = min(k, num - 1)
    if k < 1:
        empty = torch.zeros(num, 0, device=positions.device)
        return NeighbourGraph(empty.long(), empty, num)
    points = positions.detach().cpu().double().numpy()
    distances, indices = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    distances, indices = distances[:, 1:], indices[:, 1:]
    squared = distances**2
    if lambda_w is None:
        lambda_w = 1.0 / max(float(squared.mean()), 1e-12)
    weights = np.exp(-lambda_w * squared)
    return NeighbourGraph(
        torch.from_numpy(indices).long().to(positions.device),
        torch.from_numpy(weights).to(device=positions.device, dtype=positions.dtype),
        num,
    )


# ------------------------------------------------------------------------------------------- rotations
def quaternion_to_matrix(quats: Tensor) -> Tensor:
    """Unit quaternions [..., 4] (wxyz) -> rotation matrices [..., 3, 3]."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))  # fmt: skip


def quaternion_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a * b of quaternions [..., 4] (wxyz)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quaternion_conjugate(q: Tensor) -> Tensor:
    """The inverse of a unit quaternion [..., 4] (wxyz)."""
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0], device=q.device, dtype=q.dtype)


# ------------------------------------------------------------------------------------------- ARAP losses
def rigid_loss(
    means_now: Tensor,
    quats_now: Tensor,
    means_before: Tensor,
    quats_before: Tensor,
    graph: NeighbourGraph,
    anchors: Optional[Tensor] = None,
) -> Tensor:
    """Eqs. 10-11: (1/(k |G|)) sum_i sum_j w_ij ||(x_j,t-1 - x_i,t-1) - R_i,t-1 R_i,t^-1 (x_j,t - x_i,t)||_2.

    means [M, 3] and (unnormalised) quaternions [M, 4] of the deformed Gaussians at times t and t-1; the sum runs
    over the Gaussians i = anchors (default: all; then graph rows are the Gaussians), graph rows [|G|, k] hold
    their neighbours' indices into the M Gaussians."""
    if graph.indices.shape[1] == 0:
        return means_now.sum() * 0.0
    anchors = torch.arange(means_now.shape[0], device=means_now.device) if anchors is None else anchors
    rotation_now = quaternion_to_matrix(quats_now[anchors])
    rotation_before = quaternion_to_matrix(quats_before[anchors])
    relative = rotation_before @ rotation_now.transpose(-1, -2)  # R_i,t-1 R_i,t^-1  [G, 3, 3]
    offsets_now = means_now[graph.indices] - means_now[anchors, None, :]  # x_j,t - x_i,t  [G, k, 3]
    offsets_before = means_before[graph.indices] - means_before[anchors, None, :]
    carried = torch.einsum("nab,nkb->nka", relative, offsets_now)
    return (graph.weights * (offsets_before - carried).norm(dim=-1)).mean()


def rotation_loss(
    quats_now: Tensor, quats_before: Tensor, graph: NeighbourGraph, anchors: Optional[Tensor] = None
) -> Tensor:
    """Eq. 12: (1/(k |G|)) sum_i sum_j w_ij ||q_j,t q_j,t-1^-1 - q_i,t q_i,t-1^-1||_2 with normalised quaternions
    (anchors and graph as `rigid_loss`).

    A quaternion and its negative are the same rotation; each relative rotation is taken with w >= 0 so that a
    sign flip is not counted as motion."""
    if graph.indices.shape[1] == 0:
        return quats_now.sum() * 0.0
    anchors = torch.arange(quats_now.shape[0], device=quats_now.device) if anchors is None else anchors
    now, before = F.normalize(quats_now, dim=-1), F.normalize(quats_before, dim=-1)
    turn = quaternion_multiply(now, quaternion_conjugate(before))  # [M, 4]
    turn = turn * torch.where(turn[:, :1] < 0, -1.0, 1.0)
    return (graph.weights * (turn[graph.indices] - turn[anchors, None, :]).norm(dim=-1)).mean()
