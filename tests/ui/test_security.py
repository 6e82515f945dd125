"""The Images tab's security rules, one test each, against Airflow's API app with the plugin mounted.

Plugin apps get no authentication from Airflow; these tests hold the plugin to the rules of the
issue: authentication and authorization by Airflow's auth manager on every route, no client input
that names a location, nothing outside the task's folder, only sniffed raster images, escaped
text, no secrets in pages, small cached lazy thumbnails, pages that need no script, the
``{MAP_INDEX}`` placeholder and the API server's base path.
"""

from __future__ import annotations

import io
import json
import shutil

import markupsafe
import pytest

from tests.ui.conftest import (
    DAG_FILE,
    HOSTILE_PROMPT,
    OUTPUT_CONN_ID,
    SECRET_KEY,
    parse_page,
    run_url,
    task_folder,
    ti_url,
    ui_conf,
)

pytestmark = pytest.mark.azerion_emulator(max_side=None)

ROUTES = ["page", "run page", "image", "thumbnail", "sidecar"]


def route_url(shared_run, route: str) -> str:
    result = shared_run.result
    return {
        "page": ti_url(result),
        "run page": run_url(result),
        "image": ti_url(result, rest="images/0000-0.jpg"),
        "thumbnail": ti_url(result, rest="thumbnails/0000-0.jpg"),
        "sidecar": ti_url(result, rest="sidecars/0000-0.json"),
    }[route]


# -- authentication and authorization ------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers_401_without_credentials(api, shared_run, route):
    response = api.get(route_url(shared_run, route), user=None)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("user", ["outsider", "no-xcom"])
def test_every_route_answers_403_to_a_user_who_may_not_read_the_dags_task_instances_and_xcoms(
    api, shared_run, route, user
):
    response = api.get(route_url(shared_run, route), user=user)

    assert response.status_code == 403
    assert SECRET_KEY not in response.text
    assert "0000-0" not in response.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("via", ["cookie", "header"])
def test_every_route_serves_a_viewer_with_the_session_cookie_or_a_bearer_token(api, shared_run, route, via):
    response = api.get(route_url(shared_run, route), user="viewer", via=via)

    assert response.status_code == 200


def test_a_token_signed_with_another_secret_is_refused(api, shared_run):
    import jwt

    forged = jwt.encode({"sub": "viewer", "role": "admin"}, "not-the-secret" * 8, algorithm="HS512")
    api.client.cookies.clear()

    response = api.client.get(ti_url(shared_run.result), headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code in (401, 403)


# -- nothing from the client names a location ----------------------------------------------------


def test_no_route_takes_a_uri_a_path_or_a_connection_id():
    from fastapi.routing import APIRoute

    from airflow_provider_azerion.plugins.routes import create_app

    app = create_app()
    names = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            dependant = route.dependant
            names |= {
                p.name for p in (*dependant.path_params, *dependant.query_params, *dependant.cookie_params)
            }
            assert not dependant.body_params, route.path
            assert route.methods == {"GET"}, route.path
    assert names == {"dag_id", "run_id", "task_id", "map_index", "name", "page", "v"}


def test_location_parameters_in_the_query_string_are_ignored(api, shared_run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "0000-0.jpg").write_bytes(b"\xff\xd8\xff" + b"NOT THE TASK'S IMAGE")
    query = {
        "uri": elsewhere.as_uri(),
        "path": str(elsewhere),
        "conn_id": "x",
        "output_path": elsewhere.as_uri(),
    }

    plain = api.get(ti_url(shared_run.result, rest="images/0000-0.jpg"))
    tricked = api.get(ti_url(shared_run.result, rest="images/0000-0.jpg"), params=query)

    assert tricked.status_code == 200
    assert tricked.content == plain.content == (shared_run.folder() / "0000-0.jpg").read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "%2E%2E",
        "..%2F..%2F0000-0.jpg",
        "%2E%2E%2Fgenerate%2F0000-0.jpg",
        "0000-0.jpg%2F..%2F0000-1.jpg",
        "%2Fetc%2Fpasswd",
        "..%5C0000-0.jpg",
        ".0000-0.jpg.0123.partial",
        "0000-0.jpg%00.png",
        "0000-0.JPG",
        "manifest.jsonl",
        "0000-0.svg",
        "0000-0.html",
    ],
)
@pytest.mark.parametrize("kind", ["images", "thumbnails", "sidecars"])
def test_file_names_other_than_the_operators_own_get_404(api, shared_run, name, kind):
    response = api.get(ti_url(shared_run.result, rest=f"{kind}/{name}"))

    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("image/")


@pytest.mark.parametrize(
    "path",
    [
        "/azerion/dags/azerion_ui/runs/{run}/tasks/..%2Fgenerate/-1/images",
        "/azerion/dags/azerion_ui/runs/{run}/tasks/generate%2F..%2Fgenerate/-1/images/0000-0.jpg",
        "/azerion/dags/azerion_ui%2F..%2Fazerion_ui/runs/{run}/tasks/generate/-1/images/0000-0.jpg",
        "/azerion/dags/azerion_ui/runs/{run}%2F..%2F{run}/tasks/generate/-1/images/0000-0.jpg",
        "/azerion/dags/azerion_ui/runs/{run}/tasks/generate/..%2F-1/images/0000-0.jpg",
        "/azerion/dags/azerion_ui/runs/{run}/tasks/generate/-2/images",
        "/azerion/dags/azerion_ui/runs/{run}/tasks/generate/%2B1/images",
        "/azerion/dags/azerion_ui/runs/{run}/tasks/generate/{{TASK_ID}}/images",
    ],
)
def test_tricks_in_the_ids_get_404(api, shared_run, path):
    from urllib.parse import quote

    response = api.get(path.format(run=quote(shared_run.result.run_id, safe="")))

    assert response.status_code == 404


def test_an_image_outside_the_task_folder_is_never_served(api, run_dag, output_dir, emulator):
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    secret = b"\x89PNG\r\n\x1a\n" + b"SECRET IMAGE OUTSIDE THE FOLDER"
    (folder.parent / "0000-7.png").write_bytes(secret)  # the run's folder, one level up
    (folder.parent / "0000-7.json").write_text(json.dumps({"prompt": "outside"}))
    (folder / "0000-8.png").symlink_to(folder.parent / "0000-7.png")  # links inside point outside
    (folder / "0000-8.json").symlink_to(folder.parent / "0000-7.json")

    responses = [
        api.get(ti_url(result, rest=f"{kind}/{name}"))
        for kind in ("images", "thumbnails", "sidecars")
        for name in (
            "0000-7.png",
            "0000-7.json",
            "..%2F0000-7.png",
            "%2E%2E%2F0000-7.json",
            "0000-8.png",
            "0000-8.json",
        )
    ]

    page = parse_page(api.get(ti_url(result)).text)

    assert {r.status_code for r in responses} == {404}
    assert not any(b"SECRET IMAGE" in r.content or b"outside" in r.content for r in responses)
    assert page.data_values("image") == ["0000-0.jpg"]


# -- only sniffed raster images -------------------------------------------------------------------


@pytest.fixture
def planted(run_dag, output_dir, emulator):
    """A run whose folder also holds files with image names that are not what they claim."""
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    page = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
    (folder / "0005-0.png").write_bytes(svg)
    (folder / "0006-0.gif").write_bytes(page)
    shutil.copy(folder / "0000-0.jpg", folder / "0007-0.png")  # a JPEG under a .png name
    for index in (5, 6, 7):
        (folder / f"{index:04d}-0.json").write_text(json.dumps({"prompt": f"planted {index}"}))
    return result


@pytest.mark.parametrize("kind", ["images", "thumbnails"])
@pytest.mark.parametrize("name", ["0005-0.png", "0006-0.gif"])
def test_files_that_are_not_png_jpeg_webp_or_gif_are_not_served(api, planted, kind, name):
    response = api.get(ti_url(planted, rest=f"{kind}/{name}"))

    assert response.status_code == 404
    assert b"<script>" not in response.content
    assert not response.headers["content-type"].startswith(("image/", "application/xml"))


def test_images_are_served_with_the_content_type_of_their_bytes_and_nosniff(api, planted):
    response = api.get(ti_url(planted, rest="images/0007-0.png"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content.startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize("route", ROUTES)
def test_every_response_says_nosniff(api, shared_run, route):
    assert api.get(route_url(shared_run, route)).headers["x-content-type-options"] == "nosniff"


def test_a_sidecar_is_served_as_json_never_as_html(api, planted):
    folder_file = ti_url(planted, rest="sidecars/0006-0.json")

    response = api.get(folder_file)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"prompt": "planted 6"}


# -- escaped text, no secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("route", ["page", "run page"])
def test_prompts_are_html_escaped(api, shared_run, route):
    response = api.get(route_url(shared_run, route))
    page = parse_page(response.text)

    assert HOSTILE_PROMPT in page.text  # shown as text...
    assert str(markupsafe.escape(HOSTILE_PROMPT)) in response.text
    assert HOSTILE_PROMPT not in response.text  # ...never as markup
    assert page.handlers == []
    assert len(page.scripts) == 1  # the page's own, allowed by its nonce only
    nonce = page.scripts[0]["nonce"]
    assert f"script-src 'nonce-{nonce}'" in response.headers["content-security-policy"]


def test_every_field_of_a_hostile_sidecar_is_escaped(api, run_dag, output_dir, emulator):
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    fields = ("prompt", "revised_prompt", "model", "style", "media_type", "created", "try_number", "sha256")
    hostile = {name: f"<script>alert('{name}')</script>' onmouseover='alert(1)" for name in fields}
    (folder / "manifest.jsonl").unlink()  # else its line stands in for the sidecar
    (folder / "0000-0.json").write_text(json.dumps(hostile))

    response = api.get(ti_url(result))
    page = parse_page(response.text)

    assert response.status_code == 200
    assert page.handlers == []
    assert len(page.scripts) == 1
    assert page.imgs[0]["alt"] == hostile["prompt"]
    for name, value in hostile.items():
        shown = value[:12] if name == "sha256" else value  # a checksum shows its first 12 characters
        assert shown in page.text, name
        assert value not in response.text, name


def test_ids_and_texts_with_quotes_and_markup_stay_text_in_attributes_and_elements():
    from airflow_provider_azerion.plugins import pages, views
    from airflow_provider_azerion.plugins.gallery import FolderContents, StoredImage

    hostile = "x' onmouseover='alert(1)' \"><script>alert(2)</script>"
    image = StoredImage("0000-0.png", 10, {"prompt": hostile}, "0000-0.json", f"file:///{hostile}/0000-0.png")
    contents = FolderContents(uri=f"file:///{hostile}", image_names=[image.name], images=[image])
    ti = views.TaskInstanceView(
        task_id=hostile,
        map_index=-1,
        state=hostile,
        try_number=1,
        task_type=hostile,
        is_azerion=True,
        links=views.TaskInstanceLinks.of("/azerion", hostile, hostile, hostile, -1),
        contents=contents,
        note=hostile,
    )
    unknown = views.TaskInstanceView(
        hostile, 0, None, 1, None, True, ti.links, problem=hostile, reason=hostile
    )
    run = views.RunView(dag_id=hostile, run_id=hostile, state=hostile, task_instances=[ti, unknown])
    html_pages = [
        pages.task_instance_page(hostile, hostile, ti, page=1, page_size=10, thumbnails=True, nonce="n"),
        pages.run_page(run, thumbnails=True, nonce="n"),
        pages.message_page(hostile, hostile, 404, nonce="n"),
    ]

    for html in html_pages:
        page = parse_page(html)
        assert page.handlers == []
        assert len(page.scripts) <= 1
        assert hostile in page.text
        assert "<script>alert" not in html
    run_page = parse_page(html_pages[1])
    assert run_page.data_values("task-id") == [hostile]
    assert run_page.data_values("state") == [hostile, hostile, "none"]
    assert run_page.data_values("reason") == [hostile]
    assert [img["alt"] for img in run_page.imgs] == [hostile]


@pytest.mark.parametrize("route", ["page", "run page"])
def test_pages_show_no_key_connection_id_or_signed_query_string(api, shared_run, route):
    response = api.get(route_url(shared_run, route))
    page = parse_page(response.text)

    assert SECRET_KEY not in response.text
    assert OUTPUT_CONN_ID not in response.text
    for url in page.links + [img["src"] for img in page.imgs]:
        assert "?" not in url or url.split("?", 1)[1].split("=")[0] in ("v", "page"), url


def test_shown_uris_lose_user_names_and_query_strings():
    from airflow_provider_azerion.redact import public_uri

    assert public_uri("s3://aws_conn@bucket/a/0000-0.png") == "s3://bucket/a/0000-0.png"
    assert public_uri("https://user:pw@host/x.png?X-Amz-Signature=abc#f") == "https://host/x.png"
    assert public_uri("file:///data/x/0000-0.png") == "file:///data/x/0000-0.png"


# -- thumbnails ------------------------------------------------------------------------------------


@pytest.fixture
def large_run(run_dag, output_dir, emulator):
    """A run with two 1024x512 images."""
    conf = ui_conf(output_dir, ["a wide fox", "a tall fox"], extra_params={"size": "1024x512"})
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=conf)
    assert result.state == "success"
    return result


def test_thumbnails_are_at_most_256_px_on_their_longest_side(api, large_run):
    from PIL import Image

    response = api.get(ti_url(large_run, rest="thumbnails/0000-0.jpg"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as thumbnail:
        assert thumbnail.size == (256, 128)
    full = api.get(ti_url(large_run, rest="images/0000-0.jpg")).content
    assert len(response.content) < len(full) / 4


def test_thumbnails_are_made_once_and_cached(api, large_run, output_dir):
    from airflow_provider_azerion.plugins.thumbnail_store import MEMORY

    page = parse_page(api.get(ti_url(large_run)).text)  # also starts making them ahead of time

    first = [api.get(img["src"]) for img in page.imgs]
    again = [api.get(img["src"]) for img in page.imgs]
    revalidated = api.get(page.imgs[0]["src"], headers={"If-None-Match": first[0].headers["etag"]})

    made = {
        key[0].rsplit("/", 1)[1]: count
        for key, count in MEMORY.made.items()
        if key[0].startswith(output_dir.as_uri())
    }
    assert made == {"0000-0.jpg": 1, "0001-0.jpg": 1}  # once each, whoever asked first
    assert [r.content for r in first] == [r.content for r in again]
    assert {r.headers["cache-control"] for r in first} == {"private, max-age=31536000, immutable"}
    assert revalidated.status_code == 304


def test_every_thumbnail_is_lazy_and_sized(api, shared_run):
    page = parse_page(api.get(ti_url(shared_run.result)).text)

    assert len(page.imgs) == len(shared_run.prompts)
    for img in page.imgs:
        assert img["loading"] == "lazy"
        assert int(img["width"]) <= 256
        assert int(img["height"]) <= 256
        assert "/thumbnails/" in img["src"]


# -- pages without scripts, placeholders, base path ------------------------------------------------


def test_the_page_is_complete_html_whose_images_and_links_resolve(api, shared_run):
    response = api.get(ti_url(shared_run.result))
    page = parse_page(response.text)

    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert len(page.imgs) == 3
    image_links = [link for link in page.links if "/images/0" in link]
    sidecar_links = [link for link in page.links if "/sidecars/" in link]
    assert len(set(image_links)) == 3
    assert len(sidecar_links) == 3
    for url in [img["src"] for img in page.imgs] + image_links + sidecar_links:
        assert api.get(url).status_code == 200, url
    for prompt in shared_run.prompts:
        assert prompt in page.text


def test_the_literal_map_index_placeholder_means_an_unmapped_task_instance(api, shared_run):
    placeholder = api.get(ti_url(shared_run.result, map_index="{MAP_INDEX}"))
    unmapped = api.get(ti_url(shared_run.result, map_index=-1))

    assert placeholder.status_code == 200
    assert parse_page(placeholder.text).data_values("image") == parse_page(unmapped.text).data_values("image")
    assert len(parse_page(placeholder.text).imgs) == 3


def test_links_carry_the_api_servers_base_path(api, shared_run):
    from fastapi.testclient import TestClient

    # The API server reached under /airflow: what [api] base_url = http://host/airflow/ gives
    # (ASGI paths then start with the root path, as they do behind a proxy that keeps it).
    client = TestClient(api.client.app, root_path="/airflow", base_url="http://127.0.0.1")
    client.cookies.set("_token", api.token())

    for url in (ti_url(shared_run.result), run_url(shared_run.result)):
        response = client.get("/airflow" + url)
        assert response.status_code == 200
        page = parse_page(response.text)
        urls = page.links + [img["src"] for img in page.imgs]
        assert urls
        assert all(u.startswith("/airflow/azerion/dags/azerion_ui/runs/") for u in urls), urls


def test_tab_hrefs_carry_the_base_path_of_api_base_url(monkeypatch):
    from airflow_provider_azerion.plugins.images import external_views

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team-a/")

    hrefs = {view["destination"]: view["href"] for view in external_views()}

    assert hrefs == {
        "task_instance": "/team-a/azerion/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}/{MAP_INDEX}/images",
        "dag_run": "/team-a/azerion/dags/{DAG_ID}/runs/{RUN_ID}/images",
    }
