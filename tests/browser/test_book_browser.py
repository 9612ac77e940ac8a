"""Does the built course book read right in a browser: every lecture link from the index opens a
page with its figures drawn and no error output?"""

import re

import pytest
from test_book import book_once, draws_figures

from grader import course

pytestmark = pytest.mark.browser

ERROR_OUTPUTS = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
DRAWN_PNGS = "() => [...document.images].filter(i => i.src.startsWith('data:image/png') && i.naturalWidth > 0).length"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return book_once(tmp_path_factory)


def offline(page):
    """The book must stand alone: refuse every request that leaves the file system."""
    page.route(re.compile(r"^https?://"), lambda route: route.abort())


def test_every_lecture_link_opens_a_page_with_its_figures(page, index, artifacts):
    """Following each syllabus link: does the page open, draw its figures, and show no error?"""
    offline(page)
    page.goto(index.as_uri(), wait_until="load")
    page.screenshot(path=artifacts / "book-index.png")
    links = page.locator("a[href$='.html']:not([hreflang])")  # the syllabus, not the link to the other edition
    targets = [links.nth(i).get_attribute("href") for i in range(links.count())]
    lectures = {f"{path.stem}.html": path for path in course.lecture_paths()}
    assert targets == list(lectures), f"the index links {targets}, expected {list(lectures)}"
    for href in targets:
        page.goto(index.as_uri(), wait_until="load")
        page.locator(f"a[href='{href}']").first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/" + href), page.url
        lecture = lectures[href]
        drawn = page.evaluate(DRAWN_PNGS)
        errors = [t for t in page.locator(ERROR_OUTPUTS).all_inner_texts() if re.search(r"Traceback|\w*Error\b", t)]
        figure = page.locator("img[src^='data:image/png']")
        if figure.count():
            figure.first.scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"book-{lecture.stem}.png")
        assert page.locator(".jp-OutputArea-output").count() > 0, f"{href} shows no outputs"
        if draws_figures(lecture):
            assert drawn >= 1, f"{href}: {lecture.name} draws figures but the page shows none"
        assert not errors, f"{href} shows error output: {errors[:3]}"
        assert "Traceback" not in page.content(), f"{href} shows a traceback"
