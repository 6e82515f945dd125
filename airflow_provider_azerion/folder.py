"""The folder of one task instance: proven writable, listed once, written prompt by prompt, indexed.

Layout and file names are :mod:`.layout`'s; what a sidecar holds is :mod:`.sidecar`'s; what
earlier tries stored is found by :mod:`.resume` (which only reads); the XCom is :mod:`.xcom`'s.
This class is where those meet storage (:mod:`.storage`): every write to the folder happens here.

Each prompt's images are written before their sidecars, so a sidecar's presence means its image
is complete; on a local disk the writes go through a background committer (fsync, then rename)
so the next request need not wait for the disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion import __version__, sidecar
from airflow_provider_azerion import xcom as xcom_
from airflow_provider_azerion.image_formats import HEAD_BYTES, image_dimensions
from airflow_provider_azerion.layout import (
    MANIFEST_NAME,
    child_uri,
    image_name,
    is_temp_name,
    prompt_prefix,
    sidecar_name,
    task_segments,
)
from airflow_provider_azerion.manifest import encode_line
from airflow_provider_azerion.resume import Resumed, find_stored
from airflow_provider_azerion.sidecar import StoredImage
from airflow_provider_azerion.storage import (
    LOCAL_PROTOCOLS,
    LocalCommitter,
    list_files,
    probe_writable,
    read_files,
    remove_files,
    storage_uri,
    write_atomic,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_azerion.image_formats import ImageFormat


@dataclass(frozen=True)
class TaskIdentity:
    """The task instance an output folder belongs to.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index; ``-1`` for a task that is not mapped.
    :param try_number: the current try, recorded in sidecars.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskIdentity:
        """Read the identity of the running task instance from its Airflow context."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", 1) or 1),
        )

    def sidecar_fields(self) -> dict[str, Any]:
        """The fields every sidecar of this task instance records about it."""
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "generator": f"airflow-provider-azerion {__version__}",
        }


class OutputFolder:
    """The folder of one task instance's images, sidecars and manifest.

    :param root: the operator's ``output_path``, resolved.
    :param identity: the task instance writing into it.
    """

    def __init__(self, root: ObjectStoragePath, identity: TaskIdentity) -> None:
        dag, run, task = task_segments(identity.dag_id, identity.run_id, identity.task_id, identity.map_index)
        self.identity = identity
        self.path = root / dag / run / task
        self.uri = storage_uri(self.path)
        self.manifest_uri = child_uri(self.uri, MANIFEST_NAME)
        self._listing: dict[str, int] = {}
        #: Names of the listing by prompt (the part before the first "-"): a prompt's files in one lookup.
        self._by_prompt: dict[str, list[str]] = {}
        # What manifest.jsonl in storage lists, as (prompt_index, image_index) pairs in order, and
        # the byte length of each line; None when there is none (or it was not read).
        self._manifest_keys: list[tuple[int, int]] | None = None
        self._manifest_line_sizes: list[int] = []
        self._committer: LocalCommitter | None = None

    def open(self) -> int:
        """List the folder once (later lookups use this snapshot) and drop leftover temporary files.

        Temporary files belong to writes interrupted by a crash; nothing will ever rename them.

        :return: how many leftover temporary files were removed.
        """
        listing = list_files(self.path)
        leftovers = [name for name in listing if is_temp_name(name)]
        remove_files(self.path, leftovers)
        self._listing = {name: size for name, size in listing.items() if not is_temp_name(name)}
        for name in self._listing:
            self._by_prompt.setdefault(name.partition("-")[0], []).append(name)
        return len(leftovers)

    def find_stored(
        self, prompts: Sequence[str], *, model: str, params: Mapping[str, Any], overwrite: bool = False
    ) -> Resumed:
        """What earlier tries stored for this request; reads only (:func:`.resume.find_stored`)."""
        return find_stored(
            self.uri,
            self._listing,
            lambda names: read_files(self.path, names),
            prompts,
            model=model,
            params=params,
            overwrite=overwrite,
        )

    def prove_writable(self) -> None:
        """Create the folder and prove it writable, before anything is paid for.

        :raises AzerionStorageError: when it cannot be written for a reason no retry heals.
        """
        probe_writable(self.path)

    def forget_unreused(self, resumed: Resumed) -> None:
        """Drop the manifest's lines for prompts that will be generated again, before any is rewritten.

        A crash midway must never leave a line vouching for files that were replaced.
        """
        if resumed.manifest_is_current:
            keys = [line.key for line in resumed.manifest if line.key is not None]
            self._manifest_keys = keys or None
            self._manifest_line_sizes = [line.size for line in resumed.manifest]
            return
        by_key = {image.key: image for images in resumed.images.values() for image in images}
        kept = [by_key[line.key] for line in resumed.manifest if line.key is not None and line.key in by_key]
        if kept:
            self.write_manifest(kept)
        else:
            remove_files(self.path, [MANIFEST_NAME])
            self._manifest_keys, self._manifest_line_sizes = None, []

    def store_prompt(
        self,
        prompt_index: int,
        images: Sequence[tuple[bytes, ImageFormat, str | None]],
        common: Mapping[str, Any],
    ) -> list[StoredImage]:
        """Write all images of one prompt, then their sidecars, then drop stale files of the prompt.

        :param prompt_index: the prompt's position in the operator's prompt list.
        :param images: per image, its bytes, its sniffed format and its revised prompt.
        :param common: sidecar fields shared by the prompt's images (prompt, model, params,
            created, usage, request id...).
        :return: the stored images in image order.
        """
        local = self._local_committer()
        stored: list[StoredImage] = []
        files: list[tuple[str, bytes]] = []
        sidecars: list[tuple[str, bytes]] = []
        written: set[str] = set()
        for image_index, (data, fmt, revised_prompt) in enumerate(images):
            name = image_name(prompt_index, image_index, fmt.extension)
            if local is None:
                write_atomic(self.path / name, data)
            else:
                files.append((name, data))  # written by the committer while the next request runs
            metadata = {
                **common,
                "prompt_index": prompt_index,
                "image_index": image_index,
                "image_count": len(images),
                "revised_prompt": revised_prompt,
                **sidecar.image_fields(data, name, fmt.media_type, image_dimensions(data[:HEAD_BYTES])),
                **self.identity.sidecar_fields(),
            }
            encoded = sidecar.encode(metadata)  # once: the stored text, and what a JSON round trip gives
            metadata_name = sidecar_name(prompt_index, image_index)
            sidecars.append((metadata_name, encoded))
            written.update((name, metadata_name))
            uris = child_uri(self.uri, name), child_uri(self.uri, metadata_name)
            stored.append(StoredImage(*uris, sidecar.parse(encoded) or {}))
        # Only now the sidecars: whoever sees one may trust every image of the prompt.
        for metadata_name, encoded in sidecars:
            if local is None:
                write_atomic(self.path / metadata_name, encoded)
            else:
                files.append((metadata_name, encoded))
        stale = [n for n in self._by_prompt.get(prompt_prefix(prompt_index), ()) if n not in written]
        if local is None:
            remove_files(self.path, stale)  # e.g. a .png from an older try that now returned a .webp
        else:
            local.submit(files, stale, label=prompt_index)
        return stored

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every image and sidecar written so far is durable under its final name.

        :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
        :return: ``False`` when the timeout passed first.
        :raises CommitError: when a write failed (``label`` is the prompt's index, ``lost`` every
            prompt dropped with it); its files were never published.
        """
        return True if self._committer is None else self._committer.flush(timeout)

    def close(self) -> None:
        """Release the background committer (after :meth:`flush`)."""
        if self._committer is not None:
            self._committer.close()

    def _local_committer(self) -> LocalCommitter | None:
        if self._committer is None and self.path.protocol in LOCAL_PROTOCOLS:
            import os

            os.makedirs(self.path.path, exist_ok=True)  # once per task, not once per file
            self._committer = LocalCommitter(self.path.path)
        return self._committer

    def write_manifest(self, images: Sequence[StoredImage]) -> None:
        """Write ``manifest.jsonl``: one line per image, its sidecar object, in the order given.

        Written atomically, and not at all when the manifest in storage already lists exactly
        these images (a retry that found everything stored writes nothing).

        :param images: every image of the task, in prompt then image order.
        """
        keys = [image.key for image in images]
        if keys == (self._manifest_keys or []):
            return  # already so in storage (or nothing to list and no manifest)
        if not keys:
            remove_files(self.path, [MANIFEST_NAME])
            self._manifest_keys, self._manifest_line_sizes = None, []
            return
        lines = [encode_line(image.metadata) for image in images]
        write_atomic(self.path / MANIFEST_NAME, b"".join(lines))
        self._manifest_keys = keys
        self._manifest_line_sizes = [len(line) for line in lines]

    def task_result(self, images: Sequence[StoredImage]) -> dict[str, Any]:
        """The task's XCom (:func:`~airflow_provider_azerion.xcom.task_result`)."""
        aligned = self._manifest_keys == [image.key for image in images]
        sizes = self._manifest_line_sizes if aligned else None
        return xcom_.task_result(self.uri, self.manifest_uri, images, sizes)

    def asset_extra(self, images: Sequence[StoredImage]) -> dict[str, Any]:
        """The ``extra`` of the task's asset events (:func:`~airflow_provider_azerion.xcom.asset_extra`)."""
        return xcom_.asset_extra(self.uri, self.manifest_uri, images)
