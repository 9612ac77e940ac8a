"""`python -m grader autograde`: grade a whole class in parallel, safely, losing nothing.

The run's phases, in the order `run.autograde_class` calls them (they overlap: a submission executes as
soon as it is prepared, is judged as soon as it has run, and each assignment is recorded, given its rows
and its feedback pages while the next assignment's kernels run):
  intake     find each student's notebook for each assignment (nbgrader layout, LMS zip or folder)
  preflight  parse and repair a submission before nbgrader sees it, or say why it can't be graded
  execute    worker: run one notebook in a fresh kernel inside the sandbox (a separate, long-lived process
             per slot, which forks a trusted driver and a jailed kernel per notebook); jail, kernel,
             sandbox (limits, slot users, cgroups) and observing (the kernel's hidden checks only observe)
             serve it. On a Dask cluster (`--scheduler`): cluster (this side), cluster_bridge (the only
             process that holds a Dask client), cluster_protocol (plain JSON frames), cluster_shard (a
             worker node runs a shard through the same worker and sandbox)
  judge      trusted: decide every test cell from its observations, in a pool of trusted processes
             (never a student's kernel) that also render the feedback pages; judge holds the verdicts
  record     replay: nbgrader's own autograde converter records the judged notebook in the gradebook
  feedback   per-student HTML: each test's verdict and message, no hidden test code
  report     grades.csv (statuses are report.Status), the run's timing and the end-of-run summary
  also       unexecuted (marks the cells that never ran), colab (reads the notebooks Colab saves)
"""
