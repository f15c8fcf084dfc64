"""A training run's `config.yml`, read as plain data: which scene folder it trained on, at what scale.

nerfstudio saves a run's `TrainerConfig` with `yaml.dump`, so the file is full of `!!python/object:...` tags;
`yaml.Loader` (what `eval_setup` uses) rebuilds the objects, which imports every module they name (the model,
its deformation fields, the guidance backends). Commands that only need the run's geometry (`fourreal camera-path`)
read the file with a loader that turns every Python tag into plain data instead (objects -> dicts with their class
name under `__class__`, paths -> `Path`, tuples -> lists, names -> strings), so they work without building or even
importing the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from fourreal_ns.errors import FourRealError

PYTHON_TAG = "tag:yaml.org,2002:python/"
DATAPARSER_CLASS = "FourRealDataParserConfig"


class RunConfigError(FourRealError, ValueError):
    """A config.yml that cannot be read, or that does not point at a fourreal scene folder."""


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that reads nerfstudio's Python-tagged YAML as plain data (module docstring)."""


def _construct_python(loader: _PlainLoader, suffix: str, node: yaml.Node) -> Any:
    kind, _, name = suffix.partition(":")
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        if kind.startswith("object"):
            return {"__class__": name, **value}
        return value
    if isinstance(node, yaml.SequenceNode):
        items = loader.construct_sequence(node, deep=True)
        if kind == "object/apply" and name.startswith("pathlib."):
            return Path(*[str(item) for item in items]) if items else Path()
        return items
    scalar = loader.construct_scalar(node)
    if kind in ("name", "module"):
        return name
    if kind == "object/apply" and name.startswith("pathlib."):
        return Path(scalar) if scalar else Path()
    return scalar


_PlainLoader.add_multi_constructor(PYTHON_TAG, _construct_python)


def read_run_config(config_path: Path) -> dict:
    """`config.yml` as nested dicts (module docstring)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise RunConfigError(
            f"{config_path} does not exist: pass the config.yml of a training run (outputs/<experiment>/<method>/"
            "<timestamp>/config.yml)."
        )
    try:
        content = yaml.load(config_path.read_text(), Loader=_PlainLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise RunConfigError(f"{config_path} is not a readable nerfstudio config.yml ({error}).") from None
    if not isinstance(content, dict) or not isinstance(content.get("pipeline"), dict):
        raise RunConfigError(f"{config_path} has no `pipeline` section: it is not a nerfstudio run's config.yml.")
    return content


@dataclass
class RunScene:
    """Where a run's scene is and how the dataparser transformed it."""

    folder: Path
    """The scene folder (docs/scene_format.md)."""
    scale_factor: float
    """Camera positions in the model's space = scene positions * scale_factor (the dataparser applies no other
    transform)."""
    method_name: Optional[str] = None


def _is_set(path: Any) -> bool:
    return isinstance(path, Path) and str(path) not in ("", ".")


def scene_of_run(config_path: Path, data: Optional[Path] = None) -> RunScene:
    """The scene folder a run trained on (`data` overrides it, e.g. when the run moved) and its scale factor.

    nerfstudio keeps the folder in one of three places, in this order of precedence: the top-level `data`
    (`ns-train --data`), `pipeline.datamanager.data`, `pipeline.datamanager.dataparser.data`. Relative paths are
    relative to the directory ns-train ran in; they are tried from the current directory."""
    config_path = Path(config_path)
    content = read_run_config(config_path)
    datamanager = content["pipeline"].get("datamanager") or {}
    dataparser = datamanager.get("dataparser") or {}
    parser_class = dataparser.get("__class__", "") if isinstance(dataparser, dict) else ""
    if not parser_class.endswith(DATAPARSER_CLASS):
        raise RunConfigError(
            f"{config_path}: the run's dataparser is {parser_class or 'unknown'}, not fourreal's "
            f"({DATAPARSER_CLASS}, `fourreal-data`): this command needs a run trained on a fourreal scene folder."
        )
    scale = float(dataparser.get("scale_factor", 1.0))
    if data is None:
        candidates = [content.get("data"), datamanager.get("data"), dataparser.get("data")]
        data = next((candidate for candidate in candidates if _is_set(candidate)), None)
        if data is None:
            raise RunConfigError(
                f"{config_path} names no scene folder (data, pipeline.datamanager.data and its dataparser's data are "
                "all empty). Pass the scene folder with --data."
            )
    folder = Path(data)
    if folder.name == "transforms.json":
        folder = folder.parent
    if not (folder / "transforms.json").is_file():
        raise RunConfigError(
            f"{config_path} trained on the scene {folder}, which has no transforms.json from here (relative paths "
            f"are read from the current directory, {Path.cwd()}). Run from the directory ns-train ran in, or pass "
            "the scene folder with --data."
        )
    return RunScene(folder=folder, scale_factor=scale, method_name=content.get("method_name"))
