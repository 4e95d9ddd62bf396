"""The hint ladder (``hint``) and what ``check`` says about effort and hints (issue 20)."""

import numpy as np
import pytest

from helpers.exercises import (
    Case,
    Exercise,
    Mistake,
    _core,
    _records,
    arrays,
    check,
    hint,
    reference,
)

HINTS = ("Square each entry.", "Use ** 2 on a float array.", "np.asarray(x, dtype=float) ** 2.")
HALVED = Mistake("halved", "do not halve.", "notebook 98 §1", lambda x: np.asarray(x) ** 2 / 2,
                 hint="Where does a factor 1/2 come in?")
NEGATED = Mistake("negated", "no minus sign.", "notebook 98 §1", lambda x: -np.asarray(x) ** 2)


def square(x):
    return np.asarray(x, dtype=float) ** 2


def _stub(x):
    raise NotImplementedError


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv(_records.ENV, str(path))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    return path


def _register(monkeypatch, exercise_id="98.1", **options):
    ex = Exercise(
        id=exercise_id, reference=square, taught="notebook 98 §1", compare=arrays(),
        cases=(Case((np.array([1.0, 2.0]),), "a vector"), Case((np.ones((2, 2)),), "a matrix"),
               Case((np.array([-3.0]),), "a negative entry")),
        mistakes=(HALVED, NEGATED), **options,
    )
    monkeypatch.setitem(_core._REGISTRY, exercise_id, ex)
    return ex


def test_the_ladder_gives_each_hint_in_turn_then_the_reference(progress_file, monkeypatch,
                                                                 capsys):
    _register(monkeypatch, hints=HINTS)
    first = hint("98.1")
    assert first == capsys.readouterr().out.rstrip("\n")
    assert first == (
        "Hint 1 of 3 for exercise 98.1 · square:\n  Square each entry.\n"
        '(hint("98.1") again gives hint 2.)'
    )
    assert hint("98.1").startswith("Hint 2 of 3 for exercise 98.1 · square:\n  Use ** 2")
    third = hint("98.1")
    assert third.startswith("Hint 3 of 3") and "(That was the last hint: " in third
    assert 'reference("98.1") returns the trusted function' in third
    after = hint("98.1")
    assert after.startswith("That was the last of the 3 hints for exercise 98.1 · square.")
    assert "notebooks/solutions/ (notebook 98)" in after and 'hint("98.1", 1)' in after
    levels = [e.get("level") for e in _records.read().entries]
    assert levels == [1, 2, 3]  # the pointer after the last hint is not recorded


def test_the_first_hint_is_the_one_of_the_mistake_check_named(progress_file, monkeypatch):
    _register(monkeypatch, hints=HINTS)
    assert check("98.1", lambda x: np.asarray(x) ** 2 / 2).mistake == "halved"
    text = hint("98.1")
    assert text.startswith("Hint on the mistake check named (halved), exercise 98.1 · square:")
    assert "Where does a factor 1/2 come in?" in text and 'gives hint 1 of 3' in text
    assert hint("98.1").startswith("Hint 1 of 3")
    check("98.1", lambda x: np.asarray(x) ** 2 / 2)  # the same mistake again: no repeat
    assert hint("98.1").startswith("Hint 2 of 3")
    check("98.1", lambda x: -np.asarray(x) ** 2)  # a mistake without a hint of its own
    made = hint("98.1")  # ... still comes first, made from the mistake itself
    assert made == (
        "Hint on the mistake check named (negated), exercise 98.1 · square:\n"
        "  no minus sign. Re-read notebook 98 §1, which teaches it.\n"
        '(hint("98.1") again gives hint 3 of 3.)'
    )
    assert hint("98.1").startswith("Hint 3 of 3")


def test_a_named_mistake_without_a_hint_starts_the_ladder(progress_file, monkeypatch):
    """The case of 04.5's "scaled by √d_model": check names a mistake that has no hint of its
    own; the next hint is built from that mistake, not the exercise's generic first hint."""
    _register(monkeypatch, hints=HINTS)
    result = check("98.1", lambda x: -np.asarray(x) ** 2)
    assert result.mistake == "negated" and 'Stuck? hint("98.1") gives a hint.' in result.report
    first = hint("98.1")
    assert first.startswith("Hint on the mistake check named (negated), exercise 98.1 · square:")
    assert "no minus sign. Re-read notebook 98 §1, which teaches it." in first
    assert "Square each entry." not in first and 'gives hint 1 of 3' in first
    assert hint("98.1").startswith("Hint 1 of 3")  # then the graded hints, from the first
    assert [e.get("mistake") for e in _records.read().entries if e["event"] == "hint"] == [
        "negated", None,
    ]


@pytest.mark.parametrize("exercise_id", _core.exercise_ids())
def test_every_catalogued_mistake_gives_a_first_hint(progress_file, exercise_id):
    """For every exercise of the course: after check named a mistake, hint() starts with it."""
    from helpers.exercises.hints import mistake_hint, next_hint

    ex = _core.get(exercise_id)
    for m in ex.mistakes:
        _records.append({"event": "check", "id": ex.id, "passed": False, "mistake": m.name,
                         "cases_passed": 0, "cases_total": len(ex.cases)})
        text, entry = next_hint(ex.id)
        assert text.startswith(f"Hint on the mistake check named ({m.name}), exercise {ex.id}")
        assert mistake_hint(m) in text and entry == {"event": "hint", "id": ex.id,
                                                      "mistake": m.name}
        assert (m.hint or m.taught) in mistake_hint(m)


def test_a_mistake_hint_comes_even_when_the_exercise_has_none(progress_file, monkeypatch):
    _register(monkeypatch)
    check("98.1", lambda x: np.asarray(x) ** 2 / 2)
    text = hint("98.1")
    assert text.startswith("Hint on the mistake check named (halved)")
    assert 'reference("98.1")' in text
    assert hint("98.1").startswith("No hints for exercise 98.1 · square yet.")


def test_the_pointer_names_the_notebooks_solutions(progress_file, monkeypatch):
    _register(monkeypatch, exercise_id="02.9")  # an exercise of notebook 02 without hints
    text = hint("02.9")
    assert text.startswith("No hints for exercise 02.9 · square yet.")
    assert "notebooks/solutions/02_single_head_attention.ipynb has the worked" in text


def test_no_hints_yet_on_a_registered_exercise(progress_file, monkeypatch):
    _register(monkeypatch)
    assert hint("98.1").startswith("No hints for exercise 98.1 · square yet.")
    assert _records.read().entries == []


def test_a_level_shows_that_hint(progress_file, monkeypatch):
    _register(monkeypatch, hints=HINTS)
    assert hint("98.1", 2).startswith("Hint 2 of 3")
    assert hint("98.1").startswith("Hint 3 of 3")  # the ladder continues after the highest
    assert hint("98.1", 1).startswith("Hint 1 of 3")
    with pytest.raises(ValueError, match="has hints 1 to 3, got level=4"):
        hint("98.1", 4)
    with pytest.raises(TypeError, match="level must be a whole number"):
        hint("98.1", True)
    with pytest.raises(ValueError, match="there is no exercise"):
        hint("98.7")


def test_the_ladder_continues_in_a_new_session(progress_file, monkeypatch):
    _register(monkeypatch, hints=HINTS)
    hint("98.1")
    monkeypatch.setattr(_records, "_UNSAVED", [])  # a new kernel: only the file remains
    assert hint("98.1").startswith("Hint 2 of 3")


def test_the_ladder_works_when_progress_cannot_be_saved(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(_records.ENV, str(blocker / "progress.jsonl"))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    _register(monkeypatch, hints=HINTS)
    assert hint("98.1").startswith("Hint 1 of 3")
    assert hint("98.1").startswith("Hint 2 of 3")


# --------------------------------------------------------------------------- check's report
@pytest.mark.parametrize(
    ("difficulty", "minutes", "shown"),
    [(2, 15, " (difficulty 2 of 3, about 15 min)"), (1, 0, " (difficulty 1 of 3)"),
     (0, 20, " (about 20 min)"), (0, 0, "")],
)
def test_the_first_line_shows_difficulty_and_minutes(progress_file, monkeypatch, capsys,
                                                      difficulty, minutes, shown):
    _register(monkeypatch, difficulty=difficulty, minutes=minutes)
    check("98.1", _stub)
    assert capsys.readouterr().out == (
        f"Exercise 98.1 · square{shown}: not attempted yet — write the function above, "
        "then run this cell.\n"
    )
    assert check("98.1", square).report == f"Exercise 98.1 · square{shown}: ✓ all 3 cases pass."
    wrong = check("98.1", lambda x: np.asarray(x) ** 3).report
    assert wrong.startswith(f"Exercise 98.1 · square{shown}: ✗ 1 of 3 cases pass.\n")


def test_a_failing_report_says_that_hints_exist(progress_file, monkeypatch):
    _register(monkeypatch, hints=HINTS)
    report = check("98.1", lambda x: np.asarray(x) ** 3).report
    assert report.endswith('\nStuck? hint("98.1") gives a hint.')
    assert 'hint("98.1")' not in check("98.1", square).report


def test_a_failing_report_without_hints_says_so(progress_file, monkeypatch):
    _register(monkeypatch)
    report = check("98.1", lambda x: np.asarray(x) ** 3).report
    assert report.endswith(
        '\nNo hints for this exercise yet; hint("98.1") points to the worked solution.'
    )
    named = check("98.1", lambda x: np.asarray(x) ** 2 / 2).report  # its mistake has a hint
    assert named.endswith('\nStuck? hint("98.1") gives a hint.')


def test_every_registered_hint_is_well_formed():
    for i in _core.exercise_ids():
        ex = _core.get(i)
        assert ex.difficulty in (0, 1, 2, 3) and ex.minutes >= 0
        assert len(ex.hints) <= 3 and all(h.strip() for h in ex.hints)
        assert ex.reference is reference(i)


def test_a_hint_on_the_last_line_of_a_cell_is_shown_once(progress_file):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    with capture_output() as shown:
        result = shell.run_cell('from helpers.exercises import hint\nhint("02.1")',
                                store_history=True)
    assert result.success and isinstance(result.result, str)
    first_line = result.result.splitlines()[0]
    assert shown.stdout.count(first_line) == 1, shown.stdout  # printed, not echoed as Out[]
