"""The three tests every ``test_exercises_NN.py`` runs on its written-out mistakes.

Each module writes every catalogued mistake out again as learner code (``CATALOGUED``: exercise id
-> mistake name -> function) and some plausible wrong attempts the catalogue does not list
(``UNLISTED``: exercise id -> functions), then binds the tests::

    (test_catalogued_mistake_is_caught_and_named, test_the_catalogue_is_written_out_here,
     test_unlisted_wrong_attempt_is_caught) = catalogue_tests(CATALOGUED, UNLISTED)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from helpers.exercises import check
from helpers.exercises._core import get


def catalogue_tests(
    catalogued: Mapping[str, Mapping[str, Callable]],
    unlisted: Mapping[str, Sequence[Callable]],
) -> tuple[Callable, Callable, Callable]:
    """The three parametrised tests for one module's ``CATALOGUED`` and ``UNLISTED``."""

    @pytest.mark.parametrize(
        ("exercise_id", "name"), [(i, m) for i, ms in catalogued.items() for m in ms]
    )
    def test_catalogued_mistake_is_caught_and_named(exercise_id, name):
        result = check(exercise_id, catalogued[exercise_id][name])
        assert result.attempted and not result.passed
        assert result.mistake == name, result.report
        assert f"Known mistake — {name}:" in result.report
        assert "(taught in notebook" in result.report

    @pytest.mark.parametrize("exercise_id", sorted(catalogued))
    def test_the_catalogue_is_written_out_here(exercise_id):
        assert set(catalogued[exercise_id]) == {m.name for m in get(exercise_id).mistakes}

    @pytest.mark.parametrize(
        ("exercise_id", "k"), [(i, k) for i, fs in unlisted.items() for k in range(len(fs))]
    )
    def test_unlisted_wrong_attempt_is_caught(exercise_id, k):
        result = check(exercise_id, unlisted[exercise_id][k])
        assert result.attempted and not result.passed, result.report

    return (test_catalogued_mistake_is_caught_and_named, test_the_catalogue_is_written_out_here,
            test_unlisted_wrong_attempt_is_caught)
