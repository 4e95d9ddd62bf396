"""The course's exercises: a one-line check of the learner's function, with named mistakes.

In a notebook, under the learner's function::

    from helpers.exercises import check

    check("02.1", scaled_scores)

prints a report and returns a :class:`CheckResult` (``.passed``, ``.attempted``, ``.mistake``).
The function is called on every case of the exercise, on copies of the inputs, with NumPy
warnings recorded instead of printed. The report says which case fails (its inputs
described), what was expected and what came back; when the answer reproduces a known mistake
(or several), it names each, says what is wrong and where the idea is taught.

* A function that raises ``NotImplementedError`` on every case (the committed stubs do) is
  *not attempted yet*: the report says so and ``check`` does not raise, so a notebook runs
  top to bottom in its stub state. A function that returns ``None`` counts as attempted (its
  report asks whether the ``return`` is missing).
* Nothing the learner's function does makes ``check`` raise: an exception, a wrong return
  type or arity, NaN, a changed input are all reported case by case.
* :func:`reference` gives the trusted function of an exercise; the readable worked solutions
  are the notebooks in ``notebooks/solutions/``.

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
                          lambda Q, K: Q @ np.swapaxes(K, -1, -2)), ...),
    ))

* **Cases** (at least three) are built once at import from a seeded ``np.random.default_rng``.
  Include the inputs where naive answers break: overflow (large scores, a low temperature),
  non-default ``axis``/``threshold``, batch axes, ``L_q ≠ L_k ≠ d_k ≠ d_v``, fully masked rows,
  mask dtypes.
  ``Case(..., raises=ValueError)`` asks for an error.
* **Mistakes** (at least two) are wrong functions. One is recognised when the learner's outcomes
  equal its outcomes on every case where it differs from the reference (so two mistakes made at
  once are both named); each mistake must therefore differ from the reference on at least one
  case, and it must accept every call a case makes (the tests check both, and that each mistake
  is caught and named).
* **The reference** is written in plain NumPy, not with the library functions a notebook
  teaches, so that a change in the library cannot change what an exercise asks for.
* Each module stays under 300 lines; ``tests/test_exercises_NN.py`` writes every mistake out
  again as code and adds wrong attempts that are not in the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.exercises._check import CheckResult, run_check
from helpers.exercises._compare import arrays, boolean, integer, real, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, exercise_ids, get, register
from helpers.exercises.bad_input import check_raises


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
        ``NotImplementedError``), ``mistake`` (the name of the recognised mistake, or None),
        and the printed ``report``.

    Raises
    ------
    TypeError, ValueError
        Only for an ``exercise_id`` that is not a string or names no exercise; never because
        of what ``fn`` does.
    """
    result = run_check(exercise_id, fn)
    print(result.report)
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
    "integer",
    "real",
    "reference",
    "register",
    "tuple_of",
]
