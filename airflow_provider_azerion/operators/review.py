"""``ImageReviewOperator``: a person approves or rejects generated images in Airflow's UI.

Built on the standard provider's Human-in-the-loop operator: the request appears under Required
Actions (and in the HITL REST API for bots); on Airflow 3.3 the task waits in ``awaiting_input``
holding no worker slot, on 3.2 it defers to the triggerer.

The base class checks answers against options fixed when the DAG is parsed, but this review's
options (one per image) exist only once the images do. So the DAG file declares the two fixed
options, and ``execute`` and ``execute_complete`` (which runs on a freshly parsed operator when the
answer comes) both rebuild the per-image options from the rendered ``images`` before the base class
validates anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import SkipMixin
from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_azerion.review_batch import ReviewItem

log = logging.getLogger(__name__)

#: Most images one review may show; larger batches are reviewed by mapping over chunks.
DEFAULT_MAX_IMAGES = 100


class ImageReviewOperator(HITLOperator, SkipMixin):
    """Ask a person which generated images to approve; return the approved and the rejected ones.

    The request's body shows every image's thumbnail (through the Images tab's routes, under the
    reviewer's own session) with its prompt. The options: one per image, ``"<file name>: <prompt>"``,
    plus ``Approve all`` and ``Reject all``; several may be chosen. The chosen images are approved
    and all others rejected, even if ``Reject all`` (the form's preselected default) stays chosen;
    ``Approve all`` approves every image; ``Reject all`` alone rejects every one. A comment field
    is part of the form.

    Returns ``{"approved": [...], "rejected": [...], "responded_by": {"id", "name"} | None,
    "responded_at": ..., "comment": ..., "timed_out": bool, "chosen_options": [...]}``; each image
    as :func:`~airflow_provider_azerion.outputs.images_of` gives it (``uri``, ``metadata_uri``,
    ``prompt``, ``sha256``...). When nothing is approved, the tasks directly downstream are skipped
    (all downstream with ``ignore_downstream_trigger_rules``) and the review itself succeeds; a
    review mapped over chunks skips nothing (one chunk rejected must not stop the others from
    being published: the task downstream gets every chunk's decision). When
    ``response_timeout`` passes without an answer, ``defaults`` apply: ``Reject all`` unless set
    otherwise, so nothing is published unseen.

    The request and then the decision (who, when, which images, comment) are also written into
    each reviewed folder as ``review-<task_id>[-<map_index>].json``: they outlive the metadata
    database's clean-up, and the Images tab shows each image's state from them.

    :param images: what ``ImageGenerationOperator`` returned (``generate.output``), one of its
        ``chunks``, or a list of those (a mapped generation). Templated.
    :param output_conn_id: Airflow connection of the images' store, as the generation task's.
        Templated.
    :param max_images: most images in one review (default 100). A larger batch fails at once,
        before anyone is asked: map the review over the generation's chunks instead,
        ``ImageReviewOperator.partial(...).expand(images=chunks_of(generate.output))`` with a
        ``@task`` ``chunks_of`` returning ``result["chunks"]`` (README, "Review before you publish").
    :param subject: the request's headline. Templated.
    :param body: Markdown shown above the images. Templated.
    :param defaults: options taken when ``response_timeout`` passes (``Reject all`` or ``Approve all``).
    :param ignore_downstream_trigger_rules: skip every downstream task, not only the direct ones,
        when nothing is approved.

    ``assigned_users``, ``notifiers``, ``response_timeout``, ``params`` and the other arguments of
    ``HITLOperator`` pass through; ``options`` and ``multiple`` are the review's own.
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "images", "output_conn_id")
    template_fields_renderers = {"body": "markdown"}
    inherits_from_skipmixin = True
    ui_color = "#fff4e0"

    APPROVE_ALL = "Approve all"
    REJECT_ALL = "Reject all"
    COMMENT = "comment"

    def __init__(
        self,
        *,
        images: Any,
        output_conn_id: str | None = None,
        max_images: int = DEFAULT_MAX_IMAGES,
        subject: str = "Review the generated images",
        body: str | None = None,
        defaults: str | list[str] | None = REJECT_ALL,
        params: Mapping[str, Any] | None = None,
        ignore_downstream_trigger_rules: bool = False,
        **kwargs: Any,
    ) -> None:
        for fixed in ("options", "multiple"):
            if fixed in kwargs:
                raise ValueError(f"ImageReviewOperator makes its own {fixed!r}; do not pass it")
        if max_images < 1:
            raise ValueError(f"max_images must be at least 1, got {max_images}")
        comment = Param(
            None,
            type=["null", "string"],
            title="Comment",
            description="Why, for the record (written next to the images).",
        )
        super().__init__(
            subject=subject,
            body=body,
            options=[self.APPROVE_ALL, self.REJECT_ALL],
            defaults=defaults,
            multiple=True,
            params={self.COMMENT: comment, **(params or {})},
            **kwargs,
        )
        self.images = images
        self.output_conn_id = output_conn_id
        self.max_images = max_images
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: Context) -> Any:
        """Put the images to a person, record the request next to them, and wait for the answer."""
        from airflow_provider_azerion.plugins.images import api_base_path
        from airflow_provider_azerion.review_batch import body

        items = self._items()
        self.body = body(self.body, items, api_base_path())
        self._record(context, items, decision=None)
        log.info("Asking for a review of %d image(s): %s", len(items), self.subject)
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Turn the answer into approved and rejected images, record it, and skip on nothing approved."""
        items = self._items()
        answer = super().execute_complete(context=context, event=event)
        chosen = list(answer["chosen_options"])
        approved = _approved(items, chosen)
        params_input = answer.get("params_input") or {}
        responded_at = answer["responded_at"]
        decision = {
            "responded_at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else responded_at,
            "responded_by": answer.get("responded_by_user"),
            "timed_out": bool(event.get("timedout")),
            "chosen_options": chosen,
            "comment": params_input.get(self.COMMENT),
        }
        self._record(context, items, decision, approved)
        result = {
            **decision,
            "approved": [item.image.to_xcom() for item in approved],
            "rejected": [item.image.to_xcom() for item in items if item not in approved],
        }
        self.hitl_summary_extra["approved"] = len(approved)
        log.info(
            "Review answered%s: %d approved, %d rejected",
            " by the timeout's defaults" if decision["timed_out"] else "",
            len(approved),
            len(items) - len(approved),
        )
        if not approved and _map_index(context) < 0:
            # Skipping ends the task by an exception: the decision must be in XCom before it.
            if self.do_xcom_push:
                context["ti"].xcom_push(key="return_value", value=result)
            self._skip_downstream(context)
        return result

    def _items(self) -> list[ReviewItem]:
        """The images under review (the limit checked first); also sets the request's options."""
        from airflow_provider_azerion.exceptions import AzerionConfigurationError
        from airflow_provider_azerion.review_batch import count_of, load

        count = count_of(self.images)
        if count > self.max_images:
            raise AzerionConfigurationError(
                f"{count} images are too many for one review (max_images={self.max_images}). Map the "
                "review over the generation's chunks, ImageReviewOperator.partial(...).expand("
                'images=chunks_of(generate.output)) with a task returning result["chunks"] (see the '
                'README\'s "Review before you publish"), or raise max_images'
            )
        if count == 0:
            raise AzerionConfigurationError("there are no images to review; the generation stored none")
        items = load(self.images, conn_id=self.output_conn_id)
        # The DAG's params reach every task's params; they must not become fields of the form.
        dag_params = set(self.dag.params) if self.has_dag() else set()
        fields = [name for name in self.params if name == self.COMMENT or name not in dag_params]
        self.params = ParamsDict({name: self.params.get_param(name) for name in fields})
        self.options = [self.APPROVE_ALL, self.REJECT_ALL, *(item.option for item in items)]
        return items

    def _record(
        self,
        context: Context,
        items: list[ReviewItem],
        decision: dict[str, Any] | None = None,
        approved: Sequence[ReviewItem] = (),
    ) -> None:
        """Write the review's record into every folder it covers (replacing this task's earlier one).

        With a decision, first check that every approved image still has the bytes the reviewer
        saw: an image generated again since (its task cleared) must not go out unseen.
        """
        from airflow.sdk.timezone import utcnow

        from airflow_provider_azerion import reviews
        from airflow_provider_azerion.storage import write_atomic

        ti = context["ti"]
        review = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": _map_index(context),
            "try_number": ti.try_number,
        }
        now = utcnow().isoformat()
        records = self._record_paths(context, items)
        earlier = {path: _read_record(path) for path in records} if decision is not None else {}
        for path, folder_items in records.items():
            _check_unchanged([item for item in folder_items if item in approved], earlier.get(path))
        for path, folder_items in records.items():
            asked = earlier.get(path)
            requested_at = (asked.fields.get("requested_at") if asked else None) or now
            folder_decision = None
            if decision is not None:
                folder_decision = {**decision, "approved": [i.name for i in folder_items if i in approved]}
            images = [item.image.metadata for item in folder_items]
            write_atomic(path, reviews.encode(review, images, requested_at, folder_decision))

    def _record_paths(self, context: Context, items: list[ReviewItem]) -> dict[Any, list[ReviewItem]]:
        """Where this review task's record goes in each folder, with that folder's images."""
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_azerion.layout import review_name

        name = review_name(context["ti"].task_id, _map_index(context))
        folders: dict[str, list[ReviewItem]] = {}
        for item in items:
            folders.setdefault(item.folder_uri, []).append(item)
        return {
            ObjectStoragePath(folder_uri, conn_id=self.output_conn_id) / name: folder_items
            for folder_uri, folder_items in folders.items()
        }

    def _skip_downstream(self, context: Context) -> None:
        task = context["task"]
        if not self.downstream_task_ids:
            return
        tasks = list(
            task.get_flat_relatives(upstream=False)
            if self.ignore_downstream_trigger_rules
            else task.get_direct_relatives(upstream=False)
        )
        log.info("Nothing approved: skipping the downstream tasks")
        self.skip(ti=context["ti"], tasks=[t for t in tasks if not t.is_teardown])


def _map_index(context: Context) -> int:
    map_index = getattr(context["ti"], "map_index", -1)
    return -1 if map_index is None else int(map_index)


def _read_record(path: Any) -> Any:
    """This review's earlier record at ``path`` (written when it asked), or ``None``."""
    from airflow_provider_azerion import reviews

    try:
        return reviews.parse(path.read_bytes())
    except (OSError, ValueError):
        return None


def _check_unchanged(approved: list[ReviewItem], record: Any) -> None:
    """Fail when an approved image's bytes are not those the reviewer was shown (per its folder's record)."""
    from airflow_provider_azerion.exceptions import AzerionConfigurationError

    shown = record.sha256 if record is not None else {}
    changed = [
        i.name
        for i in approved
        if shown.get(i.name, i.image.metadata.get("sha256")) != i.image.metadata.get("sha256")
    ]
    if changed:
        raise AzerionConfigurationError(
            f"{', '.join(changed)} changed since the review was asked (generated again: the sha256 is "
            "not the one the reviewer was shown), so the approval does not hold for it. Clear the "
            "review task to ask again"
        )


def _approved(items: list[ReviewItem], chosen: list[str]) -> list[ReviewItem]:
    """The images the chosen options approve.

    Chosen images are approved even when ``Reject all`` is still chosen: the form starts with the
    ``defaults`` (``Reject all``) selected, and a reviewer who picks images means them.
    ``Approve all`` approves every image unless ``Reject all`` is chosen too (then, in doubt, only
    the images chosen one by one).
    """
    picked = set(chosen)
    if ImageReviewOperator.APPROVE_ALL in picked and ImageReviewOperator.REJECT_ALL not in picked:
        return list(items)
    return [item for item in items if item.option in picked]
