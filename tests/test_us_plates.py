"""The US format prior, per state, and how one engine's readings pass through the merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance._recognition import us_plates
from appliance._recognition.combine import combine


def test_every_state_has_its_shape_counts_and_they_match_the_overall_table() -> None:
    table = us_plates.state_shapes()
    assert len(table) == 51  # 50 states and DC
    per_shape: dict[str, int] = {}
    for counts in table.values():
        for shape, n in counts.items():
            per_shape[shape] = per_shape.get(shape, 0) + n
    assert sum(per_shape.values()) == us_plates.SHAPE_TOTAL
    # the all-states table is the same crop set, shapes seen fewer than 3 times left out
    for shape, n in us_plates.SHAPE_COUNTS.items():
        assert per_shape[shape] == n, shape


def test_the_state_prior_prefers_that_states_format() -> None:
    # Californian plates are 9AAA999; six-character AAA999 is common elsewhere.
    seven, six = "6MMD595", "MMD595"
    assert us_plates.log_prior(seven, "CA") - us_plates.log_prior(six, "CA") > (
        us_plates.log_prior(seven) - us_plates.log_prior(six)
    )
    # an unknown or missing state falls back to the all-states prior
    assert us_plates.log_prior(seven, "ZZ") == us_plates.log_prior(seven)
    assert us_plates.log_prior(seven, None) == us_plates.log_prior(seven)


def test_the_state_prior_never_rules_a_format_out() -> None:
    # a vanity plate in a state whose crops had none still has a finite, if low, prior
    assert us_plates.log_prior("GOBEARS", "AK") > -20


def test_a_missing_shape_file_leaves_the_all_states_prior(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(us_plates, "STATE_SHAPES", tmp_path / "gone.json")
    us_plates.state_shapes.cache_clear()
    try:
        assert us_plates.log_prior("6MMD595", "CA") == us_plates.log_prior("6MMD595")
        (tmp_path / "gone.json").write_text(json.dumps({"CA": {"9AAA999": 1}}))
        us_plates.state_shapes.cache_clear()
        assert us_plates.log_prior("6MMD595", "CA") > us_plates.log_prior("6MMD595")
    finally:
        monkeypatch.undo()
        us_plates.state_shapes.cache_clear()


def test_one_engines_ranking_passes_through_the_merge_unchanged() -> None:
    # Its posteriors already carry the format prior; the merge must not apply it again.
    ranking = [("6NZTO67", 0.5), ("6NZT067", 0.3), ("6NZT06", 0.1)]
    assert combine([ranking]) == ranking
    assert combine([[], list(reversed(ranking))]) == ranking
