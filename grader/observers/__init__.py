"""Observers: the half of each hidden check that runs in the student's kernel.

`observers/<unit>.py` has an `observe_<name>(...)` for each `check_<name>` in `checks/<unit>.py`.
An observer calls the student's code on inputs it builds from fixed seeds and returns what came
back as plain data (`grader.observation`). It decides nothing and holds no reference answer: a
grading kernel has only these modules, so nothing in it can be borrowed to pass a check.
"""
