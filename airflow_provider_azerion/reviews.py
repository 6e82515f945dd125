"""The review record: what a review task asked about a folder's images, and what a person decided.

:class:`~airflow_provider_azerion.operators.review.ImageReviewOperator` writes one record into
each folder whose images it reviews (name from :func:`~airflow_provider_azerion.layout.review_name`),
twice: when it asks (every image ``awaiting``) and when the answer comes (each image ``approved``
or ``rejected``, who answered, when, the comment, whether the timeout decided). The record lives
next to the images, so the decision outlives the metadata database's clean-up, and the Images tab
reads it to show each image's state.

Fields: ``review`` (``dag_id``, ``run_id``, ``task_id``, ``map_index``, ``try_number`` of the
review task), ``status`` (``awaiting`` or ``decided``), ``requested_at``, ``responded_at``,
``responded_by`` (``{"id", "name"}`` or ``None`` when the timeout's defaults applied),
``timed_out``, ``chosen_options``, ``comment``, and ``images``: ``{"image", "sha256",
"state"}`` per image of the folder the review covered.

Light on purpose (standard library only): the Images tab reads records too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AWAITING = "awaiting"
APPROVED = "approved"
REJECTED = "rejected"
DECIDED = "decided"
#: Records larger than this are not read (a review covers at most a few hundred images).
MAX_RECORD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ReviewRecord:
    """One review task's record about one folder.

    :param review: the review task instance: ``dag_id``, ``run_id``, ``task_id``, ``map_index``.
    :param status: ``awaiting`` or ``decided``.
    :param states: each image's file name and its state (``awaiting``, ``approved``, ``rejected``).
    :param sha256: each image's checksum when it was put to the reviewer.
    :param fields: every field of the record as written.
    """

    review: dict[str, Any]
    status: str
    states: dict[str, str]
    sha256: dict[str, str]
    fields: dict[str, Any]

    @property
    def when(self) -> str:
        """When the record was last written: the answer's time, else the request's (ISO 8601, UTC)."""
        return str(self.fields.get("responded_at") or self.fields.get("requested_at") or "")


def encode(
    review: Mapping[str, Any],
    images: Sequence[Mapping[str, Any]],
    requested_at: str,
    decision: Mapping[str, Any] | None = None,
) -> bytes:
    """A record's file contents: indented, sorted JSON in UTF-8.

    :param review: the review task instance (``dag_id``, ``run_id``, ``task_id``, ``map_index``,
        ``try_number``).
    :param images: the folder's images under review, each with ``image`` and ``sha256``.
    :param requested_at: when the review was asked (ISO 8601, UTC).
    :param decision: ``None`` while awaiting; else ``approved`` (image names), ``responded_at``,
        ``responded_by``, ``timed_out``, ``chosen_options`` and ``comment``.
    """
    approved = set(decision["approved"]) if decision is not None else set()
    record: dict[str, Any] = {
        "review": dict(review),
        "status": AWAITING if decision is None else DECIDED,
        "requested_at": requested_at,
        "responded_at": None,
        "responded_by": None,
        "timed_out": False,
        "chosen_options": [],
        "comment": None,
        "images": [
            {
                "image": image["image"],
                "sha256": image.get("sha256"),
                "state": AWAITING
                if decision is None
                else (APPROVED if image["image"] in approved else REJECTED),
            }
            for image in images
        ],
    }
    if decision is not None:
        record.update({key: value for key, value in decision.items() if key != "approved"})
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def parse(data: bytes | str) -> ReviewRecord | None:
    """A record, or ``None`` when ``data`` is not one (torn, or written by something else)."""
    try:
        fields = json.loads(data)
        review = fields["review"]
        status = fields["status"]
        images = fields["images"]
        states = {str(image["image"]): str(image["state"]) for image in images}
        sha256 = {str(image["image"]): str(image.get("sha256")) for image in images}
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(review, dict) or status not in (AWAITING, DECIDED):
        return None
    return ReviewRecord(review=review, status=status, states=states, sha256=sha256, fields=fields)


def latest_states(records: Iterable[ReviewRecord]) -> dict[str, ReviewRecord]:
    """For each image name, the record that last said something about it.

    A review asked again (its task cleared) is newer than its earlier decision, so the image shows
    as awaiting until the new answer comes.
    """
    latest: dict[str, ReviewRecord] = {}
    for record in sorted(records, key=lambda r: r.when):
        for name in record.states:
            latest[name] = record
    return latest
