"""`fourreal generate --prompt TEXT --out SCENE`: the reference and freeze-time videos of a scene (paper 3.2).

1. reference video: text-to-video from the prompt (`reference_video`);
2. canonical reference frame j_c (`--canonical-frame`, default the first: see `reference_video`);
3. freeze-time video conditioned on frame j_c with the freeze-time prompt ("Camera circulating around ..., time
   elapse", action verbs removed: `prompts`), extended forward and backward, each step conditioned on the previous
   8 frames, until `--arc-degrees` (`freeze_time`).

Writes `SCENE/images/reference/00000.png...`, `SCENE/images/freeze/00000.png...` and `SCENE/generation.json`: the
layout `fourreal process SCENE` reads (it copies generation.json into transforms.json under "generation"). Re-running
the same command resumes after the last finished part (`parts`); changing what determines the frames (prompt, seed,
model, size, ...) with an existing folder is an error: pass a new --out, or --overwrite.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Literal, Optional

import tyro
from rich.console import Console
from typing_extensions import Annotated

from fourreal_ns.generate.freeze_time import (ExtensionPlan, extension_seeds, frames_for_arc,
                                              generate_freeze_time_video, plan_extension)
from fourreal_ns.generate.parts import (GENERATION_FILE, PARTS_FOLDER, GenerationRecord, read_frames,
                                        write_frames_atomic)
from fourreal_ns.generate.prompts import freeze_time_prompt
from fourreal_ns.generate.reference_video import canonical_reference_frame, generate_reference_video
from fourreal_ns.generate.video_models import GeneratorSettings, VideoGenerator, load_generator
from fourreal_ns.model_registry import DEFAULT_NEGATIVE_PROMPT, GENERATORS, ORBIT_BACKENDS

CONSOLE = Console()

CONTENT_SETTINGS = (
    "prompt", "freeze_prompt", "negative_prompt", "backend", "model_ids", "seed", "num_reference_frames",
    "reference_frame", "width", "height", "num_inference_steps", "guidance_scale", "reference_fps", "dtype",
    "clip_frames", "context_frames", "new_frames_per_step", "target_freeze_frames", "freeze_backend", "lora",
    "lora_scale", "orbit_size",
)
"""Settings that determine the frames: a resumed run must match them all."""
SETTINGS_BEFORE_ORBIT_BACKENDS = {"freeze_backend": "same", "lora": None, "lora_scale": None, "orbit_size": None}
"""What a generation.json written before the freeze-time backends existed implies for their settings."""
SAME_BACKEND_EXTENSION = {"clip_frames": 17, "context_frames": 8, "new_frames_per_step": 8, "degrees_per_frame": 2.0}
"""Extension defaults of the prompt-only backends (paper 3.2: 8 known frames, 8 new ones a step)."""


class GenerateError(ValueError):
    """Bad input or a scene folder that cannot be resumed; the message says what to do."""


@dataclass
class GenerationOptions:
    """How the videos are generated (everything but the prompt and the output folder)."""

    backend: Literal["ltx", "wan"] = "ltx"
    """Video model family: ltx (LTX-Video, default) or wan (Wan 2.2 TI2V)."""
    model_id: Optional[str] = None
    """Hugging Face hub id or local diffusers folder (default: Lightricks/LTX-Video-0.9.5 for ltx,
    Wan-AI/Wan2.2-TI2V-5B-Diffusers for wan)."""
    freeze_backend: Literal["same", "cogvideox-dimensionx", "wan21-orbit"] = "same"
    """Model of the freeze-time video: same (--backend's model, known-frame conditioning) or an image-to-video model
    with an orbit LoRA (cogvideox-dimensionx: CogVideoX-5B-I2V + DimensionX; wan21-orbit: Wan2.1-I2V-14B-480P + a
    360-degree orbit LoRA), conditioned on the canonical frame and extended forward from the last frame
    (docs/generate.md)."""
    freeze_model_id: Optional[str] = None
    """Model for the freeze-time video and its extension, if not --model-id (must support frame conditioning); with
    an orbit --freeze-backend, its base image-to-video model (default the backend's)."""
    lora: Optional[str] = None
    """Orbit --freeze-backend: the LoRA (hub id, local .safetensors file or a folder holding one; default the
    backend's)."""
    lora_scale: Optional[float] = None
    """Orbit --freeze-backend: the LoRA's strength (default its model card's)."""
    orbit_width: Optional[int] = None
    """Orbit --freeze-backend: width the image-to-video model runs at (default its native width; the frames are
    resized to the scene's)."""
    orbit_height: Optional[int] = None
    """Orbit --freeze-backend: height it runs at (default its native height)."""
    freeze_prompt: Optional[str] = None
    """Prompt of the freeze-time video (default: the prompt rewritten as "Camera circulating around ..., time
    elapse" with action verbs removed, paper 3.2)."""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    """Negative prompt for classifier-free guidance."""
    seed: int = 0
    """Seed of the reference video; the freeze-time clip uses seed + 1, extension step i seed + 2i (forward) and
    seed + 2i + 1 (backward)."""
    num_reference_frames: int = 49
    """Frames of the reference video."""
    canonical_frame: str = "first"
    """Reference frame j_c the freeze-time video is conditioned on: first (default: the paper's temporal SDS starts at
    the canonical time 0), middle, last, or an index."""
    width: Optional[int] = None
    """Frame width (default: 704 for ltx, 1280 for wan)."""
    height: Optional[int] = None
    """Frame height (default: 480 for ltx, 704 for wan)."""
    num_inference_steps: Optional[int] = None
    """Denoising steps per video (default: 40 for ltx, 50 for wan)."""
    guidance_scale: Optional[float] = None
    """Classifier-free guidance scale (default: 3 for ltx, 5 for wan)."""
    reference_fps: float = 25.0
    """Frame rate of the reference video (LTX conditions on it; recorded in generation.json)."""
    arc_degrees: float = 180.0
    """Arc the freeze-time video should cover (paper: 180 degrees)."""
    degrees_per_frame: Optional[float] = None
    """Camera motion of the video model per freeze-time frame, to turn --arc-degrees into frames and for --poses
    nominal (default 2, assumed; an orbit backend's known turn where its LoRA's orbit is known)."""
    num_freeze_frames: Optional[int] = None
    """Frames of the freeze-time video (overrides --arc-degrees); the extension rounds up to whole steps."""
    clip_frames: Optional[int] = None
    """Frames of the first freeze-time clip, the conditioning frame included (default 17; an orbit backend's native
    clip length)."""
    context_frames: Optional[int] = None
    """Known frames of each extension step (default 8, the paper's; 1 for an orbit backend: its last frame)."""
    new_frames_per_step: Optional[int] = None
    """Frames each extension step adds (default 8, the paper's; an orbit backend's native length - 1)."""
    dtype: Optional[Literal["float32", "float16", "bfloat16"]] = None
    """Weights dtype (default: bfloat16 on CUDA, float32 on the CPU)."""
    device: Optional[str] = None
    """torch device (default: cuda if available, else cpu)."""
    cpu_offload: bool = False
    """Keep models on the CPU and move each to the GPU while it runs (diffusers' model CPU offload; needs
    accelerate)."""

    @property
    def orbit(self) -> bool:
        """The freeze-time video comes from an image-to-video model with an orbit LoRA."""
        return self.freeze_backend != "same"

    def extension(self) -> Dict[str, object]:
        """clip_frames, context_frames, new_frames_per_step, degrees_per_frame: given, or the backend's defaults."""
        defaults = dict(SAME_BACKEND_EXTENSION)
        if self.orbit:
            from fourreal_ns.generate.orbit_backends import orbit_defaults

            known = orbit_defaults(self.freeze_backend)
            defaults.update({key: known[key] for key in ("clip_frames", "context_frames", "new_frames_per_step")})
            if known["degrees_per_frame"] is not None:
                defaults["degrees_per_frame"] = known["degrees_per_frame"]
        return {key: default if getattr(self, key) is None else getattr(self, key) for key, default in defaults.items()}

    def default_size(self) -> tuple:
        """(height, width) of the reference video when --width / --height are not given."""
        if self.orbit:
            return ORBIT_BACKENDS[self.freeze_backend].reference_size
        return GENERATORS[self.backend].default_size

    def generator_settings(self) -> GeneratorSettings:
        height, width = self.default_size()
        return GeneratorSettings(backend=self.backend, model_id=self.model_id,
                                 freeze_model_id=None if self.orbit else self.freeze_model_id,
                                 width=self.width or width, height=self.height or height,
                                 num_inference_steps=self.num_inference_steps,
                                 guidance_scale=self.guidance_scale, frame_rate=self.reference_fps,
                                 dtype=self.dtype, device=self.device, cpu_offload=self.cpu_offload)

    def orbit_settings(self, width: int, height: int):
        from fourreal_ns.generate.orbit_backends import OrbitSettings

        return OrbitSettings(backend=self.freeze_backend, model_id=self.freeze_model_id, lora=self.lora,
                             lora_scale=self.lora_scale, width=width, height=height, orbit_width=self.orbit_width,
                             orbit_height=self.orbit_height, num_inference_steps=self.num_inference_steps,
                             dtype=self.dtype, device=self.device, cpu_offload=self.cpu_offload)


def _check_inputs(prompt: str, out: Path, options: GenerationOptions) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise GenerateError("--prompt is empty: describe the scene, e.g. --prompt 'a panda playing guitar in a "
                            "kitchen'.")
    if out.exists() and not out.is_dir():
        raise GenerateError(f"--out {out} is a file; give a folder for the scene (it is created if missing).")
    if options.backend not in GENERATORS:
        raise GenerateError(f"--backend {options.backend!r}: use one of {', '.join(GENERATORS)}.")
    if options.num_reference_frames < 2:
        raise GenerateError("--num-reference-frames must be at least 2.")
    if options.num_freeze_frames is not None and options.num_freeze_frames < 2:
        raise GenerateError("--num-freeze-frames must be at least 2.")
    for name in ("width", "height", "num_inference_steps"):
        value = getattr(options, name)
        if value is not None and value <= 0:
            raise GenerateError(f"--{name.replace('_', '-')} must be positive.")
    if options.freeze_prompt is not None and not options.freeze_prompt.strip():
        raise GenerateError("--freeze-prompt is empty; leave it out to use the rewritten prompt.")
    if not options.orbit and any(value is not None for value in (options.lora, options.lora_scale,
                                                                 options.orbit_width, options.orbit_height)):
        raise GenerateError("--lora, --lora-scale, --orbit-width and --orbit-height belong to an orbit "
                            f"--freeze-backend ({', '.join(ORBIT_BACKENDS)}); the default 'same' has no LoRA.")


def resolve_settings(prompt: str, options: GenerationOptions) -> Dict[str, object]:
    """Every setting that determines the frames, with the backend's defaults filled in (no model is loaded)."""
    backend = GENERATORS[options.backend]
    model_id = options.model_id or backend.default_model_id
    extension = options.extension()
    try:
        j_c = canonical_reference_frame(options.canonical_frame, options.num_reference_frames)
        target = (options.num_freeze_frames if options.num_freeze_frames is not None
                  else frames_for_arc(options.arc_degrees, float(extension["degrees_per_frame"])))
        plan_extension(target, int(extension["clip_frames"]), int(extension["context_frames"]),
                       int(extension["new_frames_per_step"]))
    except ValueError as error:
        raise GenerateError(str(error)) from None
    default_height, default_width = options.default_size()
    width, height = int(options.width or default_width), int(options.height or default_height)
    if width % backend.size_multiple or height % backend.size_multiple:
        raise GenerateError(f"--width and --height must be multiples of {backend.size_multiple} for backend "
                            f"{options.backend} (got {width} x {height}).")
    device_is_cuda = (options.device or "").startswith("cuda")
    if options.device is None:
        import torch

        device_is_cuda = torch.cuda.is_available()
    freeze_model_id = options.freeze_model_id or model_id
    orbit = None
    if options.orbit:
        orbit = options.orbit_settings(width, height)
        source, weight_name = orbit.lora_source()
        freeze_model_id = orbit.base_model_id
    return {
        "prompt": prompt.strip(),
        "freeze_prompt": _freeze_prompt(prompt, options),
        "negative_prompt": options.negative_prompt,
        "backend": options.backend,
        "model_ids": {"reference": model_id, "freeze": freeze_model_id},
        "seed": int(options.seed),
        "num_reference_frames": int(options.num_reference_frames),
        "reference_frame": j_c,
        "width": width,
        "height": height,
        "num_inference_steps": int(options.num_inference_steps or backend.default_steps),
        "guidance_scale": float(options.guidance_scale if options.guidance_scale is not None
                                else backend.default_guidance_scale),
        "reference_fps": float(options.reference_fps),
        "dtype": options.dtype or ("bfloat16" if device_is_cuda else "float32"),
        "clip_frames": int(extension["clip_frames"]),
        "context_frames": int(extension["context_frames"]),
        "new_frames_per_step": int(extension["new_frames_per_step"]),
        "degrees_per_frame": float(extension["degrees_per_frame"]),
        "target_freeze_frames": int(target),
        "freeze_backend": options.freeze_backend,
        "lora": None if orbit is None else source + (f"/{weight_name}" if weight_name else ""),
        "lora_scale": None if orbit is None else float(orbit.lora_scale if orbit.lora_scale is not None
                                                       else orbit.record.lora_scale),
        "orbit_size": None if orbit is None else [int(options.orbit_height or orbit.record.native_size[0]),
                                                  int(options.orbit_width or orbit.record.native_size[1])],
    }


def _freeze_prompt(prompt: str, options: GenerationOptions) -> str:
    """--freeze-prompt, or the paper's rewrite (3.2), or an orbit backend's template with its trigger phrase around
    the prompt's static description."""
    if options.freeze_prompt:
        return options.freeze_prompt.strip()
    if options.orbit:
        from fourreal_ns.generate.prompts import static_description

        description = static_description(prompt)
        return ORBIT_BACKENDS[options.freeze_backend].prompt_template.format(
            scene=description[:1].upper() + description[1:])
    return freeze_time_prompt(prompt)


def _clear_generated(out: Path) -> None:
    """--overwrite: remove what `fourreal generate` wrote, and transforms.json / points3d.ply made from it."""
    for folder in (out / "images" / "reference", out / "images" / "freeze", out / PARTS_FOLDER):
        if folder.is_dir():
            shutil.rmtree(folder)
    for name in (GENERATION_FILE, "transforms.json", "points3d.ply"):
        if (out / name).is_file():
            (out / name).unlink()


def _open_record(out: Path, settings: Dict[str, object], overwrite: bool) -> GenerationRecord:
    """The scene's record: new, or the existing one when its settings match (resume)."""
    if overwrite and out.is_dir():
        _clear_generated(out)
    record = GenerationRecord.read(out)
    if record is None:
        if out.is_dir() and any(any((out / name).rglob("*")) for name in ("images", PARTS_FOLDER)):
            raise GenerateError(
                f"{out} holds images but no {GENERATION_FILE}: it is not a scene `fourreal generate` can resume. "
                "Pass a new --out, or --overwrite to replace the generated videos there.")
        record = GenerationRecord(out, {"source": "fourreal generate", "settings": settings, "completed": []})
        record.save()
        return record
    previous = {**SETTINGS_BEFORE_ORBIT_BACKENDS, **record.content.get("settings", {})}
    changed = [key for key in CONTENT_SETTINGS if previous.get(key) != settings.get(key)]
    if changed:
        details = "; ".join(f"{key}: {previous.get(key)!r} -> {settings.get(key)!r}" for key in changed)
        raise GenerateError(
            f"{out} was generated with other settings ({details}). Its videos would not match: pass a new --out "
            "for the new scene, or --overwrite to replace this one.")
    return record


def _metadata(settings: Dict[str, object], plan: ExtensionPlan, degrees_per_frame: float,
              arc_degrees: Optional[float]) -> Dict[str, object]:
    """The generation.json keys `fourreal process` and the trainers read (docs/generate.md)."""
    num_reference = int(settings["num_reference_frames"])
    j_c = int(settings["reference_frame"])
    seed = int(settings["seed"])
    return {
        "prompt": settings["prompt"],
        "freeze_prompt": settings["freeze_prompt"],
        "negative_prompt": settings["negative_prompt"],
        "backend": settings["backend"],
        "model_ids": settings["model_ids"],
        "seeds": {"reference": seed, **extension_seeds(plan, seed)},
        "reference_fps": settings["reference_fps"],
        "canonical": {"freeze_frame": plan.canonical_index, "reference_frame": j_c,
                      "time": j_c / (num_reference - 1)},
        "arc_degrees": (plan.num_frames - 1) * degrees_per_frame,
        "requested_arc_degrees": arc_degrees,
        "degrees_per_frame": degrees_per_frame,
        "num_frames": {"reference": num_reference, "freeze": plan.num_frames},
        "extension": {"clip_frames": plan.clip_frames, "context_frames": plan.context_frames,
                      "new_frames_per_step": plan.new_per_step, "forward_steps": plan.forward_steps,
                      "backward_steps": plan.backward_steps},
        "width": settings["width"], "height": settings["height"],
        "num_inference_steps": settings["num_inference_steps"], "guidance_scale": settings["guidance_scale"],
        "dtype": settings["dtype"],
        "freeze_backend": settings["freeze_backend"],
        **({"lora": {"id": settings["lora"], "scale": settings["lora_scale"]},
            "camera_path": {"known": ORBIT_BACKENDS[settings["freeze_backend"]].degrees_per_frame is not None,
                            "source": f"the {settings['freeze_backend']} LoRA's orbit"}}
           if settings["freeze_backend"] != "same" else {}),
    }


def generate_scene(prompt: str, out: Path, options: GenerationOptions, overwrite: bool = False,
                   progress=None, generator_factory: Callable[[GeneratorSettings], VideoGenerator] = load_generator,
                   ) -> Path:
    """Write (or finish) the generated scene `out`; returns it. `progress`: a rich Progress to add rows to (one is
    made when None)."""
    out = Path(out)
    _check_inputs(prompt, out, options)
    settings = resolve_settings(prompt, options)
    if options.orbit:
        from fourreal_ns.generate.orbit_backends import OrbitBackendError, check_orbit_inputs

        try:  # before any model loads or any frame is made
            check_orbit_inputs(options.orbit_settings(int(settings["width"]), int(settings["height"])))
        except OrbitBackendError as error:
            raise GenerateError(str(error)) from None
    record = _open_record(out, settings, overwrite)
    plan = plan_extension(int(settings["target_freeze_frames"]), int(settings["clip_frames"]),
                          int(settings["context_frames"]), int(settings["new_frames_per_step"]),
                          both_directions=not options.orbit)
    record.update(**_metadata(settings, plan, float(settings["degrees_per_frame"]),
                              None if options.num_freeze_frames is not None else options.arc_degrees))
    needed = ["reference", *plan.parts(), "freeze"]
    if all(record.is_done(part) for part in needed):
        CONSOLE.print(f"{out}: the generated videos are complete ({plan.num_frames} freeze-time, "
                      f"{settings['num_reference_frames']} reference frames); nothing to do.")
        return out

    started = time.time()
    steps = int(settings["num_inference_steps"])
    with (_new_progress() if progress is None else nullcontext(progress)) as bars:
        generator: Optional[VideoGenerator] = None
        if not all(record.is_done(part) for part in needed[:-1]):  # only the assembly left: no model needed
            if options.orbit:
                generator = _two_models(options, settings, generator_factory, bars)
            else:
                loading = bars.add_task(f"loading {settings['backend']} ({settings['model_ids']['reference']})",
                                        total=None)
                generator = generator_factory(options.generator_settings())
                bars.update(loading, total=1, completed=1)

        reference_folder = out / "images" / "reference"
        reference_bar = bars.add_task("reference video", total=steps)
        if record.is_done("reference") and reference_folder.is_dir():
            reference = read_frames(reference_folder)
            bars.update(reference_bar, completed=steps, description="reference video (kept)")
        else:
            reference = generate_reference_video(generator, str(settings["prompt"]), options.negative_prompt,
                                                 options.num_reference_frames, int(settings["seed"]),
                                                 on_step=lambda: bars.advance(reference_bar))
            write_frames_atomic(reference_folder, reference)
            record.mark_done("reference")
            bars.update(reference_bar, completed=steps)

        parts = plan.parts()
        freeze_bar = bars.add_task(f"freeze-time video ({len(parts)} parts)", total=len(parts) * steps)

        def on_part(part: str, reused: bool) -> None:
            done = (parts.index(part) + 1) * steps
            bars.update(freeze_bar, completed=done)

        frames = generate_freeze_time_video(
            generator, str(settings["freeze_prompt"]), options.negative_prompt,
            reference[int(settings["reference_frame"])], plan, int(settings["seed"]), record,
            on_step=lambda: bars.advance(freeze_bar), on_part=on_part)
        write_frames_atomic(out / "images" / "freeze", frames)
        record.mark_done("freeze")
    CONSOLE.print(f"Wrote {len(reference)} reference and {len(frames)} freeze-time frames (k_c = "
                  f"{plan.canonical_index}, j_c = {settings['reference_frame']}) to {out} in {time.time() - started:.0f} s."
                  f" Next: fourreal process {out}")
    return out


def _two_models(options: GenerationOptions, settings: Dict[str, object],
                generator_factory: Callable[[GeneratorSettings], VideoGenerator], bars) -> VideoGenerator:
    """The reference model, then the orbit model (loaded after the reference video), each with its loading row."""
    from fourreal_ns.generate.orbit_backends import OrbitGenerator, ReferenceThenOrbit

    def loaded(description: str, make: Callable[[], object]) -> Callable[[], object]:
        def load() -> object:
            row = bars.add_task(f"loading {description}", total=None)
            model = make()
            bars.update(row, total=1, completed=1)
            return model

        return load

    orbit_settings = options.orbit_settings(int(settings["width"]), int(settings["height"]))
    return ReferenceThenOrbit(
        loaded(f"{settings['backend']} ({settings['model_ids']['reference']})",
               lambda: generator_factory(options.generator_settings())),
        loaded(f"{options.freeze_backend} ({settings['model_ids']['freeze']} + {settings['lora']})",
               lambda: OrbitGenerator(orbit_settings)))


def _new_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=CONSOLE)


@dataclass
class Generate:
    """Generate a scene from text: a reference video and a freeze-time video conditioned on its canonical frame,
    extended forward and backward (4Real, section 3.2). Writes images/reference, images/freeze and generation.json
    under --out; run again to resume. Next step: `fourreal process OUT`."""

    prompt: str
    """What the scene shows, e.g. 'a panda playing guitar in a kitchen'."""
    out: Path
    """Scene folder to write (created if missing; an unfinished one with the same settings is resumed)."""
    generation: Annotated[GenerationOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=GenerationOptions)
    """Models, sizes, seeds, frame counts."""
    overwrite: bool = False
    """Replace the generated videos of an existing scene folder (also removes its transforms.json)."""

    def main(self) -> None:
        from fourreal_ns.guidance.errors import GuidanceWeightsNotFoundError

        try:
            generate_scene(self.prompt, self.out, self.generation, self.overwrite)
        except GenerateError as error:
            raise SystemExit(f"fourreal generate: {error}") from None
        except GuidanceWeightsNotFoundError as error:
            raise SystemExit(weights_message(error.model_id, error.backend, error.reason)) from None


def weights_message(model_id: str, backend: str, reason: str) -> str:
    """How to make a generation model available (the weights come from the Hugging Face hub)."""
    return "\n".join([
        f"fourreal generate: could not load the {backend} video model '{model_id}'.",
        f"Reason: {reason}" if reason else "",
        f"Download it on a machine with network access (`hf download {model_id}`, filling the Hugging Face cache; "
        "keep HF_HUB_OFFLINE=1 where there is none), or into a folder "
        f"(`hf download {model_id} --local-dir FOLDER`) and pass --model-id FOLDER.",
    ])

