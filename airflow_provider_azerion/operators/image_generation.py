"""``ImageGenerationOperator``: prompts in, image files and JSON sidecars out.

``execute`` tells the story of one task: check the arguments and the spend guard, open the
task's folder (proving it writable before anything is paid for), find what earlier tries stored,
generate and store the rest (:class:`~airflow_provider_azerion.batch.PromptBatch`), then publish
the manifest, the XCom and the asset events.

DAG files import this module on every parse, so it imports nothing heavy at module level: the
hook, ``ObjectStoragePath``, threads and codecs are imported inside ``execute``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_azerion.constants import DEFAULT_CONN_ID, DEFAULT_MAX_PROMPTS, DEFAULT_MODEL

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_azerion.batch import PromptBatch
    from airflow_provider_azerion.folder import OutputFolder
    from airflow_provider_azerion.models import GenerationPlan, ImageGenerationRequest
    from airflow_provider_azerion.resume import Resumed


class ImageGenerationOperator(BaseOperator):
    """Generate images with the Azerion Intelligence API and store them with JSON sidecars.

    For each prompt ``i`` and each image ``j`` the API returns for it, the task writes
    ``{output_path}/{dag_id}/{run_id}/{task_id}[-{map_index}]/{i:04d}-{j}.{ext}`` (the extension
    from the image's real format) and a sidecar ``{i:04d}-{j}.json`` with the prompt, parameters,
    usage, checksum, pixel size and task instance. Any store ``ObjectStoragePath`` supports works
    (``file://``, ``s3://``...); no partially written file ever appears under a final name. Before
    the first generation the task proves it can write there, so a store it cannot write costs
    nothing.

    Work is resumable: a retry (or a cleared task) skips, without calling the API, every prompt
    whose images and sidecars a previous try stored completely for the same prompt, model and
    parameters. Up to ``max_active_requests`` prompts are generated at once; when one fails, no
    further prompt starts, the ones in flight are stored, and the task fails with the first
    failure (by prompt index) so that the retry pays only for what is missing.

    Once its images are stored, the task writes ``manifest.jsonl`` to its folder: one line per
    image, that image's sidecar object, for every image of the task. A retry resumes from it with
    one listing and one read.

    The return value (XCom) stays under 64 KiB at any batch size: ``folder_uri``,
    ``manifest_uri``, ``count`` (images), ``chunks`` (ranges of the manifest, for mapping
    downstream tasks over a large batch; read one with
    :func:`~airflow_provider_azerion.outputs.read_manifest`) and, while they all fit, ``images``:
    one dict per image, ordered by prompt then image, with ``uri``, ``metadata_uri``,
    ``prompt_index``, ``image_index``, ``prompt``, ``revised_prompt``, ``model``, ``media_type``,
    ``bytes``, ``sha256``, ``created``. When the task has asset ``outlets``, each asset's event
    carries ``folder_uri``, ``manifest_uri``, ``count`` and, while they fit, ``uris`` in its extra.

    Spend guard: a task asked for more than ``max_prompts`` prompts or ``max_images`` images fails
    before sending anything.

    :param prompt: one prompt or a list of prompts (at most 4000 characters each). Templated;
        may be an upstream task's output (a str or a list), and works with
        ``.partial(...).expand(prompt=[...])``. A Jinja template renders to one str unless the DAG
        sets ``render_template_as_native_obj=True``.
    :param output_path: folder URL or ``ObjectStoragePath`` under which the task's folder is
        created, e.g. ``"file:///data/images/{{ ds }}/"`` or ``"s3://bucket/images/"``. Templated.
    :param model: model id. Templated.
    :param style: style such as ``"vivid"``; not sent when ``None``. Templated.
    :param response_format: ``"b64_json"`` (images inline) or ``"url"`` (downloaded by the hook).
    :param n: images per prompt (1-10); not sent when ``None``.
    :param extra_params: further API parameters sent as they are, e.g. ``{"size": "1024x1024",
        "output_format": "webp", "seed": 7}``. Templated. Must not set ``prompt``, ``model``,
        ``response_format`` or ``style``, which have their own arguments.
    :param conn_id: Azerion connection id. Templated.
    :param output_conn_id: Airflow connection for the output store (e.g. an AWS connection for
        ``s3://``); ``None`` uses the store's default credentials. Templated.
    :param max_active_requests: generations in flight at once inside this task (>= 1).
    :param overwrite: regenerate every prompt even if a previous try already stored it.
    :param max_prompts: most prompts one task may generate (default 1000); more fails the task
        before any request, as an upstream bug returning 100 000 prompts would otherwise be
        100 000 paid generations.
    :param max_images: most images one task may generate: prompts x images per prompt (``n``, or
        seedream's ``sequential_image_generation_options.max_images``). Default ``max_prompts``
        x images per prompt.
    :param log_each_image: one INFO line per image written (its URI, size and generation time).
        ``None`` (default) does so while a try generates at most 50 prompts; above that, each
        image's line is at DEBUG and an INFO progress line marks every 5 % of the prompts, so a
        task log stays readable at 10 000 prompts. Every image is in the manifest either way.
    """

    template_fields: Sequence[str] = (
        "prompt",
        "output_path",
        "model",
        "style",
        "extra_params",
        "conn_id",
        "output_conn_id",
    )
    template_fields_renderers = {"extra_params": "json", "prompt": "py"}
    ui_color = "#e6f0ff"

    def __init__(
        self,
        *,
        prompt: str | Sequence[str],
        output_path: str | ObjectStoragePath,
        model: str = DEFAULT_MODEL,
        style: str | None = None,
        response_format: str = "b64_json",
        n: int | None = None,
        extra_params: dict[str, Any] | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        output_conn_id: str | None = None,
        max_active_requests: int = 4,
        overwrite: bool = False,
        max_prompts: int = DEFAULT_MAX_PROMPTS,
        max_images: int | None = None,
        log_each_image: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.output_path = output_path
        self.model = model
        self.style = style
        self.response_format = response_format
        self.n = n
        self.extra_params = extra_params
        self.conn_id = conn_id
        self.output_conn_id = output_conn_id
        self.max_active_requests = max_active_requests
        self.overwrite = overwrite
        self.max_prompts = max_prompts
        self.max_images = max_images
        self.log_each_image = log_each_image
        self._batch: PromptBatch | None = None
        if isinstance(max_active_requests, int):  # an XComArg is checked once resolved, in execute
            _check_max_active_requests(max_active_requests)

    # -- the story of one task ---------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Generate every prompt not yet stored, store the images and the manifest, return a small XCom."""
        import time

        from airflow_provider_azerion.batch import PromptBatch
        from airflow_provider_azerion.hooks.azerion import AzerionHook
        from airflow_provider_azerion.metrics import TaskMetrics

        started = time.monotonic()
        plan = self.plan()
        metrics = TaskMetrics(self.dag_id, self.task_id, plan.request.model)
        folder = self._open_folder(context)
        resumed = self._find_stored(folder, plan)
        metrics.resumed(len(resumed.images))
        batch = PromptBatch(
            AzerionHook(conn_id=self.conn_id, concurrency=self.max_active_requests, metrics=metrics),
            plan,
            folder,
            dict(resumed.images),
            max_active_requests=self.max_active_requests,
            log=self.log,
            log_each_image=self.log_each_image,
            metrics=metrics,
        )
        self._batch = batch
        try:
            batch.run()
        finally:
            self._batch = None
        self._written = (len(batch.new_images), sum(image.metadata["bytes"] for image in batch.new_images))
        batch.log_summary(time.monotonic() - started)
        return self._publish(context, folder, batch.images)

    def on_kill(self) -> None:
        """Stop at once: no new prompt starts and the HTTP calls in flight are cancelled.

        Airflow calls this when the task is killed or its ``execution_timeout`` passes. Prompts
        already stored stay stored; a retry generates only what is missing.
        """
        batch = self._batch
        if batch is not None:
            batch.cancel()

    def _open_folder(self, context: Context) -> OutputFolder:
        """The task's folder, listed once, without leftovers of interrupted writes."""
        from airflow_provider_azerion.folder import OutputFolder, TaskIdentity
        from airflow_provider_azerion.storage import resolve_output_root

        root = resolve_output_root(self.output_path, self.output_conn_id)
        folder = OutputFolder(root, TaskIdentity.from_context(context))
        if removed := folder.open():
            self.log.info("Removed %d unfinished temporary file(s) left in %s", removed, folder.uri)
        return folder

    def _find_stored(self, folder: OutputFolder, plan: GenerationPlan) -> Resumed:
        """What earlier tries stored for the same prompts and request; stale manifest lines go.

        When anything is left to generate, the folder is proven writable first: a store the task
        cannot write costs nothing.
        """
        resumed = folder.find_stored(
            plan.prompts, model=self.model, params=plan.request.api_params(), overwrite=self.overwrite
        )
        if len(resumed.images) < len(plan.prompts):
            folder.prove_writable()
        folder.forget_unreused(resumed)
        if resumed.images:
            report = resumed.report
            self.log.info(
                "%d of %d prompt(s) already stored in %s by an earlier try; not generating them again "
                "(%d found in the manifest, %d from %d sidecar read(s))",
                len(resumed.images),
                len(plan.prompts),
                folder.uri,
                report.from_manifest,
                report.from_sidecars,
                report.sidecar_reads,
            )
        return resumed

    def _publish(self, context: Context, folder: OutputFolder, produced: list[Any]) -> dict[str, Any]:
        """Write the manifest, annotate the outlets' asset events and return the XCom."""
        folder.write_manifest(produced)
        result = folder.task_result(produced)
        if "images" not in result:
            self.log.info(
                "The %d image entries do not fit in the XCom; it holds %s and %d chunk(s) of it to "
                "map over (read them with airflow_provider_azerion.outputs.read_manifest)",
                len(produced),
                folder.manifest_uri,
                len(result["chunks"]),
            )
        if self.outlets:
            from airflow.sdk import Asset
            from airflow.sdk.definitions.asset import AssetRef

            extra = folder.asset_extra(produced)
            for outlet in self.outlets:
                # An AssetAlias has no event of its own until a concrete asset is added to it.
                if isinstance(outlet, (Asset, AssetRef)):
                    context["outlet_events"][outlet].extra.update(extra)
        return result

    def generation_request(self) -> ImageGenerationRequest:
        """The validated request every prompt of this task is generated with.

        :raises AzerionValidationError: naming the argument at fault.
        """
        from airflow_provider_azerion.models import ImageGenerationRequest

        return ImageGenerationRequest.from_arguments(
            self.model, self.response_format, self.style, self.n, self.extra_params
        )

    def api_params(self) -> dict[str, Any]:
        """Everything sent to the API besides the prompt (recorded in sidecars, compared on resume)."""
        return self.generation_request().api_params()

    def plan(self) -> GenerationPlan:
        """Validate every argument and the spend guard before anything is sent.

        :raises AzerionValidationError: naming the argument (and prompt index) at fault.
        """
        from airflow_provider_azerion.models import GenerationPlan

        _check_max_active_requests(self.max_active_requests)
        return GenerationPlan.of(
            self.prompt, self.generation_request(), max_prompts=self.max_prompts, max_images=self.max_images
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the output root (``output_path``) as this task's one output dataset.

        One dataset per task, stable from run to run, named by OpenLineage's conventions
        (``s3://bucket`` + key prefix, ``file`` + absolute path), with the images and bytes this
        try wrote as output statistics. Called by the OpenLineage provider when it is installed
        (``pip install "airflow-provider-azerion[openlineage]"``); returns ``None`` without it.
        """
        from airflow_provider_azerion.lineage import output_lineage

        images, size = getattr(self, "_written", (None, None))
        return output_lineage(
            self.output_path, self.output_conn_id, images_written=images, bytes_written=size
        )


def _check_max_active_requests(value: Any) -> None:
    from airflow_provider_azerion.exceptions import AzerionValidationError

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AzerionValidationError(f"max_active_requests must be an int >= 1, got {value!r}")
