"""Tests of the diffusers video-guidance backends (ltx, wan, svd) used by video SDS (paper Sec. 3.3).

Every backend is loaded from a tiny random-weight pipeline written with ``save_pretrained`` (see
``tests/tiny_diffusers.py``) through the same ``GuidanceConfig.build`` -> ``DiffusionPipeline.from_pretrained`` path
real weights take. The x0 formulas are checked with stand-in denoisers whose output is exact for a known clean
latent, so ``predict_x0`` must return exactly the decoding of that latent.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny_diffusers import TINY_SAVERS, TINY_SDS_SIZE  # noqa: E402

from fourreal_ns.guidance import (GuidanceConfig, GuidanceConfigError,  # noqa: E402
                                  GuidanceWeightsNotFoundError)
from fourreal_ns.guidance.base import VideoGuidance, pad_frames  # noqa: E402

BACKENDS = ["ltx", "wan", "svd"]
NUM_FRAMES = 16
PROMPT = "a corgi running on a beach, waves in the background"


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP oversubscription makes
    them up to 20x slower; restore the previous setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory, single_thread):
    root = tmp_path_factory.mktemp("tiny_pipelines")
    return {name: saver(root / name) for name, saver in TINY_SAVERS.items()}


def build(folder: Path, backend: str, **overrides) -> VideoGuidance:
    h, w = TINY_SDS_SIZE
    kwargs = dict(backend=backend, model_id=str(folder), dtype="float32", sds_height=h, sds_width=w)
    kwargs.update(overrides)
    return GuidanceConfig(**kwargs).build(PROMPT, device="cpu")


def video(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    h, w = TINY_SDS_SIZE
    frames = torch.rand(NUM_FRAMES, 3, h, w, generator=gen)
    cond = torch.rand(3, h, w, generator=gen)
    return frames, cond


# ---------------------------------------------------------------------------------------------------- stand-ins
class FlowStandIn(nn.Module):
    """Flow-matching denoiser that is exact for ``target``: ``v = (x_t - target) / sigma`` per token.

    ``unpack_sigma`` maps the ``[B, S]`` per-token timestep to the shape of ``hidden_states``.
    """

    def __init__(self, target: torch.Tensor, unpack_sigma, num_train_timesteps: float = 1000.0):
        super().__init__()
        self.target, self.unpack_sigma, self.T = target, unpack_sigma, num_train_timesteps
        self.calls = []

    def forward(self, hidden_states, timestep, **kwargs):
        self.calls.append(dict(hidden_states=hidden_states.clone(), timestep=timestep.clone(), **kwargs))
        sigma = self.unpack_sigma(timestep.float() / self.T, hidden_states)
        safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
        v = torch.where(sigma > 0, (hidden_states - self.target) / safe, torch.zeros_like(hidden_states))
        return (v,)


class EDMStandIn(nn.Module):
    """SVD stand-in exact for ``target``: inverts ``x0 = c_skip x + c_out F(c_in x, 0.25 log s)``."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target
        self.calls = []

    def forward(self, sample, timestep, encoder_hidden_states, added_time_ids, return_dict=False):
        self.calls.append(dict(sample=sample.clone(), timestep=timestep.clone(),
                               encoder_hidden_states=encoder_hidden_states.clone(), added_time_ids=added_time_ids))
        s = math.exp(4.0 * float(timestep.flatten()[0]))
        c_in, c_skip, c_out = 1 / math.sqrt(s * s + 1), 1 / (s * s + 1), -s / math.sqrt(s * s + 1)
        x = sample[:, :, :4] / c_in
        return ((self.target - c_skip * x) / c_out,)


def ltx_stand_in(guidance, clean):
    return FlowStandIn(guidance.pack(clean), lambda sigma, hidden: sigma.unsqueeze(-1))


def wan_stand_in(guidance, clean):
    _, ph, pw = guidance.patch

    def unpack(sigma, hidden):  # [B, f*h/p*w/p] -> [B, 1, f, h, w]
        b, _, f, h, w = hidden.shape
        grid = sigma.reshape(b, 1, f, h // ph, w // pw)
        return grid.repeat_interleave(ph, dim=3).repeat_interleave(pw, dim=4)

    return FlowStandIn(clean, unpack)


# ---------------------------------------------------------------------------------------------------- x0 recovery
@pytest.mark.parametrize("backend", ["ltx", "wan"])
@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_flow_matching_x0_recovers_known_latent(tiny_folders, backend, sigma):
    """x0 = x_t - sigma v: with a velocity exact for the clean latent, predict_x0 decodes that latent."""
    guidance = build(tiny_folders[backend], backend)
    frames, cond = video()
    clean = guidance.encode_latents(frames, cond)
    make = ltx_stand_in if backend == "ltx" else wan_stand_in
    guidance.denoiser = make(guidance, clean)
    x0 = guidance.predict_x0(frames, cond, sigma)
    expected = guidance.decode_latents(clean, NUM_FRAMES).clamp(0, 1)
    assert x0.shape == frames.shape
    torch.testing.assert_close(x0, expected, atol=2e-4, rtol=0)
    # classifier-free guidance with identical branches is the identity
    assert len(guidance.denoiser.calls) == (1 if backend == "ltx" else 2)


@pytest.mark.parametrize("sigma", [0.5, 0.9, 1.0])
def test_svd_edm_x0_recovers_known_latent(tiny_folders, sigma):
    guidance = build(tiny_folders["svd"], "svd")
    frames, cond = video()
    clean = guidance.encode_latents(frames)
    guidance.denoiser = EDMStandIn(clean)
    x0 = guidance.predict_x0(frames, cond, sigma)
    expected = guidance.decode_latents(clean).clamp(0, 1)
    torch.testing.assert_close(x0, expected, atol=2e-4, rtol=0)


# ---------------------------------------------------------------------------------------------------- conditioning
def test_ltx_known_frame_is_clean_tokens_at_timestep_zero(tiny_folders):
    guidance = build(tiny_folders["ltx"], "ltx", guidance_scale=3.0)
    frames, cond = video()
    clean = guidance.encode_latents(frames, cond)
    assert clean.shape[2] == 3, "16 frames are padded to 17 = 8*2+1 -> 3 latent frames"
    guidance.denoiser = ltx_stand_in(guidance, clean)
    sigma = 0.6
    guidance.predict_x0(frames, cond, sigma)

    call = guidance.denoiser.calls[0]
    tokens, timestep = call["hidden_states"], call["timestep"]
    per_frame = clean.shape[3] * clean.shape[4]
    assert tokens.shape == (2, 3 * per_frame, clean.shape[1])  # batched [uncond, cond]
    assert timestep.shape == (2, 3 * per_frame)
    assert torch.all(timestep[:, :per_frame] == 0)
    torch.testing.assert_close(timestep[:, per_frame:], torch.full_like(timestep[:, per_frame:], sigma * 1000))

    # first-frame tokens are the clean encoding of cond_frame (not of frames[0])
    cond_latent = guidance._encode(cond[None, :, None])
    torch.testing.assert_close(tokens[:, :per_frame], guidance.pack(cond_latent).expand(2, -1, -1))
    render_latent = guidance._encode(frames[:1].permute(1, 0, 2, 3)[None])
    assert not torch.allclose(cond_latent, render_latent)
    # other tokens: x_t = (1 - sigma) z + sigma eps with eps ~ N(0, 1)
    eps = (tokens[0, per_frame:] - (1 - sigma) * guidance.pack(clean)[0, per_frame:]) / sigma
    assert abs(eps.mean().item()) < 0.2 and 0.8 < eps.std().item() < 1.2
    # both CFG branches see the same latents; prompt embeddings are [negative, positive]
    torch.testing.assert_close(tokens[0], tokens[1])
    assert call["encoder_hidden_states"].shape[0] == 2
    assert not torch.allclose(call["encoder_hidden_states"][0], call["encoder_hidden_states"][1])
    assert call["rope_interpolation_scale"] == (guidance.temporal_ratio / 25.0, guidance.spatial_ratio,
                                                guidance.spatial_ratio)


def test_ltx_without_cond_frame_noises_everything(tiny_folders):
    guidance = build(tiny_folders["ltx"], "ltx", guidance_scale=1.0)
    frames, _ = video()
    clean = guidance.encode_latents(frames, None)
    guidance.denoiser = ltx_stand_in(guidance, clean)
    guidance.predict_x0(frames, None, 0.25)
    call = guidance.denoiser.calls[0]
    assert call["hidden_states"].shape[0] == 1, "guidance_scale <= 1 is a single conditional pass"
    torch.testing.assert_close(call["timestep"], torch.full_like(call["timestep"], 250.0))


def test_wan_known_frame_is_clean_latent_at_timestep_zero(tiny_folders):
    guidance = build(tiny_folders["wan"], "wan")
    frames, cond = video()
    clean = guidance.encode_latents(frames, cond)
    assert clean.shape[2] == 5, "16 frames are padded to 17 = 4*4+1 -> 5 latent frames"
    guidance.denoiser = wan_stand_in(guidance, clean)
    sigma = 0.7
    guidance.predict_x0(frames, cond, sigma)

    cond_call, uncond_call = guidance.denoiser.calls
    hidden, timestep = cond_call["hidden_states"], cond_call["timestep"]
    _, ph, pw = guidance.patch
    per_frame = (clean.shape[3] // ph) * (clean.shape[4] // pw)
    assert timestep.shape == (1, clean.shape[2] * per_frame)
    assert torch.all(timestep[:, :per_frame] == 0)
    torch.testing.assert_close(timestep[:, per_frame:], torch.full_like(timestep[:, per_frame:], sigma * 1000))
    torch.testing.assert_close(hidden[:, :, :1], guidance._encode(cond[None, :, None]))
    eps = (hidden[:, :, 1:] - (1 - sigma) * clean[:, :, 1:]) / sigma
    assert 0.8 < eps.std().item() < 1.2
    # CFG: same latents, positive then negative prompt embeddings
    torch.testing.assert_close(uncond_call["hidden_states"], hidden)
    torch.testing.assert_close(cond_call["encoder_hidden_states"], guidance.prompt_embeds)
    torch.testing.assert_close(uncond_call["encoder_hidden_states"], guidance.negative_prompt_embeds)


def test_svd_conditions_on_image_embedding_and_image_latents(tiny_folders):
    guidance = build(tiny_folders["svd"], "svd", guidance_scale=2.0)
    guidance.noise_aug_strength = 0.0  # make the concatenated image latents deterministic for the comparison
    frames, cond = video()
    clean = guidance.encode_latents(frames)
    guidance.denoiser = EDMStandIn(clean)
    sigma = 0.5  # same SNR as EDM sigma 1
    guidance.predict_x0(frames, cond, sigma)

    call = guidance.denoiser.calls[0]
    sample = call["sample"]
    assert sample.shape == (2, NUM_FRAMES, 8) + clean.shape[-2:]
    image_latents = guidance.image_latents(cond)
    torch.testing.assert_close(sample[1, :, 4:], image_latents.expand(NUM_FRAMES, -1, -1, -1))
    assert torch.all(sample[0, :, 4:] == 0), "unconditional branch: zero image latents"
    embeds = call["encoder_hidden_states"]
    torch.testing.assert_close(embeds[1], guidance.image_embedding(cond)[0])
    assert torch.all(embeds[0] == 0), "unconditional branch: zero image embedding"
    assert not torch.allclose(guidance.image_embedding(frames[0]), guidance.image_embedding(cond))
    torch.testing.assert_close(call["timestep"], torch.tensor([0.25 * math.log(1.0)]))
    assert call["added_time_ids"][0].tolist() == [guidance.fps - 1, guidance.motion_bucket_id, 0.0]
    # noisy latents: c_in * (z + s eps) with s = 1
    eps = sample[1, :, :4] * math.sqrt(2.0) - clean[0]
    assert 0.8 < eps.std().item() < 1.2


def test_sigma_to_edm_mapping():
    from fourreal_ns.guidance.svd import flow_sigma_to_edm

    assert flow_sigma_to_edm(0.5, 0.002, 700.0) == pytest.approx(1.0)
    assert flow_sigma_to_edm(1.0, 0.002, 700.0) == 700.0
    assert flow_sigma_to_edm(1e-6, 0.002, 700.0) == 0.002
    assert flow_sigma_to_edm(0.9, 0.002, 700.0) == pytest.approx(9.0)


def test_pad_frames_repeats_last_frame():
    x = torch.arange(16.0).view(1, 1, 16, 1, 1)
    padded = pad_frames(x, 8)
    assert padded.shape[2] == 17 and padded[0, 0, -1].item() == 15.0
    assert pad_frames(x, 4).shape[2] == 17
    assert pad_frames(torch.zeros(1, 1, 17, 1, 1), 8).shape[2] == 17


# ---------------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_end_to_end(tiny_folders, backend, monkeypatch):
    freed = []
    original = VideoGuidance._free_text_encoder

    def spy(self):
        encoder = getattr(self.pipe, "text_encoder", None)
        freed.append(weakref.ref(encoder) if encoder is not None else None)
        original(self)

    monkeypatch.setattr(VideoGuidance, "_free_text_encoder", spy)
    guidance = build(tiny_folders[backend], backend)
    assert guidance.sds_size == TINY_SDS_SIZE

    # the text encoder is released after the prompt was embedded once
    assert guidance.text_encoder is None and guidance.tokenizer is None
    assert getattr(guidance.pipe, "text_encoder", None) is None
    gc.collect()
    if backend != "svd":
        assert freed[0] is not None and freed[0]() is None, "text encoder still alive after construction"
    # frozen prior
    params = list(guidance.parameters())
    assert params and not any(p.requires_grad for p in params)

    frames, cond = video()
    render = frames.clone().requires_grad_(True)
    x0 = guidance.predict_x0(render, cond, 0.5)
    assert x0.shape == (NUM_FRAMES, 3) + TINY_SDS_SIZE and x0.dtype == torch.float32
    assert torch.isfinite(x0).all() and x0.min() >= 0 and x0.max() <= 1
    assert not x0.requires_grad
    # fresh noise on every call
    assert not torch.equal(x0, guidance.predict_x0(frames, cond, 0.5))

    loss = ((render - x0.detach()) ** 2).sum()
    loss.backward()
    assert render.grad is not None and render.grad.abs().sum() > 0
    assert all(p.grad is None for p in guidance.parameters())


@pytest.mark.parametrize("backend", ["ltx", "wan"])
def test_bfloat16_networks_return_float32(tiny_folders, backend):
    guidance = build(tiny_folders[backend], backend, dtype="bfloat16")
    assert guidance.denoiser.dtype == torch.bfloat16 and guidance.prompt_embeds.dtype == torch.bfloat16
    frames, cond = video()
    x0 = guidance.predict_x0(frames, cond, 0.8)
    assert x0.dtype == torch.float32 and torch.isfinite(x0).all()


def test_guidance_from_in_memory_pipeline():
    """The benchmark's --real-architecture path: a pipeline built in memory instead of loaded."""
    from tiny_diffusers import build_tiny_ltx

    from fourreal_ns.guidance import backend_class

    h, w = TINY_SDS_SIZE
    config = GuidanceConfig(backend="ltx", dtype="float32", sds_height=h, sds_width=w, guidance_scale=1.0)
    guidance = backend_class("ltx")(config, PROMPT, "cpu", pipe=build_tiny_ltx())
    frames, cond = video()
    assert guidance.predict_x0(frames, cond, 0.5).shape == frames.shape
    assert guidance.pipe.text_encoder is None


def test_inputs_are_validated(tiny_folders):
    guidance = build(tiny_folders["ltx"], "ltx")
    frames, cond = video()
    with pytest.raises(ValueError, match="sigma"):
        guidance.predict_x0(frames, cond, 0.0)
    with pytest.raises(ValueError, match="multiple"):
        guidance.predict_x0(frames[:, :, :20, :20], cond[:, :20, :20], 0.5)
    with pytest.raises(ValueError, match="cond_frame"):
        guidance.predict_x0(frames, cond[:, :16], 0.5)


# ---------------------------------------------------------------------------------------------------- config/errors
def test_config_defaults_and_registry():
    """One registry (fourreal_ns.model_registry) for guidance and generation: each class registered next to its
    definition carries the registry's default weights; the config's Literal names exactly the registered models."""
    import typing

    from fourreal_ns.generate.video_models import LTXGenerator, WanGenerator
    from fourreal_ns.guidance.config import backend_class
    from fourreal_ns.model_registry import GENERATORS, MODELS, generator_class

    config = GuidanceConfig()
    assert config.enabled and config.backend == "ltx" and config.model_id is None and not config.cpu_offload
    for name in BACKENDS:
        cls = backend_class(name)
        assert cls.name == name and cls.default_model_id == MODELS[name].default_model_id
        assert cls.default_sds_size[0] % cls.size_multiple == 0 and cls.default_sds_size[1] % cls.size_multiple == 0
    literal = typing.get_type_hints(GuidanceConfig)["backend"]
    assert set(typing.get_args(literal)) == set(MODELS) == set(BACKENDS)
    assert GENERATORS == {"ltx": LTXGenerator, "wan": WanGenerator} and generator_class("wan") is WanGenerator
    assert LTXGenerator.default_model_id == backend_class("ltx").default_model_id
    assert (LTXGenerator.temporal_multiple, WanGenerator.temporal_multiple) == (8, 4)
    with pytest.raises(GuidanceConfigError, match="unknown guidance backend"):
        backend_class("nope")


def test_config_is_a_tyro_cli():
    import tyro  # a dependency of the package: never skipped
    config = tyro.cli(GuidanceConfig, args=["--backend", "wan", "--guidance-scale", "4.5", "--model-id", "/x"])
    assert config.backend == "wan" and config.guidance_scale == 4.5 and config.model_id == "/x"


def test_importing_the_config_does_not_import_diffusers():
    code = "import sys, fourreal_ns.guidance; assert 'diffusers' not in sys.modules, 'diffusers imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_cpu_offload_without_cuda_is_a_clear_error(tiny_folders):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(GuidanceConfigError, match="cpu_offload"):
        build(tiny_folders["ltx"], "ltx", cpu_offload=True)


def _assert_helpful(error: GuidanceWeightsNotFoundError, model_id: str):
    message = str(error)
    assert model_id in message
    assert f"huggingface-cli download {model_id}" in message
    assert "--pipeline.guidance.model-id" in message and "HF_HUB_OFFLINE" in message


def test_missing_local_folder(tmp_path):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(GuidanceWeightsNotFoundError) as info:
        GuidanceConfig(backend="ltx", model_id=missing, dtype="float32").build(PROMPT, "cpu")
    _assert_helpful(info.value, missing)
    assert "does not exist" in str(info.value)


def test_folder_that_is_not_a_pipeline(tmp_path):
    with pytest.raises(GuidanceWeightsNotFoundError, match="model_index.json"):
        GuidanceConfig(backend="wan", model_id=str(tmp_path), dtype="float32").build(PROMPT, "cpu")


def test_incomplete_pipeline_folder(tmp_path):
    folder = TINY_SAVERS["ltx"](tmp_path / "ltx")
    for weights in (folder / "transformer").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(GuidanceWeightsNotFoundError) as info:
        GuidanceConfig(backend="ltx", model_id=str(folder), dtype="float32").build(PROMPT, "cpu")
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("backend", ["ltx", "svd"])
def test_fake_hub_id_offline(backend, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    fake = "fourreal-tests/this-model-does-not-exist"
    start = time.monotonic()
    with pytest.raises(GuidanceWeightsNotFoundError) as info:
        GuidanceConfig(backend=backend, model_id=fake, dtype="float32").build(PROMPT, "cpu")
    assert time.monotonic() - start < 30, "offline lookup must not wait on the network"
    _assert_helpful(info.value, fake)
    assert "HF_HUB_OFFLINE is set" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)
