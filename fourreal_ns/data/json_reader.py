"""Reading our JSON files (transforms.json, generation.json) with one kind of error: it names the file, what is wrong
(missing, the line and column of a syntax error, not an object) and how to fix it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Type


def read_json_object(path: Path, fix: str, error: Type[Exception] = ValueError) -> dict:
    """The JSON object in `path`. A missing file, invalid JSON or another JSON value raise `error` with a message that
    names `path` and ends with `fix` (what the user should do)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist. {fix}")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as decode_error:
        raise error(f"{path} is not valid JSON (line {decode_error.lineno}, column {decode_error.colno}: "
                    f"{decode_error.msg}). {fix}") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not a UTF-8 text file. {fix}") from None
    if not isinstance(content, dict):
        raise error(f"{path} holds a JSON {type(content).__name__}, not an object. {fix}")
    return content
