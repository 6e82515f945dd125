"""What the Images tabs count as spent: the pure count, and the figures the pages carry.

The pages put the figures in ``data-images``, ``data-bytes``, ``data-generations`` and
``data-tokens`` of the element marked ``data-spend=<scope>`` (``run``, ``task``, ``ti``), so these
tests read numbers, not wording.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_azerion.plugins.spend import Spend, tally, total
from tests.ui.conftest import DAG_FILE, parse_page, run_url, stored_images, task_folder, ti_url, ui_conf


def image(prompt_index: int, image_index: int, size: int, usage: object) -> tuple[int, dict]:
    return size, {"prompt_index": prompt_index, "image_index": image_index, "bytes": size, "usage": usage}


# -- the count, without a server ------------------------------------------------------------------


def test_tokens_count_once_per_prompt_and_generations_are_distinct_prompts():
    first = {"input_tokens": 5, "output_tokens": 95, "total_tokens": 100}
    second = {"input_tokens": 7, "output_tokens": 30, "total_tokens": 37}
    images = [
        image(0, 0, 1000, first),
        image(0, 1, 1100, first),
        image(1, 1, 1300, second),  # order in the folder does not matter
        image(1, 0, 1200, second),
    ]

    assert tally(images) == Spend(images=4, bytes=4600, generations=2, tokens=137)


def test_images_without_a_sidecar_count_as_images_and_bytes_only():
    images = [image(0, 0, 10, {"total_tokens": 50}), (20, None), (30, {})]

    assert tally(images) == Spend(images=3, bytes=60, generations=1, tokens=50)


@pytest.mark.parametrize(
    "usage", [None, {}, {"output_tokens": 9}, {"total_tokens": "9"}, "junk", {"total_tokens": -3}]
)
def test_a_usage_without_a_total_counts_no_tokens_but_still_a_generation(usage):
    assert tally([image(0, 0, 10, usage)]) == Spend(images=1, bytes=10, generations=1, tokens=0)


def test_totals_add_up_and_skip_unknown_folders():
    assert total([Spend(1, 2, 3, 4), None, Spend(10, 20, 30, 40)]) == Spend(11, 22, 33, 44)
    assert total([]) == Spend()


# -- the pages, after a real run against the emulator ---------------------------------------------


def spend_of(html: str, scope: str) -> list[Spend]:
    """The figures of every element marked ``data-spend=<scope>``, in document order."""
    page = parse_page(html)
    figures: list[Spend] = []
    current: dict[str, int] = {}
    for _, name, value in page.data:
        if name == "data-spend":
            current = {} if value == scope else {"skip": 1}
        elif (
            name in ("data-images", "data-bytes", "data-generations", "data-tokens") and "skip" not in current
        ):
            current[name[5:]] = int(value or "")
            if len(current) == 4:
                figures.append(Spend(**current))
                current = {"skip": 1}
    return figures


def expected_spend(folder: Path) -> Spend:
    """The spend of a folder, computed here from its files: listing sizes, sidecars' usage per prompt."""
    images = stored_images(folder)
    usage_by_prompt: dict[int, int] = {}
    for path in images:
        sidecar_path = path.with_suffix(".json")
        if sidecar_path.exists():
            facts = json.loads(sidecar_path.read_text())
            usage_by_prompt[facts["prompt_index"]] = (facts.get("usage") or {}).get("total_tokens", 0)
    return Spend(
        images=len(images),
        bytes=sum(path.stat().st_size for path in images),
        generations=len(usage_by_prompt),
        tokens=sum(usage_by_prompt.values()),
    )


@pytest.fixture
def usage_per_prompt(monkeypatch):
    """The emulator reports a known usage per prompt: tokens from the prompt's length, none for an owl."""
    from airflow_provider_azerion.emulator import app

    def usage(generation, image_count):
        if "owl" in generation.prompt:
            return {"input_tokens": 3, "output_tokens": 40}  # no total_tokens: counts 0
        return {"input_tokens": 3, "output_tokens": 1000, "total_tokens": 1000 + len(generation.prompt)}

    monkeypatch.setattr(app, "_usage", usage)


def test_the_run_and_task_pages_show_what_the_stored_sidecars_add_up_to(
    api, run_dag, output_dir, emulator, usage_per_prompt, monkeypatch
):
    from airflow_provider_azerion.plugins import views

    prompts = ["a fox in the snow", "an owl at night", "a lighthouse"]
    conf = ui_conf(output_dir, prompts, extra_params={"size": "64x64", "n": 2})
    result = run_dag(DAG_FILE, "azerion_ui_one_task", conf=conf)
    folder = task_folder(output_dir, result.dag.dag_id, result.run_id, "generate")
    assert result.state == "success", result.states()
    # Only part of the images on each page: the figures still count them all.
    monkeypatch.setattr(views, "RUN_PREVIEW", 1)
    monkeypatch.setattr(views, "PAGE_SIZE", 2)

    expected = expected_spend(folder)
    run_page = api.get(run_url(result)).text
    ti_page = api.get(ti_url(result)).text

    assert expected == Spend(images=6, bytes=expected.bytes, generations=3, tokens=2000 + 17 + 12)
    assert len(parse_page(run_page).imgs) == 1
    assert len(parse_page(ti_page).imgs) == 2
    assert spend_of(run_page, "run") == [expected]
    assert spend_of(run_page, "task") == [expected]
    assert spend_of(run_page, "ti") == [expected]
    assert spend_of(ti_page, "ti") == [expected]

    # Prompt 1 as if being written by a later try: its images have no sidecar (nor manifest line)
    # yet. They still count as images and bytes, not as a generation nor tokens.
    (folder / "manifest.jsonl").unlink()
    for path in folder.glob("0001-*.json"):
        path.unlink()
    expected = expected_spend(folder)

    assert expected == Spend(images=6, bytes=expected.bytes, generations=2, tokens=2000 + 17 + 12)
    assert spend_of(api.get(run_url(result)).text, "run") == [expected]
    assert spend_of(api.get(ti_url(result)).text, "ti") == [expected]


def test_a_mapped_task_sums_its_task_instances(api, shared_run):
    html = api.get(run_url(shared_run.result)).text
    per_ti = spend_of(html, "ti")
    per_task = spend_of(html, "task")

    folders = [
        shared_run.folder(),
        shared_run.folder("generate_mapped", 0),
        shared_run.folder("generate_mapped", 1),
    ]
    assert per_ti == [expected_spend(folder) for folder in folders]
    assert per_task == [per_ti[0], per_ti[1] + per_ti[2]]
    assert spend_of(html, "run") == [total(per_ti)]
    assert [figures.images for figures in per_ti] == [3, 1, 1]
