"""``check_raises``: assert that a function rejects bad inputs with the right error.

The Checks sections of the notebooks use it on their teaching functions: it prints one line when
every bad input is rejected and raises ``AssertionError`` (naming the case) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _describe(args: Sequence[Any]) -> str:
    parts = []
    for a in args:
        if isinstance(a, np.ndarray):
            parts.append(f"array{a.shape}")
        else:
            parts.append(repr(a))
    return "(" + ", ".join(parts) + ")"


def check_raises(
    fn: Callable[..., Any],
    cases: Sequence[Sequence[Any]],
    *,
    expected: type[BaseException] | tuple[type[BaseException], ...] = ValueError,
    name: str | None = None,
) -> None:
    """Call ``fn(*args)`` for each argument tuple in ``cases``; each call must raise ``expected``.

    Prints ``✓ <name> rejects all N bad inputs``; raises ``AssertionError`` naming the first
    case that is accepted or raises another exception. ``name`` defaults to ``fn.__name__``.
    """
    label = name or getattr(fn, "__name__", "the function")
    for n, args in enumerate(cases, 1):
        try:
            fn(*args)
        except expected:
            continue
        except Exception as err:
            raise AssertionError(
                f"case {n}: {label}{_describe(args)} raised {type(err).__name__}: {err}; "
                f"expected {expected}"
            ) from err
        raise AssertionError(f"case {n}: {label}{_describe(args)} accepted bad input")
    print(f"✓ {label} rejects all {len(cases)} bad inputs")
