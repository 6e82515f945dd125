"""A person reviews in a real browser: Debian's Chromium through Playwright, on the session's deployment.

The reviewer logs in through the login form, opens the pending Required Action of the review,
sees every thumbnail decoded (served by the Images tab's routes under their own session), picks
two images, writes a comment and responds; the publish task then gets exactly those two, and only
they reach ``published/``. The last test measures, for 20 images of 1024x1024, how long the
thumbnails take to show (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from urllib.parse import quote

import pytest

from tests.review.conftest import REVIEW_DAG, USERNAME
from tests.ui.browser import chromium

PROMPTS = ["a red fox in fresh snow", "a lighthouse at dusk", "a bowl of ramen", "a hot-air balloon"]
THUMBNAILS = "img[src*='/azerion/dags/'][src*='/thumbnails/']"
ALL_DECODED = (
    f'() => {{ const images = [...document.querySelectorAll("{THUMBNAILS}")];'
    " return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0) ? images.length : 0; }"
)
#: Where the README's screenshot is written when AZERION_SCREENSHOT_DIR is set.
SCREENSHOT_DIR = os.environ.get("AZERION_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser, deployment):
    """A logged-in reviewer's page (through the login form)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.goto(deployment.url + "/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", deployment.password)
    page.keyboard.press("Enter")
    page.wait_for_url(deployment.url + "/")
    yield page
    context.close()


def required_action(deployment, run_id: str) -> str:
    return f"{deployment.url}/dags/{REVIEW_DAG}/runs/{quote(run_id, safe='')}/tasks/review/required_actions"


def wait_for_thumbnails(page, count: int, timeout: float = 120) -> None:
    page.wait_for_function(f"() => ({ALL_DECODED})() === {count}", timeout=timeout * 1000)


def choose(page, file_name: str) -> None:
    """Pick the option of ``file_name`` in the form's multi-select, as a person types and confirms."""
    box = page.locator("#element_chosen_options input[role=combobox]")
    box.click()
    box.fill(file_name)
    page.keyboard.press("Enter")


def test_a_reviewer_approves_two_of_four_in_the_browser(deployment, page):
    run_id = deployment.trigger(REVIEW_DAG, {"prompts": PROMPTS})
    deployment.wait_for_review(REVIEW_DAG, run_id)
    page.goto(required_action(deployment, run_id))
    wait_for_thumbnails(page, len(PROMPTS))
    sources = page.eval_on_selector_all(THUMBNAILS, "images => images.map(i => i.getAttribute('src'))")
    assert all(src.startswith(f"/airflow/azerion/dags/{REVIEW_DAG}/runs/") for src in sources)
    assert [src.split("/thumbnails/")[1].split("?")[0] for src in sources] == [
        f"{i:04d}-0.jpg" for i in range(len(PROMPTS))
    ]

    page.locator("[aria-label='Remove Reject all']").click()
    choose(page, "0000-0.jpg")
    choose(page, "0002-0.jpg")
    page.fill("#element_comment", "fox and ramen only")
    if SCREENSHOT_DIR:
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "review.png"), full_page=True)
    page.get_by_role("button", name="Respond").click()

    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "success"
    decision = deployment.xcom(REVIEW_DAG, run_id, "review")
    assert [image["prompt"] for image in decision["approved"]] == [PROMPTS[0], PROMPTS[2]]
    assert decision["comment"] == "fox and ramen only"
    assert decision["responded_by"]["name"] == USERNAME
    published = deployment.xcom(REVIEW_DAG, run_id, "publish")
    assert [uri.rsplit("/", 1)[1] for uri in published] == ["0000-0.jpg", "0002-0.jpg"]
    folder = deployment.output_base / "published" / REVIEW_DAG / run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "0000-0.jpg",
        "0000-0.json",
        "0002-0.jpg",
        "0002-0.json",
    ]


def test_time_to_thumbnails_for_twenty_images_of_1024(deployment, page):
    """From the review's request to 20 thumbnails of 1024x1024 images shown (printed; BENCHMARKS.md)."""
    prompts = [f"image {i:02d}: a lighthouse on a cliff at dusk, poster style" for i in range(20)]
    deployment.emulator.max_side = None  # the emulator's real size: 1024x1024
    try:
        run_id = deployment.trigger(REVIEW_DAG, {"prompts": prompts})
        detail = deployment.wait_for_review(REVIEW_DAG, run_id)
    finally:
        deployment.emulator.max_side = 128
    asked = datetime.fromisoformat(detail["created_at"].replace("Z", "+00:00")).timestamp()
    opened = time.time()
    page.goto(required_action(deployment, run_id))
    wait_for_thumbnails(page, len(prompts))
    shown = time.time()
    sizes = page.eval_on_selector_all(
        THUMBNAILS, "images => images.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[256, 256]] * len(prompts)
    print(
        f"\n20 thumbnails of 1024x1024 images: {shown - opened:.2f} s from opening the Required Action page, "
        f"{shown - asked:.2f} s from the review's request (includes the test's own waits)"
    )
    deployment.answer(REVIEW_DAG, run_id, ["Reject all"])
    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "success"
