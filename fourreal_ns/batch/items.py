"""The items of a `fourreal batch`: read from the user's file, named, turned into `fourreal run` command lines and
checked before anything starts.

Two file forms:

- text (any suffix but .yaml / .yml / .json): one prompt a line; blank lines and lines starting with `#` are skipped;
- YAML or JSON: a list of items, or a mapping `{defaults: {...}, items: [...]}`. An item is a prompt (a string) or a
  mapping of `fourreal run` options, spelled as in `fourreal run --help` without the dashes (`seed: 3`,
  `schedule: small`, `num-reference-frames: 49` or `num_reference_frames: 49`, `freeze: [orbit.mp4]` for your own
  video instead of a prompt), plus `name:` (the item's folder; default from its prompt and options).

An item's options, lowest precedence first: the file's `defaults`, the command line's `--set KEY=VALUE`, the item's
own. `freeze` paths are relative to the items file. Every item's command line is parsed by `fourreal run`'s own
parser (tyro) and checked by `RunAll.check_options` here, so a misspelt option or a missing prompt stops the batch
before Ray starts, naming the file and the item.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import yaml

from fourreal_ns.errors import FourRealError

STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")
BATCH_KEYS = ("name",)
"""Item keys that belong to the batch, not to `fourreal run`."""
FORBIDDEN_KEYS = ("out",)
"""`fourreal run` options the batch sets itself (each item's folder is DIR/items/NAME)."""


class BatchItemsError(FourRealError, ValueError):
    """An items file that cannot be read, or an item whose options `fourreal run` would refuse."""


@dataclass
class BatchItem:
    """One scene of the batch: its name (folder DIR/items/NAME), options and where it came from."""

    name: str
    options: Dict[str, Any]
    """`fourreal run` options (underscored keys), defaults merged in."""
    where: str
    """`FILE: item N` (or `line N`), for messages."""
    index: int
    """Its position in the file (the gallery's order)."""
    arguments: List[str] = field(default_factory=list)
    """The `fourreal run` command line without `--out`."""

    @property
    def prompt(self) -> str:
        """What the gallery shows as the item's text: its prompt, or its input video(s)."""
        if self.options.get("prompt"):
            return str(self.options["prompt"])
        freeze = self.options.get("freeze") or []
        return "your video: " + ", ".join(Path(str(video)).name for video in _as_list(freeze))

    def to_json(self) -> dict:
        return {"name": self.name, "options": self.options, "where": self.where, "index": self.index,
                "arguments": self.arguments}

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> "BatchItem":
        return cls(name=content["name"], options=dict(content["options"]), where=content["where"],
                   index=int(content["index"]), arguments=list(content["arguments"]))


def _as_list(value: Any) -> List[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _normalise(options: Mapping[str, Any], where: str) -> Dict[str, Any]:
    normalised = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise BatchItemsError(f"{where}: option {key!r} is not a name; write `option: value`.")
        key = key.strip().lstrip("-").replace("-", "_")
        if key in FORBIDDEN_KEYS:
            raise BatchItemsError(f"{where}: `{key}` is set by the batch (each item goes to DIR/items/NAME); "
                                  "remove it, or give the item a `name`.")
        normalised[key] = value
    return normalised


def parse_settings(settings: Sequence[str]) -> Dict[str, Any]:
    """`--set KEY=VALUE` pairs; a value is read as YAML (`3` an int, `true` a bool, `[a, b]` a list)."""
    options = {}
    for setting in settings:
        key, equals, value = setting.partition("=")
        if not equals or not key.strip():
            raise BatchItemsError(f"--set {setting!r}: write KEY=VALUE, e.g. --set seed=3 schedule=small.")
        options[key] = yaml.safe_load(value) if value.strip() else ""
    return _normalise(options, "--set")


def _raw_items(path: Path) -> tuple:
    """(defaults, [(where, raw item)]) from a text, YAML or JSON file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise BatchItemsError(f"--prompts {path} cannot be read ({error.strerror}); give a text file with one prompt "
                              "a line, or a YAML / JSON list of items (docs/batch.md).") from None
    if path.suffix.lower() not in STRUCTURED_SUFFIXES:
        lines = [(f"{path}: line {number}", line.strip()) for number, line in enumerate(text.splitlines(), 1)]
        return {}, [(where, line) for where, line in lines if line and not line.startswith("#")]
    try:
        content = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise BatchItemsError(f"--prompts {path} is not valid {path.suffix[1:].upper()}: {error}") from None
    defaults: Any = {}
    if isinstance(content, dict):
        unknown = sorted(set(content) - {"defaults", "items"})
        if unknown or "items" not in content:
            raise BatchItemsError(f"{path}: a mapping needs `items:` (a list) and may have `defaults:`; found "
                                  f"{', '.join(map(str, sorted(content)))}.")
        defaults, content = content.get("defaults") or {}, content["items"]
    if not isinstance(content, list) or not isinstance(defaults, dict):
        raise BatchItemsError(f"{path}: give a list of items (prompts or mappings of `fourreal run` options), or "
                              "`{defaults: {...}, items: [...]}` (docs/batch.md).")
    return defaults, [(f"{path}: item {number}", item) for number, item in enumerate(content, 1)]


def _slug(text: str, length: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:length].rstrip("-") or "item"


def _default_name(options: Mapping[str, Any], prompt: str) -> str:
    """A name that stays the same when the file is reordered and changes when the item's options change (a resumed
    batch finds its items again; an edited item is a new scene)."""
    digest = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{_slug(prompt)}-{digest}"


def run_arguments(options: Mapping[str, Any]) -> List[str]:
    """`fourreal run` command-line arguments of an item's options (True -> --flag, False -> --no-flag, a list -> the
    flag followed by each value)."""
    arguments: List[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            arguments.append(flag if value else "--no-" + key.replace("_", "-"))
        elif value is None:
            arguments += [flag, "None"]
        elif isinstance(value, (list, tuple)):
            arguments += [flag, *[str(part) for part in value]]
        else:
            arguments += [flag, str(value)]
    return arguments


def check_item(item: BatchItem) -> None:
    """Parse the item's command line with `fourreal run`'s parser and check its options (BatchItemsError naming the
    item and tyro's or RunAll's message)."""
    import tyro

    from fourreal_ns.run_all import RunAll

    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages), contextlib.redirect_stdout(messages):
            command = tyro.cli(RunAll, args=[*item.arguments, "--out", "."])
    except SystemExit:
        text = re.sub(r"\x1b\[[0-9;]*m", "", messages.getvalue()).strip()
        raise BatchItemsError(f"{item.where} ({item.name}): `fourreal run` refuses its options "
                              f"{' '.join(item.arguments)}:\n{text}") from None
    try:
        command.check_options()
    except ValueError as error:
        raise BatchItemsError(f"{item.where} ({item.name}): {error}") from None


def read_items(path: Path, settings: Mapping[str, Any] = ()) -> List[BatchItem]:
    """The file's items, named, with their command lines, each checked (module docstring)."""
    path = Path(path)
    defaults, raw_items = _raw_items(path)
    defaults = _normalise(defaults, f"{path}: defaults")
    items: List[BatchItem] = []
    for index, (where, raw) in enumerate(raw_items):
        if isinstance(raw, str):
            raw = {"prompt": raw}
        if not isinstance(raw, dict):
            raise BatchItemsError(f"{where}: an item is a prompt or a mapping of `fourreal run` options, not {raw!r}.")
        own = _normalise(raw, where)
        options = {**defaults, **dict(settings), **own}
        name = options.pop("name", None)
        if "freeze" in options:
            options["freeze"] = [str((path.parent / str(video)).resolve()) for video in _as_list(options["freeze"])]
        if name is not None and _slug(str(name), 80) != str(name):
            raise BatchItemsError(f"{where}: name {name!r} must be a folder name of lowercase letters, digits and "
                                  f"dashes (e.g. {_slug(str(name), 80)!r}).")
        item = BatchItem(name="", options=options, where=where, index=index, arguments=run_arguments(options))
        item.name = str(name) if name is not None else _default_name(options, item.prompt)
        items.append(item)
    if not items:
        raise BatchItemsError(f"--prompts {path} has no items: write one prompt a line, or a YAML / JSON list.")
    seen: Dict[str, BatchItem] = {}
    for item in items:
        if item.name in seen:
            raise BatchItemsError(f"{seen[item.name].where} and {item.where} are the same scene ({item.name}): give "
                                  "one a different `name` or `seed`, or remove it.")
        seen[item.name] = item
    for item in items:
        check_item(item)
    return items
