"""4real-motion's phases (models/motion_phases.py) and the growth densification on gsplat's public ops
(models/growth.py): the boundaries the model, the strategy and the SDS schedule read, and that growth never
touches the frozen canonical prefix."""

import torch

from fourreal_ns.models.growth import FrozenPrefixStrategy, accumulate_statistics
from fourreal_ns.models.motion_phases import GROWTH, JOINT, MOTION_FIT, STATIC_WARM_UP, MotionPhases


def test_phases_from_a_canonical_run_and_from_scratch():
    phases = MotionPhases(True, motion_fit_steps=10, growth_steps=5, static_warmup_steps=7, sds_start_step=12,
                          sds_end_step=16)  # fmt: skip
    assert [phases.phase(s) for s in (0, 9, 10, 14, 15, 100)] == [MOTION_FIT, MOTION_FIT, GROWTH, GROWTH, JOINT, JOINT]
    assert phases.growth_window() == (10, 15)
    assert [s for s in range(30) if phases.introduces_gaussians(s)] == [9]
    assert [s for s in range(20) if not phases.densifies(s)] == list(range(15, 20))
    assert [phases.sds_kind(s) for s in (11, 12, 13, 15, 16)] == [None, "temporal", "multiview", "multiview", None]
    assert phases.reference_frames_only(14) and not phases.reference_frames_only(15)
    scratch = MotionPhases(False, 10, 5, static_warmup_steps=7, sds_start_step=0, sds_end_step=0)
    assert [scratch.phase(s) for s in (0, 6, 7, 12)] == [STATIC_WARM_UP, STATIC_WARM_UP, JOINT, JOINT]
    assert not any(scratch.introduces_gaussians(s) for s in range(30))
    assert all(scratch.densifies(s) for s in range(30)) and not scratch.moves(6) and scratch.moves(7)


def _gaussians(num: int, log_scale: float):
    params = {
        "means": torch.nn.Parameter(torch.randn(num, 3)),
        "scales": torch.nn.Parameter(torch.full((num, 3), log_scale)),
        "quats": torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(num, 4), dim=-1)),
        "opacities": torch.nn.Parameter(torch.full((num, 1), 2.0)),
    }
    return params, {name: torch.optim.Adam([p], lr=1e-3) for name, p in params.items()}


def test_growth_clones_small_and_splits_large_free_gaussians_only():
    num, frozen = 8, 4
    params, optimizers = _gaussians(num, log_scale=-6.0)  # small: cloned
    params["scales"].data[[5]] = 0.0  # large: split
    means2d = torch.zeros(1, num, 2, requires_grad=True)
    (means2d * torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])[None, :, None]).sum().backward()
    info = {"means2d": means2d, "width": 4, "height": 4, "n_cameras": 1, "radii": torch.ones(1, num)}
    state = {"grad2d": None, "count": None, "radii": None, "scene_scale": 1.0}
    accumulate_statistics(state, info, num)
    assert torch.allclose(state["grad2d"][[1, 3, 5, 6]], torch.full((4,), 2 * 2 ** 0.5))
    assert torch.equal(state["count"], torch.ones(num))
    strategy = FrozenPrefixStrategy(grow_grad2d=1.0, grow_scale3d=0.1, num_frozen=frozen)
    before = {name: value.detach().clone() for name, value in params.items()}
    assert strategy.grow(params, optimizers, state, step=1) == 2  # Gaussian 6 cloned, 5 split; 1 and 3 frozen
    assert params["means"].shape[0] == num + 2  # a clone added; the split one replaced by two children
    for name in params:
        assert torch.equal(params[name][:frozen], before[name][:frozen]), name
    assert torch.equal(params["means"][frozen:frozen + 3], before["means"][[4, 6, 7]])  # the rest keep their order
    assert torch.equal(params["means"][frozen + 3], before["means"][6])  # the clone
    assert torch.all(params["scales"][-2:] < before["scales"][5])  # the split children are smaller
