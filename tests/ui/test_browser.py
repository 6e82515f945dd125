"""The Images tabs in a real browser: headless Chromium, a real ``airflow api-server``, real runs.

Log in with the simple auth manager, open the task instance page of a run made against the
emulator, open its Images tab, and check that every thumbnail decoded, that there are as many as
images stored, and that the prompts are shown; the same for the DAG run tab and a mapped task.
The last test opens the tab of a 100-image run (1024x1024 each) and measures what the issue
asks for (see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest

from tests.ui.browser import USERNAME, api_server, chromium
from tests.ui.conftest import HOSTILE_PROMPT, run_against_emulator, stored_images, task_folder, ui_conf

#: Sets the in-page clock of the Images frame: when its document was parsed, when all its images decoded.
PROBE = """
if (location.pathname.includes('/azerion/')) {
  window.__azerion = {};
  document.addEventListener('DOMContentLoaded', () => {
    window.__azerion.parsed = performance.timeOrigin + performance.now();
    const images = [...document.images];
    Promise.all(images.map(image => image.decode().catch(() => null))).then(() => {
      window.__azerion.decoded = performance.timeOrigin + performance.now();
    });
  });
}
"""
ALL_DECODED = "() => [...document.images].every(image => image.complete && image.naturalWidth > 0)"
BULK_IMAGES = 100
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bulk(airflow_db, tmp_path_factory):
    """A run of 100 images of 1024x1024 (the emulator's real size: no ``max_side``).

    The emulator draws gradients with the prompt on them (about 55 KiB as JPEG);
    ``AZERION_UI_BENCH_NOISE=1`` makes them incompressible noise instead (about 920 KiB each).
    """
    output_dir = tmp_path_factory.mktemp("bulk-images")
    prompts = [f"image {i:03d}: a lighthouse on a cliff at dusk, poster style" for i in range(BULK_IMAGES)]
    result = run_against_emulator(
        "azerion_ui_bulk",
        ui_conf(output_dir, prompts, extra_params={"size": "1024x1024"}),
        max_side=None,
        noise=bool(os.environ.get("AZERION_UI_BENCH_NOISE")),
    )
    assert result.state == "success"
    return result, task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")


@pytest.fixture(scope="module")
def server(shared_run, bulk, tmp_path_factory):
    """``airflow api-server`` on the runs above (started once they exist)."""
    with api_server(tmp_path_factory.mktemp("api-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def session_state(server, browser):
    """The browser state of a logged-in user: logged in once, through the login form."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.ui("/"))
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", server.password)
    page.keyboard.press("Enter")
    page.wait_for_url(server.ui("/"))
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def context(browser, session_state):
    context = browser.new_context(storage_state=session_state, viewport={"width": 1600, "height": 2400})
    context.add_init_script(PROBE)
    yield context
    context.close()


def ti_page(result, task_id: str, map_index: int = -1) -> str:
    path = f"/dags/{result.dag.dag_id}/runs/{quote(result.run_id, safe='')}/tasks/{task_id}"
    return path + (f"/mapped/{map_index}" if map_index >= 0 else "")


def run_page(result) -> str:
    return f"/dags/{result.dag.dag_id}/runs/{quote(result.run_id, safe='')}"


def open_tab(page, server, path: str, route: str):
    """Open a UI page, click its Images tab (``route``: the tab's url_route), return the tab's frame."""
    page.goto(server.ui(path))
    tab = page.locator(f"a[href$='plugin/{route}']")
    tab.wait_for()
    tab.click()
    page.locator("iframe").wait_for()
    frame = page.locator("iframe").element_handle().content_frame()
    frame.wait_for_selector("h1")
    return frame


def images_in(frame) -> list[dict]:
    return frame.evaluate(
        "() => [...document.images].map(i => ({src: i.src, alt: i.alt, width: i.naturalWidth,"
        " complete: i.complete}))"
    )


def test_the_task_instance_tab_shows_every_stored_image(context, server, shared_run):
    page = context.new_page()
    sent = []
    page.on("request", lambda request: sent.append(request) if "/azerion/" in request.url else None)

    frame = open_tab(page, server, ti_page(shared_run.result, "generate"), "azerion-images")
    frame.wait_for_function(ALL_DECODED)

    images = images_in(frame)
    assert len(images) == len(stored_images(shared_run.folder())) == 3
    assert all(image["width"] > 0 for image in images)
    text = frame.locator("body").inner_text()
    for prompt in shared_run.prompts:
        assert prompt in text
    assert frame.evaluate("() => document.querySelectorAll('script:not([nonce])').length") == 0
    # What the UI's frame sends: the session cookie, never an Authorization header.
    headers = [request.all_headers() for request in sent]
    assert headers
    assert all("_token=" in h.get("cookie", "") and "authorization" not in h for h in headers)
    assert all(request.url.startswith(server.url + "/azerion/") for request in sent)


def test_the_dag_run_tab_shows_the_images_of_every_azerion_task(context, server, shared_run):
    page = context.new_page()

    frame = open_tab(page, server, run_page(shared_run.result), "azerion-run-images")
    frame.wait_for_function(ALL_DECODED)

    images = images_in(frame)
    stored = [
        *stored_images(shared_run.folder("generate")),
        *stored_images(shared_run.folder("generate_mapped", 0)),
        *stored_images(shared_run.folder("generate_mapped", 1)),
    ]
    assert len(images) == len(stored) == 5
    assert all(image["width"] > 0 for image in images)
    text = frame.locator("body").inner_text()
    for prompt in [*shared_run.prompts, "a blue whale", "a green owl"]:
        assert prompt in text
    assert frame.locator("section.task").count() == 2
    assert frame.locator("article.ti").count() == 3


def test_a_mapped_task_instance_tab_shows_its_images(context, server, shared_run):
    page = context.new_page()

    frame = open_tab(page, server, ti_page(shared_run.result, "generate_mapped", 1), "azerion-images")
    frame.wait_for_function(ALL_DECODED)

    images = images_in(frame)
    assert len(images) == len(stored_images(shared_run.folder("generate_mapped", 1))) == 1
    assert images[0]["width"] > 0
    assert "a green owl" in frame.locator("body").inner_text()


def test_a_thumbnail_opens_the_full_image_and_one_click_copies_its_uri(
    browser, session_state, server, shared_run
):
    context = browser.new_context(
        storage_state=session_state, permissions=["clipboard-read", "clipboard-write"]
    )
    try:
        page = context.new_page()
        frame = open_tab(page, server, ti_page(shared_run.result, "generate"), "azerion-images")
        expected_uri = (shared_run.folder() / "0000-0.jpg").as_uri()

        frame.locator("li.card button.copy").first.click()
        frame.wait_for_function("() => document.querySelector('button.copy').textContent !== 'Copy URI'")
        copied = page.evaluate("() => navigator.clipboard.readText()")

        with page.expect_response(lambda response: response.url.endswith("/images/0000-0.jpg")) as opened:
            frame.locator("a.thumb").first.click()
        full = opened.value
        status, content_type, body = full.status, full.headers["content-type"], full.body()
        shown = (
            page.locator("iframe")
            .element_handle()
            .content_frame()
            .evaluate("() => [document.images.length, document.images[0].naturalWidth]")
        )
    finally:
        context.close()

    assert copied == expected_uri
    assert status == 200
    assert content_type == "image/jpeg"
    assert body == (shared_run.folder() / "0000-0.jpg").read_bytes()
    assert shown == [1, 64]  # the frame now shows the full image alone


def test_the_tab_page_works_without_javascript(browser, session_state, server, shared_run):
    context = browser.new_context(storage_state=session_state, java_script_enabled=False)
    try:
        page = context.new_page()
        url = f"{server.url}/azerion{ti_page(shared_run.result, 'generate')}/-1/images"
        response = page.goto(url)
        page.wait_for_function(ALL_DECODED)
        images = images_in(page)
        text = page.locator("body").inner_text()
        copy_buttons_visible = page.locator("button.copy").first.is_visible()
    finally:
        context.close()

    assert response.status == 200
    assert len(images) == 3
    assert all(image["width"] > 0 for image in images)
    assert HOSTILE_PROMPT in text
    assert not copy_buttons_visible  # the script adds them; without it the URI field remains


def open_measured(browser, session_state, server, result) -> dict:
    """Open the Images tab of ``result``'s ``generate`` in a fresh browser; measure it.

    :return: ``decoded_s`` and ``parsed_s`` (from the click on the tab to all its thumbnails
        decoded, and to its page parsed, by the frame's own clock), ``moved`` (URL and bytes of
        every response from the click on), and ``images`` (what the frame shows).
    """
    context = browser.new_context(storage_state=session_state, viewport={"width": 2560, "height": 7000})
    context.add_init_script(PROBE)
    try:
        page = context.new_page()
        page.goto(server.ui(ti_page(result, "generate")))
        page.locator("a[href$='plugin/azerion-images']").wait_for()
        page.wait_for_load_state("networkidle")
        moved: list[tuple[str, int]] = []

        def finished(request) -> None:
            sizes = request.sizes()
            moved.append((request.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))

        page.on("requestfinished", finished)
        clicked = page.evaluate(
            "() => { document.querySelector(\"a[href$='plugin/azerion-images']\").click();"
            " return performance.timeOrigin + performance.now(); }"
        )
        page.locator("iframe").wait_for()
        frame = page.locator("iframe").element_handle().content_frame()
        frame.wait_for_function("() => window.__azerion && window.__azerion.decoded", timeout=60_000)
        clock = frame.evaluate("window.__azerion")
        for _ in range(100):  # Playwright reports finished requests a little after the fact
            if sum("/thumbnails/" in url for url, _ in moved) >= BULK_IMAGES:
                break
            page.wait_for_timeout(100)
        images = images_in(frame)
    finally:
        context.close()
    return {
        "decoded_s": (clock["decoded"] - clicked) / 1000,
        "parsed_s": (clock["parsed"] - clicked) / 1000,
        "moved": moved,
        "images": images,
    }


def test_100_images_of_1024_px_decode_within_2_s_of_opening_the_tab_and_move_under_5_mib(
    browser, session_state, server, bulk
):
    """The benchmark of BENCHMARKS.md. Timing is reported; set AZERION_UI_BENCH_STRICT=1 to assert it.

    The viewport is tall enough (2560x7000) for the whole grid, so the lazy thumbnails are all
    requested at once: the worst case for the server. The first opening finds the server's
    thumbnail caches cold (the run was never opened); the second, in another fresh browser, finds
    them warm. Bytes are the response bodies and headers of every request the page makes from the
    click on the tab on, as Chromium reports them.
    """
    result, folder = bulk
    stored = stored_images(folder)

    cold = open_measured(browser, session_state, server, result)
    warm = open_measured(browser, session_state, server, result)

    total = sum(size for _, size in cold["moved"])
    thumbnails = [size for url, size in cold["moved"] if "/thumbnails/" in url]
    figures = {
        "images": len(cold["images"]),
        "decoded_s": round(cold["decoded_s"], 3),
        "frame_parsed_s": round(cold["parsed_s"], 3),
        "decoded_warm_s": round(warm["decoded_s"], 3),
        "bytes_moved": total,
        "thumbnail_bytes": sum(thumbnails),
        "requests": len(cold["moved"]),
        "full_images_bytes": sum(path.stat().st_size for path in stored),
    }
    print("AZERION UI BENCHMARK " + json.dumps(figures))
    assert len(stored) == BULK_IMAGES
    for opened in (cold, warm):
        assert len(opened["images"]) == BULK_IMAGES
        assert all(image["width"] > 0 for image in opened["images"])
    assert len(thumbnails) == BULK_IMAGES
    assert not any("/images/0" in url for url, _ in cold["moved"]), "no full image is fetched for the grid"
    assert total < 5 * MIB
    if os.environ.get("AZERION_UI_BENCH_STRICT"):
        assert cold["decoded_s"] <= 2.0
