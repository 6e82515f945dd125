"""Each image's review state on the Images pages: approved, rejected, awaiting a person, or neither.

The folder's review records (:mod:`airflow_provider_azerion.reviews`, read by :mod:`.gallery`)
say what each review asked and decided. A record still ``awaiting`` is checked against its review
task instance in the metadata DB: while that task waits for an answer the image shows as
awaiting, with a link to the review's Required Action page; a review task that ended without an
answer (failed, cleared) leaves the image unreviewed. A decision about other bytes than the
image now has (it was generated again since) does not count for it either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from airflow_provider_azerion import reviews
from airflow_provider_azerion.plugins import locate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_azerion.plugins.gallery import FolderContents

#: States of a review task instance that is still going to ask or answer.
_PENDING_STATES = {"scheduled", "queued", "running", "deferred", "awaiting_input", "up_for_retry"}


@dataclass(frozen=True)
class ReviewBadge:
    """What a card says about its image's review.

    :param state: ``approved``, ``rejected`` or ``awaiting``.
    :param by: who answered (``None``: the timeout's defaults, or not answered yet).
    :param at: when (ISO 8601).
    :param comment: the reviewer's comment.
    :param link: the review's Required Action page, while it awaits an answer.
    :param timed_out: whether nobody answered and the defaults decided.
    """

    state: str
    by: str | None = None
    at: str | None = None
    comment: str | None = None
    link: str | None = None
    timed_out: bool = False


def badges(session: Session, ui_base: str, contents: FolderContents | None) -> dict[str, ReviewBadge]:
    """The review badge of each image of ``contents`` that a review covers, by image name.

    :param ui_base: the path of Airflow's UI as the browser sees it (``[api] base_url``'s path).
    """
    if contents is None or not contents.reviews:
        return {}
    sha_now = {image.name: image.sha256 for image in contents.images}
    pending: dict[tuple, bool] = {}
    found = {}
    for name, record in contents.reviews.items():
        reviewed_sha = record.sha256.get(name)
        if name in sha_now and sha_now[name] and reviewed_sha and reviewed_sha != sha_now[name]:
            continue  # the decision was about bytes the image no longer has
        state = record.states.get(name)
        if state == reviews.AWAITING:
            key = _ti_key(record.review)
            if key not in pending:
                pending[key] = _is_pending(session, key)
            if pending[key]:
                found[name] = ReviewBadge(reviews.AWAITING, link=_required_action(ui_base, key))
            continue
        if state in (reviews.APPROVED, reviews.REJECTED):
            responder = record.fields.get("responded_by") or {}
            found[name] = ReviewBadge(
                state,
                by=responder.get("name") if isinstance(responder, dict) else None,
                at=record.fields.get("responded_at"),
                comment=record.fields.get("comment"),
                timed_out=bool(record.fields.get("timed_out")),
            )
    return found


def _ti_key(review: dict) -> tuple[str, str, str, int]:
    map_index = review.get("map_index")
    return (
        str(review.get("dag_id")),
        str(review.get("run_id")),
        str(review.get("task_id")),
        -1 if map_index is None else int(map_index),
    )


def _is_pending(session: Session, key: tuple[str, str, str, int]) -> bool:
    ti = locate.get_task_instance(session, *key)
    if ti is None or ti.state is None:
        return False
    return str(getattr(ti.state, "value", ti.state)) in _PENDING_STATES


def _required_action(ui_base: str, key: tuple[str, str, str, int]) -> str:
    dag_id, run_id, task_id, _ = (quote(str(part), safe="") for part in key)
    return f"{ui_base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/required_actions?" + urlencode(
        {"map_index": key[3]}
    )
