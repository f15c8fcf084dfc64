"""`fourreal refine --load-config MOTION_CONFIG`: "Improving details by re-upsampling" (4Real paper, section 3.4).

"We render a video with continuously changing viewpoints and time, and then re-upsample it using the upsampler of
the video diffusion model. The resulting video serves as a reconstruction target to fine-tune the Gaussian
splats." Here, for a trained 4real-motion run:

1. render: `num_frames` views along the middle `path_fraction` of the freeze-time arc (the camera moves one way)
   while time plays 0 -> 1, at the scene's resolution, in-process through nerfstudio's `eval_setup`;
2. downsample by `downsample` (area filter), snapped to the video model's size multiple (32);
3. re-upsample with LTX-Video's latent upsampler (`LTXLatentUpsamplePipeline`, default
   `Lightricks/ltxv-spatial-upscaler-0.9.7`, 2x spatially in latent space, decoded with the LTX VAE of
   `--model-id`, default LTX-Video 0.9.7, which the upsampler was trained with), then, unless `--denoise-strength 0`, a short partial denoising pass of `LTXConditionPipeline` from
   those latents (LTX's own upsample-then-refine recipe; the first upsampled frame is the conditioning image), resized
   back to the scene's resolution;
4. write the augmented scene `--out` (default SCENE-refined beside the scene): its transforms.json holds every
   frame of the original scene (file paths pointing at the original images, nothing copied) plus the re-upsampled
   frames as `video: "reference"` frames (images/upsampled/00000.png ...) with their own camera (`transform_matrix`
   in scene space), their time and `"source": "re-upsampled"`; the reference view stays 0 (the scene format has no
   other slot for a moving-camera video with time); canonical block, seed points and generation metadata are kept;
5. fine-tune: `ns-train 4real-motion --data AUGMENTED --load-dir RUN/nerfstudio_models` for `--steps` more
   iterations (the schedule is the run's last phase, joint fine-tuning), into OUT-runs/... .
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional, Tuple

import numpy as np

from fourreal_ns.data.atomic_write import write_json_atomic
from fourreal_ns.generate.parts import write_frames_atomic
from fourreal_ns.model_registry import DEFAULT_NEGATIVE_PROMPT

DEFAULT_UPSAMPLER = "Lightricks/ltxv-spatial-upscaler-0.9.7"
DEFAULT_LTX = "Lightricks/LTX-Video-0.9.7-dev"
"""The LTX model whose VAE the 0.9.7 upsampler was trained with."""


class RefineError(ValueError):
    """Bad input for `fourreal refine`; the message says what to do."""


def refinement_path(geometry, num_frames: int, path_fraction: float) -> Tuple[List[np.ndarray], np.ndarray]:
    """Camera poses along the middle `path_fraction` of the orbit and times 0 -> 1 (scene-path geometry space)."""
    if not 0 < path_fraction <= 1:
        raise RefineError("--path-fraction must be in (0, 1]")
    fractions = np.linspace(0.5 - path_fraction / 2, 0.5 + path_fraction / 2, num_frames)
    return [geometry.orbit.pose(float(f)) for f in fractions], np.linspace(0.0, 1.0, num_frames)


def render_frames(load_config: Path, poses: List[np.ndarray], times: np.ndarray, focal: Tuple[float, float],
                  size: Tuple[int, int]) -> np.ndarray:
    """Render the trained 4D scene at `poses` (model space) and `times`: [F, H, W, 3] uint8."""
    import torch
    from nerfstudio.cameras.cameras import Cameras, CameraType
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(Path(load_config), test_mode="inference")
    width, height = size
    frames = []
    for pose, time in zip(poses, times):
        camera = Cameras(camera_to_worlds=torch.tensor(pose[:3], dtype=torch.float32)[None], fx=focal[0],
                         fy=focal[1], cx=width / 2.0, cy=height / 2.0, width=width, height=height,
                         camera_type=CameraType.PERSPECTIVE, times=torch.tensor([[float(time)]]))
        camera = camera.to(pipeline.device)
        with torch.no_grad():
            rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
        frames.append((rgb.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
    return np.stack(frames)


def downsample(frames: np.ndarray, factor: float, multiple: int) -> np.ndarray:
    """Area-downsample by `factor`, to a size that is a multiple of `multiple` (at least one multiple)."""
    from PIL import Image

    height, width = frames.shape[1:3]
    size = (max(multiple, int(round(width / factor / multiple)) * multiple),
            max(multiple, int(round(height / factor / multiple)) * multiple))
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.BOX)) for frame in frames])


def resize(frames: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if frames.shape[2] == size[0] and frames.shape[1] == size[1]:
        return frames
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.LANCZOS)) for frame in frames])


def re_upsample(frames: np.ndarray, upsampler_id: str, model_id: str, prompt: str, negative_prompt: str,
                denoise_strength: float, num_inference_steps: int, seed: int, dtype: str,
                device: Optional[str]) -> np.ndarray:
    """LTX latent upsampling (2x) of `frames` [F, h, w, 3] uint8 (+ the partial denoising pass): [F, 2h, 2w, 3]."""
    import torch
    from diffusers import LTXConditionPipeline, LTXLatentUpsamplePipeline
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    from fourreal_ns.generate.video_models import GeneratorSettings, _pil, _resolve_device_and_dtype, _to_uint8
    from fourreal_ns.guidance.loading import load_diffusers_pipeline

    torch_device, torch_dtype = _resolve_device_and_dtype(GeneratorSettings(dtype=dtype, device=device))
    ltx = load_diffusers_pipeline(model_id, "ltx", torch_dtype, ("vae", "transformer", "text_encoder", "tokenizer"))
    upsampler = load_diffusers_pipeline(upsampler_id, "ltx", torch_dtype, ("latent_upsampler",))
    upsample = LTXLatentUpsamplePipeline(vae=ltx.vae, latent_upsampler=upsampler.latent_upsampler)
    for pipe in (ltx, upsample):
        pipe.set_progress_bar_config(disable=True)
        if torch_device.type != "cpu":
            pipe.to(torch_device)
    height, width = frames.shape[1:3]
    num_frames = len(frames)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    if denoise_strength <= 0:
        video = upsample(video=_pil(frames), height=height, width=width, generator=generator, output_type="np")
        return _to_uint8(video.frames)[:num_frames]
    latents = upsample(video=_pil(frames), height=height, width=width, generator=generator,
                       output_type="latent").frames
    first = upsample(video=_pil(frames), height=height, width=width, output_type="np").frames
    condition = LTXVideoCondition(image=_pil(_to_uint8(first)[:1])[0], frame_index=0)
    refine = LTXConditionPipeline.from_pipe(ltx)
    refine.set_progress_bar_config(disable=True)
    video = refine(conditions=[condition], prompt=prompt, negative_prompt=negative_prompt, width=2 * width,
                   height=2 * height, num_frames=num_frames, denoise_strength=denoise_strength,
                   num_inference_steps=num_inference_steps, latents=latents, generator=generator, output_type="np")
    return _to_uint8(video.frames)[:num_frames]


def write_augmented_scene(scene, out: Path, frames: np.ndarray, poses: List[np.ndarray], times: np.ndarray,
                          focal: Tuple[float, float], info: dict) -> Path:
    """The original scene's frames (by reference) + the re-upsampled frames as reference frames (module docstring)."""
    source = json.loads(scene.transforms_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(scene.folder.resolve(), out.resolve()))
    content = {key: value for key, value in source.items() if key != "frames"}
    if source.get("ply_file_path"):
        content["ply_file_path"] = (relative / source["ply_file_path"]).as_posix()
    frames_json = []
    for frame in source["frames"]:
        frames_json.append({**frame, "file_path": (relative / frame["file_path"]).as_posix()})
    write_frames_atomic(out / "images" / "upsampled", frames)
    height, width = frames.shape[1:3]
    for index, (pose, time) in enumerate(zip(poses, times)):
        frames_json.append({
            "file_path": f"images/upsampled/{index:05d}.png", "transform_matrix": [list(map(float, row)) for row in pose],
            "video": "reference", "time": float(time), "view": 0, "source": "re-upsampled",
            "camera_model": "PINHOLE", "fl_x": focal[0], "fl_y": focal[1], "cx": width / 2.0, "cy": height / 2.0,
            "w": width, "h": height,
        })
    content["frames"] = frames_json
    content["refine"] = info
    write_json_atomic(out / "transforms.json", content)
    return out


@dataclass
class Refine:
    """Re-upsampling (4Real, section 3.4): render the trained 4D scene with moving camera and time, downsample,
    re-upsample with LTX-Video's latent upsampler, add the frames to a copy of the scene and fine-tune the motion
    stage on it."""

    load_config: Path
    """config.yml of a trained 4real-motion run."""
    out: Optional[Path] = None
    """Augmented scene folder (default: SCENE-refined beside the run's scene)."""
    model_id: Optional[str] = None
    """LTX-Video model whose VAE decodes the upsampled latents and that runs the denoising pass (default:
    Lightricks/LTX-Video-0.9.7-dev, the model the default upsampler was trained with)."""
    upsampler_id: str = DEFAULT_UPSAMPLER
    """LTX latent upsampler (hub id or local folder of an LTXLatentUpsamplePipeline)."""
    num_frames: int = 49
    """Frames of the rendered video (8k + 1 for LTX)."""
    path_fraction: float = 0.5
    """Share of the freeze-time arc the camera travels while time plays 0 -> 1."""
    downsample: float = 2.0
    """Downsampling factor before re-upsampling (the upsampler doubles the size)."""
    denoise_strength: float = 0.4
    """Strength of the partial LTX denoising pass after the upsampler (0: upsampler only)."""
    num_inference_steps: int = 10
    """Steps of the denoising pass (diffusers scales them by the strength)."""
    prompt: Optional[str] = None
    """Prompt of the denoising pass (default: the scene's generation prompt)."""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    """Negative prompt of the denoising pass."""
    seed: int = 0
    """Seed of the upsampler's VAE sampling and the denoising pass."""
    dtype: Optional[Literal["float32", "float16", "bfloat16"]] = None
    """Weights dtype (default: bfloat16 on CUDA, float32 on the CPU)."""
    device: Optional[str] = None
    """torch device for the video model (default: cuda if available)."""
    schedule: Literal["paper", "short-cpu"] = "paper"
    """Schedule options the fine-tuning run is launched with (as `fourreal run`)."""
    steps: int = 2000
    """Fine-tuning iterations after the run's last step."""
    finetune: bool = True
    """Fine-tune after writing the augmented scene (False: only write it)."""

    def main(self) -> None:
        from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError
        from fourreal_ns.runs import StepFailed

        try:
            self.run()
        except (RefineError, StepFailed, FileNotFoundError) as error:
            raise SystemExit(f"fourreal refine: {error}") from None
        except GuidanceWeightsNotFoundError as error:
            from fourreal_ns.generate.command import weights_message

            raise SystemExit(weights_message(error.model_id, error.backend, error.reason)) from None

    def run(self) -> Path:
        """Everything; returns the fine-tuned run's config.yml (or the augmented scene without --finetune)."""
        from fourreal_ns.camera_paths import scene_path_geometry
        from fourreal_ns.data.scene import load_scene
        from fourreal_ns.run_config import RunConfigError, read_run_config, scene_of_run

        try:
            run = scene_of_run(self.load_config)
            content = read_run_config(self.load_config)
        except RunConfigError as error:
            raise RefineError(str(error)) from None
        if "4real-motion" not in str(content.get("method_name", "")):
            raise RefineError(f"{self.load_config} is a {content.get('method_name')} run; refine needs a "
                              "4real-motion run (the re-upsampled video has moving time).")
        if self.num_frames < 2 or self.downsample < 1:
            raise RefineError("--num-frames must be at least 2 and --downsample at least 1")
        scene = load_scene(run.folder, check_images=False)
        out = Path(self.out) if self.out is not None else scene.folder.parent / f"{scene.folder.name}-refined"
        if out.resolve() == scene.folder.resolve():
            raise RefineError("--out must differ from the run's scene folder (the original scene is kept).")
        geometry = scene_path_geometry(scene, 1.0)
        poses, times = refinement_path(geometry, self.num_frames, self.path_fraction)
        reference = scene.frames_of("reference")[0] if scene.frames_of("reference") else scene.frames[0]
        focal = (reference.fl_x, reference.fl_y)
        size = (reference.width, reference.height)

        model_poses = []
        for pose in poses:
            scaled = np.array(pose, dtype=float)
            scaled[:3, 3] *= run.scale_factor
            model_poses.append(scaled)
        rendered = render_frames(self.load_config, model_poses, times, focal, size)
        low = downsample(rendered, self.downsample, 32)
        generation = scene.generation or {}
        model_id = self.model_id or DEFAULT_LTX
        prompt = self.prompt or str(generation.get("prompt", ""))
        upsampled = re_upsample(low, self.upsampler_id, model_id, prompt, self.negative_prompt,
                                self.denoise_strength, self.num_inference_steps, self.seed, self.dtype, self.device)
        upsampled = resize(upsampled, size)
        info = {"source_run": str(self.load_config), "model_id": model_id, "upsampler_id": self.upsampler_id,
                "num_frames": self.num_frames, "path_fraction": self.path_fraction, "downsample": self.downsample,
                "denoise_strength": self.denoise_strength, "seed": self.seed}
        write_augmented_scene(scene, out, upsampled, poses, times, focal, info)
        print(f"Wrote {len(upsampled)} re-upsampled frames and the augmented scene {out}")
        if not self.finetune:
            return out
        return self._finetune(out, content)

    def _finetune(self, scene: Path, content: dict) -> Path:
        from fourreal_ns.runs import EXPERIMENT, run_folder, schedule_arguments, train_stage

        run = Path(self.load_config).parent
        checkpoints = sorted((run / "nerfstudio_models").glob("step-*.ckpt"))
        if not checkpoints:
            raise RefineError(f"{run / 'nerfstudio_models'} holds no checkpoint: train the run first.")
        last_step = int(checkpoints[-1].stem.split("-")[-1])
        model = content["pipeline"].get("model") or {}
        # The run's own schedule (short-cpu: scaled to the steps it trained), continued past its end: every phase
        # but the last (joint fine-tuning) is over. A resumed run trains up to --max-num-iterations - 1 (trainer.py),
        # so `steps` more (the later option wins over the schedule's).
        trained = None if self.schedule == "paper" else last_step + 1
        arguments = schedule_arguments(self.schedule, "motion", trained)
        arguments += [f"--max-num-iterations={last_step + 1 + self.steps}",
                      "--load-dir", str(run / "nerfstudio_models")]  # fmt: skip
        canonical = model.get("canonical_checkpoint")
        if canonical:
            arguments += ["--pipeline.model.canonical-checkpoint", str(canonical)]
        runs = scene.parent / f"{scene.name}-runs"
        train_stage("4real-motion", scene, runs, arguments, runs / "finetune.log")
        config = run_folder(runs, "4real-motion") / "config.yml"
        print(f"Fine-tuned run: {config.parent} ({EXPERIMENT})")
        return config
