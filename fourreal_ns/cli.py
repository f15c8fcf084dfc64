"""The `fourreal` command: tyro subcommands, each a dataclass with a `main()`.

    fourreal demo                                  build the demo scene, train on it on the CPU, render an orbit video
    fourreal generate --prompt TEXT --out SCENE    reference + freeze-time videos from text (video diffusion)
    fourreal process SCENE | --freeze V [V ...] [--reference V] --out SCENE | --grid DIR --out SCENE
                                                   poses by SfM (pycolmap) and seed points -> transforms.json
                                                   (a freeze-time video alone: a static scene; docs/your_own_video.md)
    fourreal run --prompt TEXT --out DIR           generate -> process -> both stages -> an orbit-through-time video
    fourreal run --freeze V --out DIR              your own freeze-time video -> process -> canonical stage -> orbit
    fourreal batch --prompts FILE --out DIR        many `fourreal run`s on Ray (retries, resume, a gallery)
    fourreal refine --load-config CFG              re-upsample a rendered video and fine-tune the motion stage on it
    fourreal demo-scene OUT                        write the procedural demo scene (scene format: docs/scene_format.md)
    fourreal import-dnerf NPZ OUT                  a packed D-NeRF scene (.npz) as a scene folder
    fourreal camera-path {bullet-time,fixed-view,orbit-through-time} --load-config CFG --output PATH.json
                                                   4D camera paths for `ns-render camera-path`
    fourreal export ply-sequence --load-config CFG --output-dir DIR
                                                   one standard 3DGS .ply per time step
    fourreal export web --load-config CFG --output-dir DIR
                                                   a self-contained web page: orbit and scrub time in a browser
    fourreal view-web DIR                          serve such a page on this machine and print its address

Commands import their heavy dependencies (nerfstudio's trainer, the models) inside `main()`, so `--help` is fast.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Union

import tyro
from typing_extensions import Annotated

from fourreal_ns.batch.command import Batch
from fourreal_ns.camera_paths import BulletTime, FixedView, OrbitThroughTime
from fourreal_ns.data.dnerf_import import ImportDNeRF
from fourreal_ns.demo import Demo
from fourreal_ns.demo_scene import DemoSceneConfig
from fourreal_ns.export.ply_sequence import ExportPlySequence
from fourreal_ns.export.web import ExportWeb
from fourreal_ns.export.web_server import ViewWeb
from fourreal_ns.generate.command import Generate
from fourreal_ns.refine import Refine
from fourreal_ns.process.command import Process
from fourreal_ns.run_all import RunAll


def _doc(command: type) -> str:
    """A command's docstring as one paragraph: its help text."""
    return " ".join(inspect.cleandoc(command.__doc__ or "").split())


@dataclass
class CameraPath:
    """Write a 4D camera path (keyframes with render_time) for `ns-render camera-path`, from a run's scene."""

    path: tyro.conf.OmitSubcommandPrefixes[
        Union[
            Annotated[BulletTime, tyro.conf.subcommand("bullet-time", description=_doc(BulletTime))],
            Annotated[FixedView, tyro.conf.subcommand("fixed-view", description=_doc(FixedView))],
            Annotated[OrbitThroughTime,
                      tyro.conf.subcommand("orbit-through-time", description=_doc(OrbitThroughTime))],
        ]
    ]

    def main(self) -> None:
        self.path.main()


@dataclass
class Export:
    """Export a trained 4D scene."""

    format: tyro.conf.OmitSubcommandPrefixes[
        Union[
            Annotated[ExportPlySequence, tyro.conf.subcommand("ply-sequence", description=_doc(ExportPlySequence))],
            Annotated[ExportWeb, tyro.conf.subcommand("web", description=_doc(ExportWeb))],
        ]
    ]

    def main(self) -> None:
        self.format.main()


Commands = Union[
    Annotated[Demo, tyro.conf.subcommand("demo", description=_doc(Demo))],
    Annotated[DemoSceneConfig, tyro.conf.subcommand("demo-scene", description=_doc(DemoSceneConfig))],
    Annotated[Generate, tyro.conf.subcommand("generate", description=_doc(Generate))],
    Annotated[Process, tyro.conf.subcommand("process", description=_doc(Process))],
    Annotated[RunAll, tyro.conf.subcommand("run", description=_doc(RunAll))],
    Annotated[Batch, tyro.conf.subcommand("batch", description=_doc(Batch))],
    Annotated[Refine, tyro.conf.subcommand("refine", description=_doc(Refine))],
    Annotated[ImportDNeRF, tyro.conf.subcommand("import-dnerf", description=_doc(ImportDNeRF))],
    Annotated[CameraPath, tyro.conf.subcommand("camera-path", description=_doc(CameraPath))],
    Annotated[Export, tyro.conf.subcommand("export", description=_doc(Export))],
    Annotated[ViewWeb, tyro.conf.subcommand("view-web", description=_doc(ViewWeb))],
]


def entrypoint() -> None:
    tyro.cli(Commands).main()


if __name__ == "__main__":
    entrypoint()
