"""``python -m helpers.exercises progress``: the learner's progress table (``make progress``)."""

from __future__ import annotations

import sys

from helpers.exercises import progress


def main(argv: list[str]) -> int:
    if argv != ["progress"]:
        print("usage: python -m helpers.exercises progress", file=sys.stderr)
        return 2
    try:
        progress()
    except BrokenPipeError:  # `make progress | head`: the reader has what it wanted
        sys.stdout = None
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
