"""The `fourreal` command: tyro subcommands, each a dataclass with a `main()`.

    fourreal demo                 build the demo scene, train on it on the CPU, render an orbit video
    fourreal demo-scene OUT       write the procedural demo scene (scene format: docs/scene_format.md)
"""

from __future__ import annotations

from typing import Union

import tyro
from typing_extensions import Annotated

from fourreal_ns.demo import Demo
from fourreal_ns.demo_scene import DemoSceneConfig

Commands = Union[
    Annotated[Demo, tyro.conf.subcommand("demo", description=Demo.__doc__)],
    Annotated[DemoSceneConfig, tyro.conf.subcommand("demo-scene", description=DemoSceneConfig.__doc__)],
]


def entrypoint() -> None:
    tyro.cli(Commands).main()


if __name__ == "__main__":
    entrypoint()
