"""The course's exercises: a one-line check, named mistakes, a hint ladder, and progress.

In a notebook, under the learner's function::

    from helpers.exercises import check, hint, progress

    check("02.1", scaled_scores)   # prints a report, returns a CheckResult
    hint("02.1")                   # the next of the exercise's graded hints
    progress()                     # what is done, per notebook; returns {id: status}

``check`` calls the function on every case of the exercise, on copies of the inputs, with NumPy
warnings recorded instead of printed. The report's first line is, for example::

    Exercise 02.1 · scaled_scores (difficulty 2 of 3, about 15 min): ✓ all 6 cases pass.
    Exercise 02.1 · scaled_scores (difficulty 2 of 3, about 15 min): ✗ 3 of 6 cases pass.
    Exercise 02.1 · scaled_scores (difficulty 2 of 3, about 15 min): not attempted yet — write
    the function above, then run this cell.

(the parenthesis shows what the exercise sets of ``difficulty`` and ``minutes``, and is left
out when it sets neither). A failing report says which case fails (its inputs described),
what was expected and what came back, names each known mistake the answer *is* (see
``_judge.py`` for when a mistake is named), and ends with ``Stuck? hint("02.1") gives a hint.``

* A function that raises ``NotImplementedError`` on every case (the committed stubs do) is
  *not attempted yet*: the report says so, nothing is recorded, and ``check`` does not raise,
  so a notebook runs top to bottom in its stub state. A function that returns ``None`` counts
  as attempted (its report asks whether the ``return`` is missing).
* Nothing the learner's function does makes ``check`` raise: an exception, a wrong return type
  or arity, NaN, a changed input are all reported case by case.
* Every attempt is recorded (id, passed, named mistake, time) in the learner's progress file,
  ``$ATTENTION_PROGRESS_FILE`` or ``~/.local/share/attention-from-scratch/progress.jsonl``
  (``_records.py``). When it cannot be written, ``check`` still reports and says so.
* :func:`hint` gives the exercise's hints one by one, the one of the mistake ``check`` last
  named first, then points to :func:`reference` (the trusted function) and the worked
  solutions in ``notebooks/solutions/`` (``hints.py``).

Adding exercises (the pattern every ``exNN`` module follows)
------------------------------------------------------------
Ids are ``"NN.k"``: notebook ``NN``, exercise ``k`` in the order the notebook shows them.
The exercises of notebook ``NN`` live in ``helpers/exercises/exNN.py``, which ``check`` imports
the first time an id ``NN.k`` is asked for (a new module needs no registration elsewhere).
The module calls :func:`register` once per exercise::

    register(Exercise(
        id="02.1",
        reference=scaled_scores,          # plain NumPy; its name and signature are the exercise's
        taught="notebook 02 §4–5",
        compare=arrays(rtol=1e-6),        # or boolean(), integer(), real(), tuple_of(...)
        cases=(Case((Q, K), "L_q ≠ L_k: queries and keys of different lengths"), ...),
        mistakes=(Mistake("no scale", "QKᵀ must be divided by √d_k.", "notebook 02 §11",
                          lambda Q, K: Q @ np.swapaxes(K, -1, -2),
                          hint="What does dividing by √d_k do to the spread of the scores?"),
                  ...),
        difficulty=2, minutes=15,         # shown in the report's first line and the statement
        hints=("gentlest", "closer", "close to the method, never the code"),
        allowed_dtypes=("float32",),      # optional: answers the statement also accepts
    ))

* **Cases** (at least three) are built once at import from a seeded ``np.random.default_rng``.
  Include the inputs where naive answers break: overflow (large scores, a low temperature),
  rows far apart (``[[1000, 999], [0, -1]]``: one max for the whole array zeroes row 2),
  non-default ``axis``/``threshold``, batch axes, ``L_q ≠ L_k ≠ d_k ≠ d_v``, exact-zero
  weights where logs are taken, float 0/−inf masks and fully masked rows, sizes whose product
  overflows int32. ``Case(..., raises=ValueError)`` asks for an error.
* **Mistakes** (at least two) are wrong functions, written exactly as a learner would write
  them: a mistake is named only when the learner's outcome on every case where the mistake
  differs from the reference is the mistake's — same values, same dtype, same in-place
  change, and for an error the same type *and message*. Each mistake must differ from the
  reference on at least one case and accept every call a case makes (the tests check both,
  and that each mistake is caught and named).
* **allowed_dtypes** — by default an answer is compared with the exercise's tolerance, which
  a float32 answer to a float64 case usually misses (the report then says the values are right
  to float32 precision but the exercise asks for float64). When the statement allows float32,
  set ``allowed_dtypes=("float32",)``: a float32 answer is then compared within float32's
  precision (``rtol=1.3e-6, atol=1e-5``, PyTorch's ``assert_close`` defaults; ``"float16"``
  is known too), and the report says ``(compared in float32 precision)``. Say so in the
  statement.
* **difficulty** 1 (warm-up), 2 (core) or 3 (hard), **minutes** the expected minutes, **hints**
  two or three graded hints, gentlest first; ``Mistake(..., hint=...)`` is given first after
  ``check`` named that mistake (a mistake without one gives a first hint made from its
  explanation and where it is taught).
* **The reference** is written in plain NumPy, not with the library functions a notebook
  teaches, so that a change in the library cannot change what an exercise asks for.
* Each module stays under 300 lines; ``tests/test_exercises_NN.py`` writes every mistake out
  again as code and adds wrong attempts that are not in the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.exercises import _records
from helpers.exercises._check import CheckResult, run_check
from helpers.exercises._compare import arrays, boolean, integer, real, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, exercise_ids, get, register
from helpers.exercises.bad_input import check_raises
from helpers.exercises.hints import hint
from helpers.exercises.learner_progress import progress


def check(exercise_id: str, fn: Any) -> CheckResult:
    """Check the learner's function ``fn`` for exercise ``exercise_id`` and print the report.

    Parameters
    ----------
    exercise_id : str
        ``"NN.k"``: notebook ``NN``, exercise ``k`` (for example ``"02.1"``).
    fn : callable
        The learner's function, with the exercise's name and signature.

    Returns
    -------
    CheckResult
        ``passed`` (every case right), ``attempted`` (False for a stub that raises
        ``NotImplementedError``), ``mistake`` (the name of the recognised mistake, or None;
        ``mistakes`` has every one named), and the printed ``report``.

    Raises
    ------
    TypeError, ValueError
        Only for an ``exercise_id`` that is not a string or names no exercise; never because
        of what ``fn`` does, and never because the progress file cannot be written.
    """
    result = run_check(exercise_id, fn)
    print(result.report)
    if result.attempted:
        not_saved = _records.append(
            {
                "event": "check",
                "id": result.exercise_id,
                "passed": result.passed,
                "mistake": result.mistake,
                "cases_passed": result.cases_passed,
                "cases_total": result.cases_total,
            }
        )
        if not_saved:
            print(
                f"(Progress not saved: {not_saved}. Set {_records.ENV} to a file you can write.)"
            )
    return result


def reference(exercise_id: str) -> Callable[..., Any]:
    """The trusted function of an exercise (same name and signature as the learner's)."""
    return get(exercise_id).reference


__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "Mistake",
    "arrays",
    "boolean",
    "check",
    "check_raises",
    "exercise_ids",
    "hint",
    "integer",
    "progress",
    "real",
    "reference",
    "register",
    "tuple_of",
]
