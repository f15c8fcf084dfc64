"""Text -> scene videos (4Real paper, section 3.2): `fourreal generate`, and `fourreal refine` (re-upsampling, 3.4).

Modules, in the order the command uses them:
- `prompts`: the freeze-time prompt ("Camera circulating around ..., time elapse", action verbs removed);
- `video_models`: the `VideoGenerator` protocol and its diffusers backends (`ltx` default, `wan`);
- `reference_video`: text-to-video and the canonical reference frame j_c;
- `freeze_time`: the freeze-time clip conditioned on j_c and its autoregressive extension (8 known frames a step);
- `parts`: generation.json and the resumable parts of a scene folder;
- `command`: the `Generate` command;
- `nominal_poses`: transforms.json from the trajectory the generator was asked for (when SfM cannot pose frames);
- `refine`: the `Refine` command (render, downsample, re-upsample with the video model's upsampler, fine-tune).
"""
