"""Which frame pairs SfM matches: explicit pair lists, so that matching can report progress pair by pair.

pycolmap's `match_exhaustive` and `match_sequential` are single blocking calls; `fourreal process` builds the same
pairs itself and matches them in chunks with `match_image_pairs` (sfm.py), advancing its progress bar per chunk.

- exhaustive: every pair of frames;
- sequential: within each sequence (a clip, or the reference video), in time order, each frame with its `overlap`
  successors and, as COLMAP's quadratic overlap does, the frames 2, 4, 8, ..., 2^(overlap - 1) after it (COLMAP's
  `SequentialPairGenerator`, applied per sequence);
- between sequences (several clips of one frozen moment): every frame of each clip with `anchors` frames of every
  other clip, evenly spread over it (its first and last included: generated clips of one moment, such as
  DimensionX's chains of camera moves, start from the same image);
- extra pairs the caller adds (the reference frames against the freeze frames around the canonical one).

Pairs are unordered and listed once, in a stable order.
"""

from __future__ import annotations

from typing import Iterable, List, Sequence, Set, Tuple

import numpy as np

Pair = Tuple[str, str]


def _add(pairs: List[Pair], seen: Set[Pair], a: str, b: str) -> None:
    if a == b:
        return
    key = (a, b) if a < b else (b, a)
    if key not in seen:
        seen.add(key)
        pairs.append((a, b))


def exhaustive_pairs(names: Sequence[str]) -> List[Pair]:
    """Every unordered pair of `names`."""
    names = list(names)
    return [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]


def sequential_pairs(names: Sequence[str], overlap: int, quadratic: bool = True) -> List[Pair]:
    """COLMAP's sequential pairs of one sequence: i with i + 1 .. i + overlap and (quadratic) i + 2^k, k < overlap."""
    pairs: List[Pair] = []
    seen: Set[Pair] = set()
    names = list(names)
    for i, name in enumerate(names):
        for k in range(overlap):
            if i + k + 1 < len(names):
                _add(pairs, seen, name, names[i + k + 1])
            if quadratic and i + (1 << k) < len(names):
                _add(pairs, seen, name, names[i + (1 << k)])
    return pairs


def spread(names: Sequence[str], count: int) -> List[str]:
    """`count` of `names` evenly spread, the first and last included."""
    names = list(names)
    if count >= len(names):
        return names
    return [names[i] for i in sorted({int(round(x)) for x in np.linspace(0, len(names) - 1, max(count, 1))})]


def cross_sequence_pairs(sequences: Sequence[Sequence[str]], anchors: int) -> List[Pair]:
    """Every frame of each sequence with `anchors` evenly spread frames of every other sequence."""
    pairs: List[Pair] = []
    seen: Set[Pair] = set()
    for a, first in enumerate(sequences):
        for b, second in enumerate(sequences):
            if a != b:
                for name in first:
                    for other in spread(second, anchors):
                        _add(pairs, seen, name, other)
    return pairs


def merge(*lists: Iterable[Pair]) -> List[Pair]:
    """The pairs of all lists, each unordered pair once, in first-seen order."""
    pairs: List[Pair] = []
    seen: Set[Pair] = set()
    for pair_list in lists:
        for a, b in pair_list:
            _add(pairs, seen, a, b)
    return pairs


def video_pairs(names: Sequence[str], clips: Sequence[Sequence[str]], matcher: str, overlap: int, anchors: int,
                extra: Sequence[Pair] = (), separate: Sequence[Sequence[str]] = ()) -> List[Pair]:
    """The pairs to match among `names` ("exhaustive" or "sequential"; module docstring). Sequential: `clips` are
    time-ordered sequences matched within themselves and with each other (`anchors` frames per other clip);
    `separate` sequences (the reference video beside freeze-time clips) are matched within themselves only and
    reach the clips through `extra`. Names in no sequence form one more separate sequence, in the given order."""
    if matcher == "exhaustive":
        return exhaustive_pairs(names)
    wanted = set(names)
    clips = [[n for n in sequence if n in wanted] for sequence in clips]
    separate = [[n for n in sequence if n in wanted] for sequence in separate]
    listed = {n for sequence in [*clips, *separate] for n in sequence}
    separate.append([n for n in names if n not in listed])
    clips, separate = [s for s in clips if s], [s for s in separate if s]
    within = [pair for sequence in [*clips, *separate] for pair in sequential_pairs(sequence, overlap)]
    between = cross_sequence_pairs(clips, anchors) if len(clips) > 1 else []
    return merge(within, between, [(a, b) for a, b in extra if a in wanted and b in wanted])
