"""Hidden-test logic, one module per assignment: the judges.

A hidden test cell stays one or two lines, e.g. `from grader.checks import tensors;
tensors.check_make_grid(make_grid)`, so feedback shows which behaviour was checked but not how.
Each `check_x` is `report.judged(observe_x, judge_x)`: the observer (`grader/observers/`) runs
the student's code and records plain data; the judge here recomputes and raises `CheckFailed`
with a message a student can act on. In an ordinary kernel a call runs both; in a grading kernel
only the observer exists and the judge runs afterwards in the trusted process
(`grader.autograde.judge`).
"""
