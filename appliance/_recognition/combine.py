"""Merging two OCR engines' readings of one plate, with US formats and the usual confusions.

Only strings that one of the engines produced are ever returned: the US format prior and the
confusion pairs reorder them, never edit a character (a read that was never on the plate is
worse than a missed one).

- Each engine's readings come as ``(text, posterior)`` pairs (its own probabilities, already
  re-ranked by the US format prior). The merged probability of a text is the weighted mean of
  the engines' probabilities, so a text both engines read gets the mass of both.
- Texts that differ only within confusion pairs (0/O/D/Q, 1/I/L/T, 2/Z, 5/S, 6/G, 8/B) are one
  *group*: the engines agree on the plate and disagree on glyphs they often swap. The group's
  mass is shared out again in proportion to each member's probability times its US format prior
  (e.g. ``6NZTO67`` vs ``6NZT067``: California's ``9AAA999`` wins).
- When the engines' first choices are the same text, that agreement is strong evidence (NOTES.md:
  44 of 45 such reads were right), so its confidence becomes the chance that not both engines
  are wrong, ``1 - Π(1 - p)``, rather than their mean.
"""

from __future__ import annotations

import math
from collections import defaultdict

from . import us_plates

#: each character → the representative of its confusion class
CONFUSION = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "T": "1",
                           "Z": "2", "S": "5", "G": "6", "B": "8"})  # fmt: skip


def confusion_key(text: str) -> str:
    """``"6NZTO67"`` and ``"6NZT067"`` → the same key."""
    return text.translate(CONFUSION)


def pool_views(rankings: list[list[tuple[str, float]]]) -> list[tuple[str, float]]:
    """One engine's readings of several views of the same plate, pooled: the mean posterior.

    A view that did not produce a text counts 0 for it, so a reading every view agrees on keeps
    its probability and one a single view saw by chance is diluted. The views share the engine
    and the pixels, so agreement between them is not independent evidence; unlike
    :func:`combine` this never boosts it. Only texts some view read are returned.
    """
    pooled: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for text, p in ranking:
            pooled[text] += p / len(rankings)
    return sorted(pooled.items(), key=lambda kv: kv[1], reverse=True)


def combine(
    rankings: list[list[tuple[str, float]]],
    weights: list[float] | None = None,
    state: str | None = None,
) -> list[tuple[str, float]]:
    """Merged ``(text, probability)`` list, best first, from several engines' rankings.

    ``state``, when guessed, picks the US format prior of that state (``us_plates.log_prior``).
    """
    rankings = [r for r in rankings if r]
    if not rankings:
        return []
    if len(rankings) == 1:
        # One engine's posteriors already carry the format prior (the recognizer's _rank);
        # re-sharing its confusion groups by the prior again counted it twice, which cost
        # 1-2 exact reads of the 109 dev photos (benchmarks/accuracy.py, us_ocr).
        return sorted(rankings[0], key=lambda kv: kv[1], reverse=True)
    if weights is None:
        weights = [1.0] * len(rankings)
    total_weight = sum(weights)
    mixed: dict[str, float] = defaultdict(float)
    for ranking, weight in zip(rankings, weights, strict=True):
        for text, p in ranking:
            mixed[text] += weight * p / total_weight
    groups: dict[str, list[str]] = defaultdict(list)
    for text in mixed:
        groups[confusion_key(text)].append(text)
    merged: dict[str, float] = {}
    for members in groups.values():
        mass = sum(mixed[t] for t in members)
        shares = [mixed[t] * math.exp(us_plates.log_prior(t, state)) for t in members]
        total = sum(shares)
        for text, share in zip(members, shares, strict=True):
            merged[text] = mass * share / total if total > 0 else 0.0
    ordered = sorted(merged.items(), key=lambda kv: kv[1], reverse=True)
    firsts = {r[0][0] for r in rankings}
    if len(rankings) > 1 and len(firsts) == 1 and ordered[0][0] in firsts:
        text = ordered[0][0]
        doubt = math.prod(1.0 - dict(r)[text] for r in rankings)
        ordered[0] = (text, max(ordered[0][1], 1.0 - doubt))
    return ordered
