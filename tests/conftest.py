import os

from grader.nbgrader_api import ensure_env_bin_on_path

# nbgrader shells out to `alembic`; notebooks plot off-screen.
ensure_env_bin_on_path()
os.environ["MPLBACKEND"] = "Agg"


def pytest_terminal_summary(terminalreporter):
    """Print how long each notebook took, so CI logs carry the figures."""
    rows = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for key, value in report.user_properties:
                if key == "notebook_seconds":
                    rows.append((value[0], value[1], value[2], outcome))
    if not rows:
        return
    terminalreporter.section("notebook execution times (fresh kernel, this machine)")
    for name, seconds, budget, outcome in sorted(rows):
        terminalreporter.write_line(f"{seconds:7.1f} s  (budget {budget:3d} s)  {outcome:6}  {name}")
