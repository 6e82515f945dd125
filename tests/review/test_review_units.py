"""The review's pieces without a deployment: options, the Markdown body, records, what answers mean."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from airflow_provider_azerion import reviews
from airflow_provider_azerion.exceptions import AzerionConfigurationError
from airflow_provider_azerion.manifest import encode_line
from airflow_provider_azerion.operators.review import ImageReviewOperator, _approved
from airflow_provider_azerion.review_batch import body, count_of, load

HOSTILE = (
    "![pixel](https://evil.example/p.gif) [click](javascript:alert(1)) <img src=x onerror=alert(1)> **bold**"
)


def manifest(folder: Path, prompts: list[str], task_id: str = "generate", map_index: int = -1) -> dict:
    """A generation task's folder with a manifest (as the operator writes it) and its XCom's keys."""
    folder.mkdir(parents=True)
    lines = b""
    for index, prompt in enumerate(prompts):
        lines += encode_line(
            {
                "prompt": prompt,
                "prompt_index": index,
                "image_index": 0,
                "image": f"{index:04d}-0.jpg",
                "sha256": f"{index:064x}",
                "dag_id": "d",
                "run_id": "manual__2026-01-01T00:00:00+00:00",
                "task_id": task_id,
                "map_index": map_index,
            }
        )
    (folder / "manifest.jsonl").write_bytes(lines)
    uri = folder.as_uri()
    return {"folder_uri": uri, "manifest_uri": uri + "/manifest.jsonl", "count": len(prompts)}


def test_options_begin_with_the_file_name_and_are_unique_across_mapped_sources(tmp_path):
    first = manifest(tmp_path / "generate-0", ["a fox", "an owl"], map_index=0)
    second = manifest(tmp_path / "generate-1", ["a whale"], map_index=1)

    items = load([first, second])

    assert [item.option for item in items] == [
        "0000-0.jpg (generate[0]): a fox",
        "0001-0.jpg (generate[0]): an owl",
        "0000-0.jpg (generate[1]): a whale",
    ]


def test_long_prompts_are_shortened_in_options_and_whitespace_collapsed(tmp_path):
    (item,) = load(manifest(tmp_path / "g", ["a  very\nlong prompt " * 20]))

    name, prompt = item.option.split(": ", 1)
    assert name == "0000-0.jpg"
    assert len(prompt) == 80
    assert prompt.endswith("…")
    assert "\n" not in prompt


def test_a_prompt_cannot_add_links_images_or_markup_to_the_body(tmp_path):
    items = load(manifest(tmp_path / "g", [HOSTILE]))

    text = body("Intro", items, "/airflow")

    targets = re.findall(r"\]\(([^)]*)\)", text)
    assert targets
    assert all(t.startswith("/airflow/azerion/dags/d/runs/") for t in targets)
    # Every Markdown or HTML character of the prompt is backslash-escaped: shown, not interpreted.
    assert re.search(r"(?<!\\)[<>]", text) is None
    assert "\\*\\*bold\\*\\*" in text


def test_the_count_is_known_from_the_xcoms_alone(tmp_path):
    chunk = {"manifest_uri": "file:///nowhere/manifest.jsonl", "start": 100, "stop": 150}
    assert count_of({"manifest_uri": "file:///nowhere/manifest.jsonl", "count": 7}) == 7
    assert count_of([chunk, chunk]) == 100


@pytest.mark.parametrize("images", ["s3://bucket/a.jpg", [{"uri": "s3://bucket/a.jpg"}], 3, {"count": 1}])
def test_anything_but_the_operators_output_is_refused_saying_what_to_pass(images):
    with pytest.raises(AzerionConfigurationError, match=r"generate\.output"):
        count_of(images)


def test_more_images_than_max_images_fail_before_anything_is_read():
    from airflow.sdk import DAG

    with DAG("d", schedule=None):
        review = ImageReviewOperator(
            task_id="review", images={"manifest_uri": "file:///nowhere/m.jsonl", "count": 101}
        )
    with pytest.raises(AzerionConfigurationError, match="chunks_of"):
        review._items()


@pytest.mark.parametrize("fixed", ["options", "multiple"])
def test_options_and_multiple_are_the_reviews_own(fixed):
    with pytest.raises(ValueError, match=fixed):
        ImageReviewOperator(task_id="r", images={}, **{fixed: ["x"]})


def test_what_the_chosen_options_approve(tmp_path):
    items = load(manifest(tmp_path / "g", ["a", "b", "c"]))
    a, b, c = (item.option for item in items)

    assert _approved(items, ["Reject all"]) == []
    assert _approved(items, []) == []
    assert _approved(items, ["Approve all"]) == items
    assert _approved(items, [b]) == [items[1]]
    assert _approved(items, ["Reject all", a, c]) == [items[0], items[2]], "the form's default stays selected"
    assert _approved(items, ["Approve all", "Reject all", b]) == [items[1]]


def test_a_record_round_trips_and_the_newest_record_speaks_for_an_image():
    review = {"dag_id": "d", "run_id": "r", "task_id": "review", "map_index": -1, "try_number": 1}
    images = [{"image": "0000-0.jpg", "sha256": "aa"}, {"image": "0001-0.jpg", "sha256": "bb"}]
    asked = reviews.parse(reviews.encode(review, images, "2026-01-01T00:00:00+00:00"))
    decided = reviews.parse(
        reviews.encode(
            review,
            images,
            "2026-01-01T00:00:00+00:00",
            {"approved": ["0001-0.jpg"], "responded_at": "2026-01-01T01:00:00+00:00", "comment": "ok"},
        )
    )
    assert asked.states == {"0000-0.jpg": "awaiting", "0001-0.jpg": "awaiting"}
    assert decided.states == {"0000-0.jpg": "rejected", "0001-0.jpg": "approved"}
    assert json.loads(reviews.encode(review, images, "t"))["status"] == "awaiting"
    assert reviews.latest_states([decided, asked])["0001-0.jpg"] is decided
    assert reviews.parse(b"{not json") is None
    assert reviews.parse(b'{"review": 1}') is None
