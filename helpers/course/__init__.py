"""Course tooling: the figures of the notebooks and the toy data they use.

This is not the attention library (that is :mod:`helpers` itself); it is what the
notebooks use to show it: :mod:`helpers.course.plotting` draws every figure and
:mod:`helpers.course.toy_data` holds the readable toy vocabulary of notebook 06.
"""
