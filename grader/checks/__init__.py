"""Hidden-test logic, one module per assignment.

A hidden test cell stays one or two lines, e.g. `from grader.checks import tensors;
tensors.check_make_grid(make_grid)`, so feedback shows which behaviour was checked but not how.
Every check raises `CheckFailed` with a message a student can act on.
"""
