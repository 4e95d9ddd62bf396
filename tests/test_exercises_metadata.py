"""Every exercise says what it costs (difficulty, minutes) and has hints before the solution."""

import pytest

from helpers.exercises._core import exercise_ids, get


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_every_exercise_has_difficulty_minutes_and_graded_hints(exercise_id):
    ex = get(exercise_id)
    assert ex.difficulty in (1, 2, 3), f"{exercise_id}: difficulty {ex.difficulty!r}"
    assert 0 < ex.minutes <= 90, f"{exercise_id}: minutes {ex.minutes!r}"
    assert 2 <= len(ex.hints) <= 3, f"{exercise_id}: {len(ex.hints)} hints"
    assert all(isinstance(h, str) and len(h.split()) >= 5 for h in ex.hints), exercise_id
    assert len(set(ex.hints)) == len(ex.hints), f"{exercise_id}: a hint is repeated"
