"""Reviews answered through the REST API, as a bot would: a subset, ``Reject all``, and timeouts.

Each test triggers ``azerion_review_publish`` (the example DAG) or a test DAG on the session's
deployment (scheduler, dag-processor, api-server; triggerer on 3.2), waits for the review to ask,
answers with ``PATCH .../hitlDetails`` and checks what the run did: the review's XCom, which files
reached ``published/``, the review record next to the images, and which tasks were skipped.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from airflow_provider_azerion.layout import review_name, sanitize_segment
from tests.review.conftest import REVIEW_DAG, task_folder
from tests.ui.conftest import parse_page

PROMPTS = ["a red fox in fresh snow", "a lighthouse at dusk", "a bowl of ramen", "a hot-air balloon"]


def published(deployment, run_id: str) -> list[str]:
    folder = deployment.output_base / "published" / REVIEW_DAG / run_id
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def record(deployment, dag_id: str, run_id: str, task_id: str = "review") -> dict:
    folder = task_folder(deployment.output_base, dag_id, run_id, "generate")
    return json.loads((folder / review_name(task_id)).read_text())


def images_tab(deployment, dag_id: str, run_id: str):
    """The generation task's Images tab, as the reviewer's browser would get it."""
    url = f"{deployment.url}/azerion/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/generate/-1/images"
    reply = deployment.http.get(url, headers={"Authorization": f"Bearer {deployment.token()}"}, timeout=60)
    assert reply.status_code == 200, reply.text
    return parse_page(reply.text)


def test_approving_a_subset_publishes_exactly_those(deployment):
    run_id = deployment.trigger(REVIEW_DAG, {"prompts": PROMPTS})
    detail = deployment.wait_for_review(REVIEW_DAG, run_id)
    options = detail["options"]
    assert options[:2] == ["Approve all", "Reject all"]
    assert [o.split(": ", 1) for o in options[2:]] == [[f"{i:04d}-0.jpg", p] for i, p in enumerate(PROMPTS)]
    assert set(detail["params"]) == {"comment"}, "the DAG's params must not become form fields"
    assert detail["defaults"] == ["Reject all"]
    assert detail["multiple"] is True
    # The request names images by the Images tab's routes only: no file URI, key or connection.
    body = detail["body"]
    assert body.count("/airflow/azerion/dags/azerion_review_publish/runs/") == 2 * len(PROMPTS)
    assert "file://" not in body
    assert "azerion_default" not in body
    assert record(deployment, REVIEW_DAG, run_id)["status"] == "awaiting"
    page = images_tab(deployment, REVIEW_DAG, run_id)
    assert page.data_values("review") == ["awaiting"] * 4
    assert page.counts("review-awaiting") == [4]
    action = f"/airflow/dags/{REVIEW_DAG}/runs/{quote(run_id, safe='')}/tasks/review/required_actions"
    assert sum(link.startswith(action) for link in page.links) == 4

    # As the UI's form leaves it: the default "Reject all" still selected beside the two images.
    reply = deployment.answer(
        REVIEW_DAG, run_id, ["Reject all", options[3], options[5]], comment="two are fine"
    )
    assert reply.status_code == 200, reply.text
    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "success"

    decision = deployment.xcom(REVIEW_DAG, run_id, "review")
    approved = [image["prompt"] for image in decision["approved"]]
    assert approved == [PROMPTS[1], PROMPTS[3]]
    assert [image["prompt"] for image in decision["rejected"]] == [PROMPTS[0], PROMPTS[2]]
    assert {"uri", "metadata_uri", "sha256"} <= set(decision["approved"][0])
    assert decision["comment"] == "two are fine"
    assert decision["responded_by"]["name"] == "reviewer"
    assert decision["timed_out"] is False
    assert published(deployment, run_id) == ["0001-0.jpg", "0001-0.json", "0003-0.jpg", "0003-0.json"]
    folder = task_folder(deployment.output_base, REVIEW_DAG, run_id, "generate")
    for name in ("0001-0.jpg", "0003-0.jpg"):
        source = (folder / name).read_bytes()
        copy = deployment.output_base / "published" / REVIEW_DAG / run_id / name
        assert copy.read_bytes() == source

    written = record(deployment, REVIEW_DAG, run_id)
    assert written["status"] == "decided"
    assert written["comment"] == "two are fine"
    assert written["responded_by"]["name"] == "reviewer"
    assert {i["image"]: i["state"] for i in written["images"]} == {
        "0000-0.jpg": "rejected",
        "0001-0.jpg": "approved",
        "0002-0.jpg": "rejected",
        "0003-0.jpg": "approved",
    }
    page = images_tab(deployment, REVIEW_DAG, run_id)
    assert page.data_values("review") == ["rejected", "approved", "rejected", "approved"]
    assert page.counts("review-approved") == [2]
    assert page.counts("review-rejected") == [2]
    assert "two are fine" in page.text
    assert "reviewer" in page.text
    events = deployment.api("GET", "/assets/events", params={"name_pattern": "azerion_published_images"})
    extras = [e["extra"] for e in events.json()["asset_events"] if e["source_run_id"] == run_id]
    assert len(extras) == 1
    assert len(extras[0]["uris"]) == 2


def test_reject_all_skips_publishing_and_the_run_succeeds(deployment):
    run_id = deployment.trigger(REVIEW_DAG, {"prompts": PROMPTS[:2]})
    deployment.wait_for_review(REVIEW_DAG, run_id)
    reply = deployment.answer(REVIEW_DAG, run_id, ["Reject all"], comment="off-brand")
    assert reply.status_code == 200, reply.text
    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "success"
    assert deployment.ti_state(REVIEW_DAG, run_id, "review") == "success"
    assert deployment.ti_state(REVIEW_DAG, run_id, "publish") == "skipped"
    decision = deployment.xcom(REVIEW_DAG, run_id, "review")
    assert decision["approved"] == []
    assert len(decision["rejected"]) == 2
    assert published(deployment, run_id) == []
    assert {i["state"] for i in record(deployment, REVIEW_DAG, run_id)["images"]} == {"rejected"}


def test_approve_all_publishes_everything(deployment):
    run_id = deployment.trigger(REVIEW_DAG, {"prompts": PROMPTS[:3]})
    deployment.wait_for_review(REVIEW_DAG, run_id)
    assert deployment.answer(REVIEW_DAG, run_id, ["Approve all"]).status_code == 200
    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "success"
    assert len(deployment.xcom(REVIEW_DAG, run_id, "review")["approved"]) == 3
    assert len(published(deployment, run_id)) == 6


def test_a_timeout_takes_the_defaults(deployment):
    dag_id = "azerion_review_timeout"
    run_id = deployment.trigger(dag_id, {"prompts": ["a quiet harbour", "a busy market"]})
    assert deployment.wait_for_run(dag_id, run_id) == "success"
    rejected = deployment.xcom(dag_id, run_id, "review")
    assert rejected["timed_out"] is True
    assert rejected["responded_by"] is None
    assert rejected["approved"] == []
    assert len(rejected["rejected"]) == 2
    assert deployment.ti_state(dag_id, run_id, "publish") == "skipped"
    approved = deployment.xcom(dag_id, run_id, "review_approving")
    assert approved["timed_out"] is True
    assert len(approved["approved"]) == 2
    assert deployment.ti_state(dag_id, run_id, "publish_approving") == "success"
    assert record(deployment, dag_id, run_id)["timed_out"] is True
    assert sanitize_segment(run_id)  # the folder of the run exists under the output base


def test_a_large_batch_is_reviewed_by_mapping_over_its_chunks(deployment):
    dag_id = "azerion_review_chunks"
    prompts = [f"poster {i:03d}" for i in range(101)]  # two chunks: 100 images and 1
    run_id = deployment.trigger(dag_id, {"prompts": prompts})
    first = deployment.wait_for_review(dag_id, run_id, map_index=0)
    second = deployment.wait_for_review(dag_id, run_id, map_index=1)
    assert len(first["options"]) == 2 + 100
    assert len(second["options"]) == 2 + 1
    # One review of all 101 fails at once: nobody is asked, and no retry asks again.
    assert deployment.wait_for_ti(dag_id, run_id, "review_whole", {"failed"}) == "failed"
    whole = deployment.api("GET", deployment.ti_path(dag_id, run_id, "review_whole") + "/-1/hitlDetails")
    assert whole.status_code == 404
    assert deployment.api("GET", deployment.ti_path(dag_id, run_id, "review_whole")).json()["try_number"] == 1

    chosen = first["options"][2:5]
    assert deployment.answer(dag_id, run_id, chosen, map_index=0).status_code == 200
    # Rejecting every image of one chunk does not stop the other chunk's images.
    assert deployment.answer(dag_id, run_id, ["Reject all"], map_index=1).status_code == 200
    deployment.wait_for_ti(dag_id, run_id, "publish", {"success"})
    uris = deployment.xcom(dag_id, run_id, "publish")
    assert [uri.rsplit("/", 1)[1] for uri in uris] == ["0000-0.jpg", "0001-0.jpg", "0002-0.jpg"]
    folder = task_folder(deployment.output_base, dag_id, run_id, "generate")
    assert {review_name("review", 0), review_name("review", 1)} <= {p.name for p in folder.iterdir()}


def test_an_approval_does_not_hold_for_an_image_whose_bytes_changed_since(deployment):
    run_id = deployment.trigger(REVIEW_DAG, {"prompts": PROMPTS[:2]})
    detail = deployment.wait_for_review(REVIEW_DAG, run_id)
    # What the reviewer was shown, as the request's record says, is not what is stored any more
    # (as after the generation ran again while the review waited).
    path = task_folder(deployment.output_base, REVIEW_DAG, run_id, "generate") / review_name("review")
    asked = json.loads(path.read_text())
    asked["images"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(asked))

    assert deployment.answer(REVIEW_DAG, run_id, [detail["options"][2]]).status_code == 200
    assert deployment.wait_for_run(REVIEW_DAG, run_id) == "failed"
    assert deployment.ti_state(REVIEW_DAG, run_id, "review") == "failed"
    assert published(deployment, run_id) == []
