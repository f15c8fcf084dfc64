"""`fourreal export ply-sequence` (fourreal_ns/export/ply_sequence.py) without training: a DeformableSplatModel
whose `deltas_for_time` moves half of its Gaussians, built without nerfstudio's pipeline. Checks the files, the
manifest, the PLY layout against nerfstudio's own exporter (byte for byte), values per time, filtering, and the
command's errors."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from plyfile import PlyData

from fourreal_ns.export.ply_sequence import (
    ExportPlySequence,
    sequence_mask,
    splat_ply_fields,
    write_ply_sequence,
    write_splat_ply,
)
from fourreal_ns.models.deformation import Deltas
from fourreal_ns.models.splats import DeformableSplatModel

NUM = 40
VELOCITY = torch.tensor([0.5, -0.25, 1.0])


class MovingSplats(DeformableSplatModel):
    """Gaussians 0 .. NUM/2-1 move with constant velocity from t = 0 and turn/grow a little; the rest are static."""

    def deltas_for_time(self, time):
        if time is None:
            return None
        deltas = Deltas.zeros(self.gauss_params["means"].shape[0], torch.device("cpu"))
        moving = self.moving
        deltas.means[moving] = time * VELOCITY
        deltas.quats[moving, 1] = 0.3 * time
        deltas.scales[moving] = -0.2 * time
        if self.nan_at is not None and time == self.nan_at:
            deltas.means[NUM - 1, 0] = float("nan")  # a static Gaussian that goes non-finite at one time
        return deltas


def make_model(sh_degree: int = 3, nan_at=None, low_opacity: bool = False) -> MovingSplats:
    """A MovingSplats with random parameters, built without populate_modules (no nerfstudio plumbing)."""
    model = MovingSplats.__new__(MovingSplats)
    torch.nn.Module.__init__(model)
    generator = torch.Generator().manual_seed(0)
    rest = (sh_degree + 1) ** 2 - 1
    model.gauss_params = torch.nn.ParameterDict({
        "means": torch.nn.Parameter(torch.randn(NUM, 3, generator=generator)),
        "scales": torch.nn.Parameter(torch.randn(NUM, 3, generator=generator) - 3.0),
        "quats": torch.nn.Parameter(torch.randn(NUM, 4, generator=generator)),
        "features_dc": torch.nn.Parameter(torch.randn(NUM, 3, generator=generator)),
        "features_rest": torch.nn.Parameter(torch.randn(NUM, rest, 3, generator=generator)),
        "opacities": torch.nn.Parameter(torch.randn(NUM, 1, generator=generator)),
    })  # fmt: skip
    if low_opacity:
        model.gauss_params["opacities"].data[3] = -7.0  # below logit(1/255): dropped by ns-export
    model.config = SimpleNamespace(sh_degree=sh_degree)
    model.kwargs = {"metadata": {"canonical": {"time": 0.0}}}
    model.moving = torch.arange(NUM) < NUM // 2
    model.nan_at = nan_at
    return model


def vertices(path: Path) -> np.ndarray:
    return PlyData.read(str(path))["vertex"].data


def expected_names(sh_degree: int):
    rest = 3 * ((sh_degree + 1) ** 2 - 1) if sh_degree > 0 else 0
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(rest)]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def test_sequence_files_manifest_and_motion(tmp_path):
    model = make_model()
    times = np.linspace(0, 1, 5).tolist()
    manifest = write_ply_sequence(model, tmp_path, times, canonical_time=0.0, show_progress=False)
    names = [f"time_{i:04d}.ply" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["canonical.ply", "manifest.json", *names])
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["times"] == times and manifest["files"] == names and manifest["canonical_time"] == 0.0
    assert manifest["num_gaussians"] == NUM and manifest["sh_degree"] == 3

    ply = PlyData.read(str(tmp_path / names[2]))
    assert ply.text is False and ply.byte_order == "<"
    assert [p.name for p in ply["vertex"].properties] == expected_names(3)
    assert all(p.val_dtype in ("f4", "float32", "float") for p in ply["vertex"].properties)

    first, last = vertices(tmp_path / names[0]), vertices(tmp_path / names[-1])
    moving = model.moving.numpy()
    position = lambda v: np.stack([v["x"], v["y"], v["z"]], axis=1)  # noqa: E731
    assert np.allclose(position(last)[moving] - position(first)[moving], VELOCITY.numpy(), atol=1e-5)
    assert np.array_equal(position(last)[~moving], position(first)[~moving])  # static Gaussians stay put
    canonical = vertices(tmp_path / "canonical.ply")
    assert np.array_equal(position(canonical), model.gauss_params["means"].detach().numpy().astype(np.float32))


def test_each_file_equals_the_gaussians_at_its_time(tmp_path):
    model = make_model()
    times = [0.0, 0.4, 1.0]
    write_ply_sequence(model, tmp_path, times, show_progress=False)
    for index, time in enumerate(times):
        data = vertices(tmp_path / f"time_{index:04d}.ply")
        params = {k: v.numpy() for k, v in model.gaussians_at_time(time).items()}
        assert np.array_equal(np.stack([data["x"], data["y"], data["z"]], 1), params["means"].astype(np.float32))
        assert np.array_equal(np.stack([data[f"rot_{i}"] for i in range(4)], 1), params["quats"].astype(np.float32))
        assert np.array_equal(np.stack([data[f"scale_{i}"] for i in range(3)], 1), params["scales"].astype(np.float32))
        assert np.array_equal(data["opacity"], params["opacities"][:, 0].astype(np.float32))
        assert np.array_equal(np.stack([data[f"f_dc_{i}"] for i in range(3)], 1), params["features_dc"])
        # f_rest in the Inria order: all coefficients of red, then green, then blue
        rest = params["features_rest"]  # [N, 15, 3]
        assert np.array_equal(np.stack([data[f"f_rest_{i}"] for i in range(45)], 1),
                              rest.transpose(0, 2, 1).reshape(NUM, -1))
        assert np.all(data["nx"] == 0) and np.all(data["nz"] == 0)


def test_bytes_match_nerfstudios_exporter(tmp_path):
    """The same fields written by `ExportGaussianSplat.write_ply` give the same file, byte for byte."""
    # open3d, imported by the exporter, needs libusb-1.0: `make test` installs it (system-deps), so no skip here.
    from nerfstudio.scripts.exporter import ExportGaussianSplat
    for sh_degree in (3, 0):
        model = make_model(sh_degree=sh_degree)
        fields = splat_ply_fields(model.gaussians_at_time(0.7), sh_degree)
        assert list(fields) == expected_names(sh_degree)
        ours, theirs = tmp_path / f"ours_{sh_degree}.ply", tmp_path / f"theirs_{sh_degree}.ply"
        write_splat_ply(ours, fields)
        ExportGaussianSplat.write_ply(str(theirs), NUM, OrderedDict((k, v[:, None]) for k, v in fields.items()))
        assert ours.read_bytes() == theirs.read_bytes()
    # sh_degree 0: features_dc are colour logits; the exporter writes RGB2SH(sigmoid(.)) and no f_rest
    dc = model.gauss_params["features_dc"].detach()
    assert np.allclose(fields["f_dc_1"], ((torch.sigmoid(dc[:, 1]) - 0.5) / 0.28209479177387814).numpy(), atol=1e-6)


def test_one_mask_for_every_file(tmp_path):
    """Low-opacity Gaussians and one that is non-finite at one time are dropped from every file."""
    model = make_model(nan_at=0.5, low_opacity=True)
    manifest = write_ply_sequence(model, tmp_path, [0.0, 0.5, 1.0], show_progress=False)
    assert manifest["num_gaussians"] == NUM - 2
    assert manifest["num_dropped_non_finite"] == 1 and manifest["num_dropped_low_opacity"] == 1
    keep = np.ones(NUM, bool)
    keep[[3, NUM - 1]] = False
    assert np.array_equal(sequence_mask(model, [0.0, 0.5, 1.0]), keep)  # what an end-to-end test compares with
    assert sequence_mask(model, [0.0, 1.0]).sum() == NUM - 1  # the NaN time not exported: only opacity drops one
    for name in ("canonical.ply", "time_0000.ply", "time_0001.ply", "time_0002.ply"):
        data = vertices(tmp_path / name)
        assert len(data) == NUM - 2 and np.isfinite(np.stack([data[n] for n in data.dtype.names])).all()
    first = vertices(tmp_path / "time_0000.ply")
    assert np.array_equal(first["y"], model.gauss_params["means"].detach().numpy()[keep, 1].astype(np.float32))


def test_stale_time_files_are_removed(tmp_path):
    write_ply_sequence(make_model(), tmp_path, np.linspace(0, 1, 4), show_progress=False)
    write_ply_sequence(make_model(), tmp_path, [0.0, 1.0], show_progress=False)
    assert sorted(p.name for p in tmp_path.glob("time_*.ply")) == ["time_0000.ply", "time_0001.ply"]


def test_command(tmp_path, monkeypatch):
    """The command: eval_setup's model is exported; a model that is not a DeformableSplatModel is a clear error."""
    import nerfstudio.utils.eval_utils as eval_utils

    config = tmp_path / "config.yml"
    with pytest.raises(SystemExit, match="does not exist"):
        ExportPlySequence(load_config=config, output_dir=tmp_path / "out").main()
    config.write_text("stand-in: eval_setup is replaced below\n")

    model = make_model()
    monkeypatch.setattr(eval_utils, "eval_setup", lambda *a, **k: (None, SimpleNamespace(model=model), None, None))
    ExportPlySequence(load_config=config, output_dir=tmp_path / "out", num_times=3).main()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["times"] == [0.0, 0.5, 1.0] and manifest["canonical_time"] == 0.0
    assert len(list((tmp_path / "out").glob("time_*.ply"))) == 3

    plain = SimpleNamespace(config=SimpleNamespace(sh_degree=3))
    monkeypatch.setattr(eval_utils, "eval_setup", lambda *a, **k: (None, SimpleNamespace(model=plain), None, None))
    with pytest.raises(SystemExit, match="not a fourreal DeformableSplatModel"):
        ExportPlySequence(load_config=config, output_dir=tmp_path / "out2").main()
