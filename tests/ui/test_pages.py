"""What the Images tabs show, for every kind of task instance and run, read from the task's folder."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone

import pytest

from airflow_provider_azerion.storage import sanitize_segment
from tests.ui.conftest import (
    DAG_FILE,
    parse_page,
    run_url,
    stored_images,
    task_folder,
    ti_url,
    ui_conf,
)


def sidecar(folder, name: str) -> dict:
    return json.loads((folder / name.replace(".jpg", ".json")).read_text())


# -- a task instance --------------------------------------------------------------------------------


def test_the_task_instance_tab_shows_every_stored_image_with_its_facts(api, shared_run):
    folder = shared_run.folder()
    page = parse_page(api.get(ti_url(shared_run.result)).text)

    names = [p.name for p in stored_images(folder)]
    assert page.data_values("image") == names
    assert page.counts("images") == [len(names)]
    for name in names:
        facts = sidecar(folder, name)
        for shown in (
            facts["prompt"],
            facts["model"],
            "64\u00d764 px",
            f"{facts['bytes']:,}",
            facts["media_type"],
            facts["sha256"][:12],
            datetime.fromisoformat(facts["created"])
            .astimezone(timezone.utc)
            .strftime("%Y-%m-%d %H:%M:%S UTC"),
        ):
            assert shown in page.text, shown
    assert page.data_values("state") == ["success"]


def test_a_mapped_task_instance_shows_its_own_images(api, shared_run):
    page = parse_page(api.get(ti_url(shared_run.result, "generate_mapped", 1)).text)

    assert page.counts("images") == [1]
    assert len(page.imgs) == 1
    assert page.imgs[0]["alt"] == "a green owl"
    assert "a blue whale" not in page.text


def test_a_mapped_task_as_a_whole_shows_each_map_index(api, shared_run):
    page = parse_page(api.get(ti_url(shared_run.result, "generate_mapped", "{MAP_INDEX}")).text)

    assert page.data_values("map-index") == ["0", "1"]
    assert page.counts("ti-images") == [1, 1]
    assert [img["alt"] for img in page.imgs] == ["a blue whale", "a green owl"]


def test_a_task_that_is_not_an_azerion_task_says_so(api, shared_run):
    response = api.get(ti_url(shared_run.result, "not_an_azerion_task"))
    page = parse_page(response.text)

    assert response.status_code == 200
    assert page.data_values("reason") == ["not-azerion"]
    assert "@task" in page.text
    assert page.imgs == []


def test_an_unknown_task_instance_or_run_is_404(api, shared_run):
    result = shared_run.result
    assert api.get(ti_url(result, "no_such_task")).status_code == 404
    assert api.get(ti_url(result, "generate_mapped", 7)).status_code == 404
    assert api.get(ti_url(result, "generate", 0)).status_code == 404
    assert api.get(run_url(result).replace("/runs/", "/runs/x")).status_code == 404


def test_a_failed_task_shows_what_it_stored_before_failing(api, run_dag, output_dir, emulator):
    emulator.faults.script(["ok", "drop"])  # prompt 0 stored; prompt 1's response is lost

    result = run_dag(
        DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a stored fox", "a lost owl"])
    )
    page = parse_page(api.get(ti_url(result)).text)

    assert result.state == "failed"
    assert page.data_values("state") == ["failed"]
    assert page.data_values("image") == ["0000-0.jpg"]
    assert "a stored fox" in page.text
    assert "a lost owl" not in page.text


def test_a_running_task_shows_what_is_already_stored(api, run_dag, output_dir, emulator):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox", "an owl"]))
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    (folder / "0001-0.json").unlink()  # prompt 1 as if still being written: image, no sidecar yet
    with create_session() as session:  # as if a next try had started
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.dag_id == result.dag.dag_id, TaskInstance.run_id == result.run_id)
            .values(state="running", try_number=2)
        )

    page = parse_page(api.get(ti_url(result)).text)

    assert page.data_values("state") == ["running"]
    assert page.data_values("image") == ["0000-0.jpg", "0001-0.jpg"]
    sidecar_links = [link for link in page.links if "/sidecars/" in link]
    assert [link.rsplit("/", 1)[1] for link in sidecar_links] == ["0000-0.json"]
    assert "a fox" in page.text


def test_a_task_instance_that_never_rendered_says_so(api, run_dag, output_dir):
    result = run_dag(DAG_FILE, "azerion_ui_never_ran", conf=ui_conf(output_dir, ["never sent"]))
    templated = parse_page(api.get(ti_url(result, "templated")).text)
    plain = parse_page(api.get(ti_url(result, "static")).text)

    assert result.states()[("templated", -1)] == "upstream_failed"
    assert templated.data_values("reason") == ["not-rendered"]
    assert templated.data_values("folder") == []
    # Without rendered arguments, a plain output_path still gives the folder.
    assert plain.data_values("note") == ["unrendered"]
    assert plain.data_values("reason") == ["empty"]
    assert (
        f"file:///tmp/azerion-ui-tests-static-output/azerion_ui_never_ran/{sanitize_segment(result.run_id)}/static"
        in (plain.text)
    )


def test_an_unreadable_folder_shows_the_error(api, run_dag, output_dir, emulator):
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    shutil.rmtree(folder)
    os.symlink(folder, folder)  # a loop: listing it fails, whoever runs the test

    response = api.get(ti_url(result))
    page = parse_page(response.text)

    assert response.status_code == 200
    assert page.data_values("reason") == ["unreadable"]
    assert page.imgs == []


def test_an_empty_folder_says_nothing_is_stored_yet(api, run_dag, output_dir, emulator):
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    shutil.rmtree(task_folder(output_dir, result.dag.dag_id, result.run_id, "generate"))

    page = parse_page(api.get(ti_url(result)).text)

    assert page.data_values("reason") == ["empty"]
    assert page.counts("images") == [0]


def test_long_folders_are_shown_a_page_at_a_time(api, shared_run, monkeypatch):
    from airflow_provider_azerion.plugins import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)

    first = api.get(ti_url(shared_run.result))
    second = api.get(ti_url(shared_run.result) + "?page=2")
    third = api.get(ti_url(shared_run.result) + "?page=3")

    assert parse_page(first.text).data_values("image") == ["0000-0.jpg", "0001-0.jpg"]
    assert parse_page(second.text).data_values("image") == ["0002-0.jpg"]
    assert any(link.endswith("?page=2") for link in parse_page(first.text).links)
    assert third.status_code == 404


def test_without_pillow_the_page_links_images_without_thumbnails(
    api, run_dag, output_dir, emulator, monkeypatch
):
    import sys

    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=ui_conf(output_dir, ["a fox"]))
    monkeypatch.setitem(sys.modules, "PIL", None)

    page = parse_page(api.get(ti_url(result)).text)
    thumbnail = api.get(ti_url(result, rest="thumbnails/0000-0.jpg"))

    assert page.data_values("reason") == ["no-pillow"]
    assert page.imgs == []
    assert any(link.endswith("/images/0000-0.jpg") for link in page.links)
    assert thumbnail.status_code == 501
    assert "airflow-provider-azerion[ui]" in thumbnail.text


# -- a DAG run ------------------------------------------------------------------------------------


def test_the_run_tab_groups_azerion_tasks_by_task_and_map_index_with_counts(api, shared_run):
    page = parse_page(api.get(run_url(shared_run.result)).text)

    assert page.data_values("task-id") == ["generate", "generate_mapped"]
    assert page.data_values("map-index") == ["-1", "0", "1"]
    assert page.counts("ti-images") == [3, 1, 1]
    assert page.counts("task-images") == [3, 2]
    assert page.counts("images") == [5]
    assert page.counts("task-instances") == [3]
    assert page.counts("tasks") == [2]
    assert len(page.imgs) == 5
    assert "not_an_azerion_task" not in page.data_values("task-id")


def test_the_run_tab_previews_large_task_instances_and_links_to_them(api, shared_run, monkeypatch):
    from airflow_provider_azerion.plugins import views

    monkeypatch.setattr(views, "RUN_PREVIEW", 2)

    page = parse_page(api.get(run_url(shared_run.result)).text)

    assert page.counts("ti-images") == [3, 1, 1]
    assert len(page.imgs) == 4  # 2 of generate's 3, and one of each mapped task instance
    assert ti_url(shared_run.result) in page.links


def test_the_run_tab_shows_azerion_tasks_that_never_ran(api, run_dag, output_dir):
    result = run_dag(DAG_FILE, "azerion_ui_never_ran", conf=ui_conf(output_dir, ["never sent"]))
    page = parse_page(api.get(run_url(result)).text)

    assert page.data_values("task-id") == ["static", "templated"]
    assert page.data_values("reason") == ["empty", "not-rendered"]
    assert page.counts("images") == [0]


def test_a_run_without_azerion_tasks_says_so(api, run_dag):
    result = run_dag(DAG_FILE, "azerion_ui_no_images")
    page = parse_page(api.get(run_url(result)).text)

    assert page.data_values("reason") == ["no-azerion-tasks"]
    assert page.data_values("task-id") == []


# -- the folder as the only source ----------------------------------------------------------------


@pytest.fixture
def folder_copy(shared_run, tmp_path):
    """A copy of the shared run's ``generate`` folder, to edit."""
    from airflow.sdk import ObjectStoragePath

    copy = tmp_path / "copy"
    shutil.copytree(shared_run.folder(), copy)
    return copy, ObjectStoragePath(copy.as_uri())


def test_a_current_manifest_stands_in_for_the_sidecars(folder_copy):
    from airflow_provider_azerion.plugins.gallery import read_folder

    folder, path = folder_copy
    lines = []
    for image in stored_images(folder):
        entry = sidecar(folder, image.name) | {"prompt": f"manifest says {image.name}"}
        lines.append(json.dumps(entry))
        (folder / image.name.replace(".jpg", ".json")).write_text("{torn")  # never read
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")

    contents = read_folder(path)

    assert [image.metadata["prompt"] for image in contents.images] == [
        "manifest says 0000-0.jpg",
        "manifest says 0001-0.jpg",
        "manifest says 0002-0.jpg",
    ]


def test_manifest_lines_of_replaced_images_give_way_to_their_sidecars(folder_copy):
    from airflow_provider_azerion.plugins.gallery import read_folder

    folder, path = folder_copy
    stale = sidecar(folder, "0001-0.jpg") | {"prompt": "from an older try", "bytes": 1}
    (folder / "manifest.jsonl").write_text(json.dumps(stale) + "\n")

    contents = read_folder(path)

    assert contents.images[1].metadata["prompt"] == sidecar(folder, "0001-0.jpg")["prompt"]
    assert [image.name for image in contents.images] == ["0000-0.jpg", "0001-0.jpg", "0002-0.jpg"]


def test_only_the_operators_file_names_count(folder_copy):
    from airflow_provider_azerion.plugins.gallery import read_folder

    folder, path = folder_copy
    for name in (".0003-0.jpg.1a2b.partial", "notes.txt", "0004-0.svg", "0005-0.jpg.bak", "thumbs.db"):
        (folder / name).write_bytes(b"\xff\xd8\xff not an image of the task")
    (folder / "sub").mkdir()
    (folder / "sub" / "0006-0.jpg").write_bytes(b"\xff\xd8\xff")

    contents = read_folder(path)

    assert contents.image_names == ["0000-0.jpg", "0001-0.jpg", "0002-0.jpg"]


def test_pixel_sizes_are_read_once_per_image(folder_copy, monkeypatch):
    from airflow_provider_azerion.plugins import gallery

    _, path = folder_copy
    cache = gallery.DimensionCache()
    first = gallery.read_folder(path, dimensions=cache)
    read = gallery.read_many
    reads: list[tuple[str, int | None]] = []
    monkeypatch.setattr(
        gallery, "read_many", lambda folder, files: reads.extend(files) or read(folder, files)
    )

    second = gallery.read_folder(path, dimensions=cache)

    assert [image.dimensions for image in first.images] == [(64, 64)] * 3
    assert [image.dimensions for image in second.images] == [(64, 64)] * 3
    assert all(end is None for _, end in reads), reads  # sidecars at most, never image heads
