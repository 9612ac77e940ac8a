"""`python -m grader autograde`: grade a whole class in parallel, safely, losing nothing.

The flow, one module a step:
  intake     find each student's notebook for each assignment (nbgrader layout, LMS zip or folder)
  preflight  parse and repair a submission before nbgrader sees it, or say why it can't be graded
  sandbox    the limits a submission runs under (user, memory, processes, wall clock)
  worker     run one notebook in a fresh kernel inside those limits (a separate process)
  observing  the kernel's hidden checks only observe: grader.checks stands in for the observers
  replay     hand the worker's executed notebook to nbgrader's own autograde converter
  judge      decide every test cell from its observations, in this trusted process
  run        orchestrate: parallel workers, then nbgrader writes the gradebook, one at a time
  feedback   per-student HTML: each test's verdict and message, no hidden test code
  report     grades.csv and the end-of-run summary
"""
