"""Does the course work in JupyterLab in a real browser, the way a student meets it: a lecture runs
with no error output, and an exercise runs and gets a verdict from nbgrader's Validate button?"""

import re
import time

import pytest

pytestmark = pytest.mark.browser

RUN_TIMEOUT_S = 180
VALIDATE_TIMEOUT_S = 180
ERROR_OUTPUTS = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def open_notebook(page, lab, relative: str):
    base, token, _ = lab
    page.goto(f"{base}/lab/tree/{relative}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=90_000)  # the kernel is up


def run_all(page):
    """Run → Run All Cells, as a student would, then wait until nothing is queued or running."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        """() => {
            const shown = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt';
            const prompts = [...document.querySelectorAll(shown)].map(p => p.textContent.trim());
            return prompts.length > 0 && !prompts.some(p => p.includes('*')) && prompts.some(p => /\\d/.test(p));
        }""",
        timeout=RUN_TIMEOUT_S * 1000,
    )
    page.wait_for_selector("#jp-main-statusbar >> text=Idle", timeout=RUN_TIMEOUT_S * 1000)


def error_texts(page) -> list[str]:
    texts = page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) {ERROR_OUTPUTS}").all_inner_texts()
    return [t for t in texts if re.search(r"Traceback|\w*Error\b", t)]


def test_lecture_runs_all_without_error_output(page, jupyter_lab, artifacts):
    """Does lectures/01_tensors.ipynb run top to bottom in JupyterLab with no error in the page?"""
    started = time.monotonic()
    open_notebook(page, jupyter_lab, "lectures/01_tensors.ipynb")
    run_all(page)
    prompts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    unrun = [i for i, p in enumerate(prompts) if not re.search(r"\[\d+\]", p)]
    figures = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedImage img")
    if figures.count():
        figures.first.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "jupyterlab-lecture-01_tensors.png")
    assert not error_texts(page), f"error output in the lecture: {error_texts(page)[:3]}"
    assert not unrun, f"code cells {unrun} of {len(prompts)} did not run (Run All stopped early?)"
    assert figures.count() >= 1, "the lecture's figures did not appear"
    print(f"lecture 01 in JupyterLab: {time.monotonic() - started:.1f} s")


def test_exercise_validate_reports_failures(page, jupyter_lab, artifacts):
    """Does the unsolved exercise stop at a stub, and does nbgrader's Validate button say it fails?"""
    started = time.monotonic()
    open_notebook(page, jupyter_lab, "exercises/01_tensors/01_tensors.ipynb")
    run_all(page)
    errors = error_texts(page)
    assert errors and all("NotImplementedError" in e for e in errors), f"unexpected error output: {errors[:3]}"
    page.screenshot(path=artifacts / "jupyterlab-exercise-01_tensors-run.png")

    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=VALIDATE_TIMEOUT_S * 1000)
    header = dialog.locator(".jp-Dialog-header").inner_text()
    message = dialog.locator("#validation-message")
    verdict = message.inner_text()
    page.screenshot(path=artifacts / "jupyterlab-exercise-01_tensors-validate.png")
    assert header.strip() == "Validation Results", header
    assert "validation-failed" in (message.get_attribute("class") or ""), verdict[:500]
    assert "failed" in verdict and "NotImplementedError" in verdict, verdict[:500]
    assert "Success" not in verdict
    dialog.get_by_role("button", name="Ok").click()
    print(f"exercise 01 run and validated in JupyterLab: {time.monotonic() - started:.1f} s")
