"""Freeze-time videos from image-to-video models with an orbit LoRA (`fourreal generate --freeze-backend`), with
tiny random-weight CogVideoX-I2V and Wan2.1-I2V pipelines and tiny random LoRAs in diffusers' LoRA format, loaded
through the same `from_pretrained` / `load_lora_weights` code a user's machine runs with the real weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fourreal_ns.generate.command import GenerateError, GenerationOptions, generate_scene, resolve_settings
from fourreal_ns.generate.orbit_backends import OrbitGenerator, OrbitSettings
from fourreal_ns.model_registry import ORBIT_BACKENDS

pytest.importorskip("peft", reason="LoRAs load through peft (a dependency of this project)")

SIZE = 32
BACKENDS = {"cogvideox-dimensionx": ("save_tiny_cogvideox_i2v", "CogVideoXImageToVideoPipeline"),
            "wan21-orbit": ("save_tiny_wan21_i2v", "WanImageToVideoPipeline")}


@pytest.fixture(scope="module")
def tiny_orbit(tmp_path_factory):
    """{backend: (base model folder, LoRA file)}."""
    import diffusers
    import tiny_orbit as tiny

    root = tmp_path_factory.mktemp("orbit")
    made = {}
    for backend, (saver, pipeline) in BACKENDS.items():
        folder = getattr(tiny, saver)(root / backend)
        transformer = getattr(tiny, saver.replace("save_", "build_"))().transformer
        lora = tiny.save_tiny_lora(getattr(diffusers, pipeline), transformer, root / f"{backend}_lora",
                                   weight_name="orbit_lora.safetensors")
        made[backend] = (folder, lora)
    return made


def orbit_settings(backend: str, tiny_orbit, **changes) -> OrbitSettings:
    folder, lora = tiny_orbit[backend]
    values = dict(backend=backend, model_id=str(folder), lora=str(lora), width=SIZE, height=SIZE, orbit_width=SIZE,
                  orbit_height=SIZE, num_inference_steps=2, lora_scale=1.0)
    values.update(changes)
    return OrbitSettings(**values)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_the_lora_loads_and_changes_the_orbit_clip(backend, tiny_orbit):
    known = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    with_lora = OrbitGenerator(orbit_settings(backend, tiny_orbit))
    without = OrbitGenerator(orbit_settings(backend, tiny_orbit, lora_scale=0.0))
    frames = with_lora.continue_video("a cat, orbit", "", known, num_new=6, seed=3)
    assert frames.shape == (6, SIZE, SIZE, 3) and frames.dtype == np.uint8
    baseline = without.continue_video("a cat, orbit", "", known, num_new=6, seed=3)
    assert np.abs(frames.astype(float) - baseline).mean() > 1.0  # the fused LoRA changes the video
    again = with_lora.continue_video("a cat, orbit", "", known, num_new=6, seed=3)
    np.testing.assert_array_equal(frames, again)  # seeded
    other_image = with_lora.continue_video("a cat, orbit", "", known[:1], num_new=6, seed=3)
    assert np.abs(other_image.astype(float) - frames).mean() > 0.5  # conditioned on the last known frame


def test_a_scene_from_ltx_then_an_orbit_backend(tmp_path, tiny_orbit, tiny_ltx, monkeypatch):
    """Reference video from tiny LTX, freeze-time clip + one forward extension from tiny CogVideoX-I2V with its
    LoRA: the trigger phrase reaches the pipeline's prompt, each part is conditioned on the last frame so far, the
    canonical frame is the reference frame, and generation.json records the backend, LoRA and camera path."""
    import diffusers

    prompts, conditions = [], []
    original_encode = diffusers.CogVideoXImageToVideoPipeline.encode_prompt
    original_continue = OrbitGenerator.continue_video

    def encode(self, prompt, *args, **kwargs):
        prompts.append(prompt)
        return original_encode(self, prompt, *args, **kwargs)

    def continue_video(self, prompt, negative_prompt, known, num_new, seed, on_step=None):
        conditions.append(np.array(known[-1]))
        return original_continue(self, prompt, negative_prompt, known, num_new, seed, on_step)

    monkeypatch.setattr(diffusers.CogVideoXImageToVideoPipeline, "encode_prompt", encode)
    monkeypatch.setattr(OrbitGenerator, "continue_video", continue_video)
    folder, lora = tiny_orbit["cogvideox-dimensionx"]
    options = GenerationOptions(model_id=str(tiny_ltx), width=SIZE, height=SIZE, num_inference_steps=2,
                                num_reference_frames=9, freeze_backend="cogvideox-dimensionx",
                                freeze_model_id=str(folder), lora=str(lora), orbit_width=SIZE, orbit_height=SIZE,
                                clip_frames=9, new_frames_per_step=8, num_freeze_frames=17)
    scene = generate_scene("a panda playing guitar in a kitchen", tmp_path / "scene", options)

    from fourreal_ns.generate.parts import read_frames

    freeze = read_frames(scene / "images" / "freeze")
    reference = read_frames(scene / "images" / "reference")
    generation = json.loads((scene / "generation.json").read_text())
    assert len(freeze) == 17 and len(reference) == 9
    assert generation["canonical"]["freeze_frame"] == 0  # forward only: the orbit turns one way
    np.testing.assert_array_equal(freeze[0], reference[generation["canonical"]["reference_frame"]])
    assert len(conditions) == 2  # the clip and one extension step
    np.testing.assert_array_equal(conditions[0], freeze[0])
    np.testing.assert_array_equal(conditions[1], freeze[8])  # the clip's last frame conditions the next clip
    trigger = "breath-taking movie-like camera shot"
    assert trigger in generation["freeze_prompt"] and all(trigger in prompt for prompt in prompts) and prompts
    assert "playing" not in generation["freeze_prompt"]  # the static description
    assert generation["freeze_backend"] == "cogvideox-dimensionx" and generation["lora"]["id"] == str(lora)
    assert generation["camera_path"]["known"] is False  # DimensionX does not state its orbit's angle
    assert generation["model_ids"]["freeze"] == str(folder)


def test_a_known_orbit_sets_the_nominal_camera_and_the_clip_lengths():
    settings = resolve_settings("a red fox jumping over a log", GenerationOptions(freeze_backend="wan21-orbit"))
    record = ORBIT_BACKENDS["wan21-orbit"]
    assert (settings["clip_frames"], settings["context_frames"], settings["new_frames_per_step"]) == (81, 1, 80)
    assert settings["degrees_per_frame"] == pytest.approx(4.5) and (settings["height"], settings["width"]) == (480, 832)
    assert "0rb4it 360 degree orbit" in settings["freeze_prompt"] and settings["model_ids"]["freeze"] == \
        record.base_model_id
    assert settings["lora"] == record.lora_id and settings["orbit_size"] == [480, 832]
    same = resolve_settings("a red fox", GenerationOptions())
    assert (same["clip_frames"], same["context_frames"], same["degrees_per_frame"]) == (17, 8, 2.0)


def test_bad_orbit_inputs_stop_before_any_model_loads(tmp_path, tiny_orbit, tiny_ltx):
    folder, lora = tiny_orbit["cogvideox-dimensionx"]
    loaded = []

    def factory(settings):
        loaded.append(settings)
        raise AssertionError("a model was loaded")

    def options(**changes):
        values = dict(model_id=str(tiny_ltx), width=SIZE, height=SIZE, num_inference_steps=2, num_reference_frames=9,
                      freeze_backend="cogvideox-dimensionx", freeze_model_id=str(folder), lora=str(lora),
                      num_freeze_frames=17, clip_frames=9, new_frames_per_step=8)
        values.update(changes)
        return GenerationOptions(**values)

    cases = [
        (dict(lora=str(tmp_path / "missing.safetensors")), r"missing.safetensors does not exist.*hf download"),
        (dict(freeze_model_id=str(tiny_ltx)), "is a LTXPipeline, not a CogVideoXImageToVideoPipeline"),
        (dict(lora=str(tiny_orbit["wan21-orbit"][1])), "does not fit .*Is the LoRA made for THUDM/CogVideoX-5b-I2V"),
        (dict(freeze_model_id=str(tmp_path / "nowhere")), "has no model_index.json"),
    ]
    import torch
    from safetensors.torch import save_file

    not_a_lora = tmp_path / "weights.safetensors"
    save_file({"blocks.0.weight": torch.zeros(2)}, str(not_a_lora))
    cases.append((dict(lora=str(not_a_lora)), "holds no LoRA weights"))
    for number, (change, message) in enumerate(cases):
        with pytest.raises(GenerateError, match=message):
            generate_scene("a cat", tmp_path / f"scene{number}", options(**change), generator_factory=factory)
    assert loaded == []
    with pytest.raises(GenerateError, match="--lora, .* belong to an orbit --freeze-backend"):
        generate_scene("a cat", tmp_path / "same", GenerationOptions(lora=str(lora)), generator_factory=factory)
