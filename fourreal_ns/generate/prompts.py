"""Prompt engineering for freeze-time videos (4Real paper, section 3.2, "Context conditioning and prompt engineering").

The paper raises the share of generated videos that show a static scene under a moving camera by "adding phrases such
as 'Camera circulating around' and 'time elapse' to the beginning and end of the input prompt, while omitting action
verbs". `freeze_time_prompt` does exactly that, deterministically:

    "a panda playing guitar in a kitchen"  ->  "Camera circulating around a panda with guitar in a kitchen, time elapse"
    "A dog is running on the beach"        ->  "Camera circulating around a dog on the beach, time elapse"

The rewrite is a small table, not a parser: every action verb it knows (gerund "playing" and third person "plays")
is either dropped (intransitive motion: running, dancing, ...) or replaced by a static preposition that keeps its
object in the scene ("playing guitar" -> "with guitar", "riding a horse" -> "on a horse"). An auxiliary right before
a rewritten verb ("is", "are") goes with it, and so do motion adverbs ("quickly") and a conjunction ("and", "while") right
before a rewritten verb. Everything else is kept as written. Users whose prompt the table does not cover pass `--freeze-prompt`.
"""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

CAMERA_PREFIX = "Camera circulating around"
TIME_SUFFIX = "time elapse"

# (gerund, third person singular, replacement): replacement "" drops the verb, otherwise the verb becomes it.
_VERBS: Tuple[Tuple[str, str, str], ...] = (
    # transitive: keep the object in the scene
    ("playing", "plays", "with"), ("holding", "holds", "with"), ("carrying", "carries", "with"),
    ("eating", "eats", "with"), ("drinking", "drinks", "with"), ("reading", "reads", "with"),
    ("throwing", "throws", "with"), ("kicking", "kicks", "with"), ("cooking", "cooks", "with"),
    ("painting", "paints", "with"), ("juggling", "juggles", "with"), ("swinging", "swings", "with"),
    ("waving", "waves", "with"), ("typing", "types", "with"), ("strumming", "strums", "with"),
    ("riding", "rides", "on"), ("chasing", "chases", "near"), ("catching", "catches", "with"),
    ("pushing", "pushes", "with"), ("pulling", "pulls", "with"), ("hugging", "hugs", "with"),
    ("drawing", "draws", "with"), ("building", "builds", "with"), ("watering", "waters", "with"),
    # intransitive motion: drop
    ("running", "runs", ""), ("walking", "walks", ""), ("dancing", "dances", ""), ("jumping", "jumps", ""),
    ("swimming", "swims", ""), ("flying", "flies", ""), ("rolling", "rolls", ""), ("spinning", "spins", ""),
    ("singing", "sings", ""), ("laughing", "laughs", ""), ("galloping", "gallops", ""), ("crawling", "crawls", ""),
    ("bouncing", "bounces", ""), ("falling", "falls", ""), ("splashing", "splashes", ""),
    ("sprinting", "sprints", ""), ("skating", "skates", ""), ("surfing", "surfs", ""), ("skiing", "skis", ""),
    ("climbing", "climbs", ""), ("moving", "moves", ""), ("marching", "marches", ""), ("hopping", "hops", ""),
    ("wagging", "wags", ""), ("flapping", "flaps", ""), ("shaking", "shakes", ""), ("twirling", "twirls", ""),
    ("racing", "races", ""), ("drifting", "drifts", ""), ("floating", "floats", ""), ("waddling", "waddles", ""),
    ("stomping", "stomps", ""), ("fluttering", "flutters", ""), ("rushing", "rushes", ""),
)
ACTION_VERBS: Dict[str, str] = {}
"""Lower-case action verb form -> its static replacement ("" = drop it)."""
for _gerund, _third, _replacement in _VERBS:
    ACTION_VERBS[_gerund] = _replacement
    if _third:
        ACTION_VERBS[_third] = _replacement

MOTION_ADVERBS = frozenset({
    "quickly", "slowly", "happily", "energetically", "wildly", "gracefully", "rapidly", "joyfully", "excitedly",
    "vigorously", "briskly", "playfully", "swiftly", "furiously", "cheerfully", "actively",
})
"""Adverbs that describe motion: dropped."""
AUXILIARIES = frozenset({"is", "are", "was", "were", "be", "being"})
_CONJUNCTIONS = frozenset({"and", "or", "while"})

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[^A-Za-z\s]+")


def static_description(prompt: str) -> str:
    """The prompt with its action verbs removed or replaced by static prepositions (module docstring)."""
    tokens: List[str] = _TOKEN.findall(prompt)
    lower = [token.lower() for token in tokens]
    keep: List[str] = []
    for token, word in zip(tokens, lower):
        if word in ACTION_VERBS:
            replacement = ACTION_VERBS[word]
            while keep and keep[-1].lower() in AUXILIARIES:  # "is playing" -> the auxiliary goes too
                keep.pop()
            if keep and keep[-1].lower() in _CONJUNCTIONS:  # "and running": nothing left to join
                keep.pop()
            if replacement:
                if not (keep and keep[-1].lower() == replacement):  # "with" once
                    keep.append(replacement)
            continue
        if word not in MOTION_ADVERBS:
            keep.append(token)
    return _join(keep)


def _join(tokens: List[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)  # no space before punctuation
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)  # ", ," -> ","
    text = re.sub(r"\s*'\s*", "'", text)
    return text.strip(" ,;:")


def freeze_time_prompt(prompt: str) -> str:
    """The freeze-time prompt of the paper: "Camera circulating around <static description>, time elapse"."""
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty: describe the scene, e.g. --prompt 'a panda playing guitar in a kitchen'")
    description = static_description(prompt.strip()).rstrip(".!")
    if description.lower().startswith(CAMERA_PREFIX.lower()):  # already engineered: do not wrap twice
        description = description[len(CAMERA_PREFIX):].strip()
    if description.lower().endswith(TIME_SUFFIX):
        description = description[: -len(TIME_SUFFIX)].rstrip(" ,")
    first, _, rest = description.partition(" ")
    if first in ("A", "An", "The"):  # "A dog ..." reads "around a dog ..."
        description = f"{first.lower()} {rest}"
    return f"{CAMERA_PREFIX} {description}, {TIME_SUFFIX}"
