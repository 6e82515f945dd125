"""What an image-generation task leaves in storage, how a later try finds it again, and its XCom.

One task instance owns one folder::

    {output_path}/{dag_id}/{run_id}/{task_id}[-{map_index}]/
        0000-0.png   0000-0.json   # prompt 0, image 0 and its sidecar
        0001-0.webp  0001-0.json
        0001-1.webp  0001-1.json   # prompt 1 produced two images
        manifest.jsonl             # one line per image: its sidecar, in prompt then image order

Names are deterministic for a task instance (a retry finds its predecessor's files) and distinct
across runs, map indexes and prompts. The image extension comes from the bytes, not the request.

Each JSON sidecar is written after *all* images of its prompt, so a sidecar's presence means its
image is complete, and the sidecars of a prompt carry the number of images it produced. A prompt
is therefore stored completely when every sidecar up to that count exists, each image has the
size its sidecar records, and the sidecars describe the same request as now (prompt, model and
parameters): a retry can skip it without calling, or paying, the API again.

**The manifest** (``manifest.jsonl``) indexes the folder: one JSON object per line, each exactly
the sidecar of one image, for every image of the task (stored by this try or an earlier one). A
try writes it atomically once its images and sidecars are stored, also when the try fails after
storing some. It lets a retry resume with one listing and one read instead of one read per
prompt: sidecars are read (concurrently) only for prompts the manifest does not cover, as after a
crash. Invariant: every line describes files exactly as they are in storage. A try that is about
to rewrite files of a prompt the manifest lists (a changed request, ``overwrite``) first rewrites
the manifest without them, so a crash midway never leaves a line vouching for replaced files.

**The XCom** (:meth:`OutputFolder.task_result`) stays within :data:`XCOM_LIMIT` bytes at any batch
size: the folder, the manifest, the image count, ``chunks`` of the manifest to map downstream
tasks over, and the per-image entries as long as they all fit. :func:`read_manifest` and
:func:`images_of` read the images back in a downstream task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_azerion import __version__
from airflow_provider_azerion.storage import (
    LOCAL_PROTOCOLS,
    LocalCommitter,
    child_uri,
    is_temp_name,
    list_files,
    read_files,
    remove_files,
    sanitize_segment,
    storage_uri,
    write_atomic,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_azerion.image_formats import ImageFormat

#: Sidecar fields that also go to XCom, in this order.
XCOM_FIELDS = (
    "prompt_index",
    "image_index",
    "prompt",
    "revised_prompt",
    "model",
    "media_type",
    "bytes",
    "sha256",
    "created",
)
#: Name of the index of a task's folder: one sidecar object per line.
MANIFEST_NAME = "manifest.jsonl"
#: Most bytes a task's XCom takes, as JSON, whatever the number of images.
XCOM_LIMIT = 64 * 1024
#: Most bytes an asset event's ``extra`` takes, as JSON: events are read by every scheduler loop.
ASSET_EXTRA_LIMIT = 16 * 1024
#: Images per chunk of the manifest, at least; more when that many chunks would not fit the XCom.
CHUNK_IMAGES = 100
#: Share of the XCom the ``chunks`` list may take.
_CHUNKS_BUDGET = 32 * 1024


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


@dataclass(frozen=True)
class StoredImage:
    """One image in storage with its sidecar.

    :param uri: where the image is (plain URI, no connection id).
    :param metadata_uri: where its JSON sidecar is.
    :param metadata: the sidecar's contents.
    """

    uri: str
    metadata_uri: str
    metadata: dict[str, Any]

    def to_xcom(self) -> dict[str, Any]:
        """The plain, small dict pushed to XCom: locations and facts, never image bytes."""
        return {"uri": self.uri, "metadata_uri": self.metadata_uri} | {
            name: self.metadata.get(name) for name in XCOM_FIELDS
        }


@dataclass(frozen=True)
class ResumeReport:
    """How a try found what earlier tries stored.

    :param from_manifest: prompts reused on the manifest's word (checked against the listing).
    :param from_sidecars: prompts reused after reading their sidecars.
    :param sidecar_reads: sidecars read (only for prompts the manifest does not cover).
    """

    from_manifest: int = 0
    from_sidecars: int = 0
    sidecar_reads: int = 0


def image_name(prompt_index: int, image_index: int, extension: str) -> str:
    """File name of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_index:04d}-{image_index}.{extension}"


def sidecar_name(prompt_index: int, image_index: int) -> str:
    """File name of the JSON sidecar of image ``image_index`` of prompt ``prompt_index``."""
    return f"{prompt_index:04d}-{image_index}.json"


class OutputFolder:
    """The folder of one task instance's images, sidecars and manifest.

    :param root: the operator's ``output_path``, resolved.
    :param identity: the task instance writing into it.
    """

    def __init__(self, root: ObjectStoragePath, identity: TaskIdentity) -> None:
        task_segment = sanitize_segment(identity.task_id)
        if identity.map_index >= 0:
            task_segment += f"-{identity.map_index}"
        self.identity = identity
        self.path = (
            root / sanitize_segment(identity.dag_id) / sanitize_segment(identity.run_id) / task_segment
        )
        self._uri = storage_uri(self.path)
        self._listing: dict[str, int] = {}
        #: Names of the listing by prompt (the part before the first "-").
        self._by_prompt: dict[str, list[str]] = {}
        # What manifest.jsonl in storage lists, as (prompt_index, image_index) pairs in order, and
        # the byte length of each line; None when there is none (or it was not read).
        self._manifest_keys: list[tuple[int, int]] | None = None
        self._manifest_line_sizes: list[int] = []
        self.resume_report = ResumeReport()
        # Local folders commit writes in a background thread (fsync, then rename): see flush().
        self._committer: LocalCommitter | None = None

    @property
    def uri(self) -> str:
        """Plain URI of the folder."""
        return self._uri

    @property
    def manifest_uri(self) -> str:
        """Plain URI of the folder's manifest."""
        return child_uri(self._uri, MANIFEST_NAME)

    def scan(self) -> int:
        """List the folder once (later lookups use this snapshot) and drop leftover temp files.

        Temporary files belong to writes interrupted by a crash; nothing will ever rename them.

        :return: how many leftover temporary files were removed.
        """
        listing = list_files(self.path)
        leftovers = [name for name in listing if is_temp_name(name)]
        remove_files(self.path, leftovers)
        self._listing = {name: size for name, size in listing.items() if not is_temp_name(name)}
        self._by_prompt = {}
        for name in self._listing:  # "0042-0.jpg" -> "0042": a prompt's files in one lookup
            self._by_prompt.setdefault(name.partition("-")[0], []).append(name)
        return len(leftovers)

    # -- resuming --------------------------------------------------------------------------------

    def resume(
        self,
        prompts: Sequence[str],
        *,
        model: str,
        params: Mapping[str, Any],
        overwrite: bool = False,
    ) -> dict[int, list[StoredImage]]:
        """Find the prompts earlier tries stored completely for this request; call after :meth:`scan`.

        The manifest is read once and each of its prompts checked against the listing (images
        present with the recorded sizes, sidecars present, same prompt, model and parameters).
        Sidecars are read, :data:`~airflow_provider_azerion.storage.READ_CONCURRENCY` at a time,
        only for prompts the manifest does not mention but whose first sidecar is listed (stored
        by a try that crashed before writing the manifest). A prompt the manifest mentions is not
        read again: its lines are its sidecars (the manifest's invariant). Lines for prompts that
        are not reused are dropped from the manifest before this try writes anything.

        :param prompts: the current prompts, by index.
        :param model: the current model.
        :param params: everything sent besides the prompt (the operator's ``api_params()``).
        :param overwrite: reuse nothing (and drop the manifest): every prompt is generated again.
        :return: the reusable images of each reusable prompt, in image order.
        :raises OSError: when a sidecar or the manifest exists but cannot be read (the task fails
            rather than paying again for images that may be stored).
        """
        shared = _json_normalised({"model": model, "params": dict(params)})

        def expected(index: int) -> dict[str, Any]:
            return {"prompt": _json_normalised(prompts[index]), **shared}

        results: dict[int, list[StoredImage]] = {}
        lines: list[tuple[tuple[int, int], int]] = []  # the manifest's (key, line size), in order
        if overwrite:
            if MANIFEST_NAME in self._listing:
                lines = [((-1, -1), 0)]  # whatever it says goes
        else:
            groups, lines = self._read_manifest()
            for index, group in groups.items():
                if 0 <= index < len(prompts) and (stored := self._checked(index, group, expected(index))):
                    results[index] = stored
            from_manifest = len(results)
            candidates = [
                index
                for index in range(len(prompts))
                if index not in groups and sidecar_name(index, 0) in self._listing
            ]
            found, reads = self._resume_from_sidecars(candidates, expected)
            results.update(found)
            self.resume_report = ResumeReport(from_manifest, len(found), reads)

        keys = [key for key, _ in lines]
        if all(key[0] in results for key in keys):
            self._manifest_keys = keys or None
            self._manifest_line_sizes = [size for _, size in lines]
        else:
            # Lines for prompts this try will generate go now, before any file of theirs is replaced.
            kept = [
                image for key in keys if key[0] in results for image in results[key[0]] if _key(image) == key
            ]
            if kept:
                self.write_manifest(kept)
            else:
                remove_files(self.path, [MANIFEST_NAME])
                self._manifest_keys, self._manifest_line_sizes = None, []
        return results

    def _read_manifest(self) -> tuple[dict[int, list[dict[str, Any]]], list[tuple[tuple[int, int], int]]]:
        """The manifest's lines grouped by prompt, and each line's key and size in file order."""
        if MANIFEST_NAME not in self._listing:
            return {}, []
        data = read_files(self.path, [MANIFEST_NAME]).get(MANIFEST_NAME)
        if data is None:
            return {}, []
        groups: dict[int, list[dict[str, Any]]] = {}
        lines = []
        for line in data.splitlines(keepends=True):
            try:
                metadata = json.loads(line)
                key = (metadata["prompt_index"], metadata["image_index"])
                if not all(isinstance(part, int) for part in key):
                    raise TypeError
            except (ValueError, TypeError, KeyError):
                lines.append(((-1, -1), len(line)))  # a torn line: the manifest must be rewritten
                continue
            lines.append((key, len(line)))
            groups.setdefault(key[0], []).append(metadata)
        return groups, lines

    def _resume_from_sidecars(
        self, candidates: list[int], expected: Callable[[int], Mapping[str, Any]]
    ) -> tuple[dict[int, list[StoredImage]], int]:
        """Prompts whose sidecars vouch for them, and how many sidecars were read.

        Reads the first sidecar of every candidate at once, then the further sidecars of those
        that produced several images.
        """
        first = self._read_sidecars([sidecar_name(index, 0) for index in candidates])
        further = []
        for index in candidates:
            count = (first.get(sidecar_name(index, 0)) or {}).get("image_count")
            if isinstance(count, int) and count > 1:
                further += [sidecar_name(index, j) for j in range(1, count)]
        rest = self._read_sidecars(further)
        found = {}
        for index in candidates:
            head = first.get(sidecar_name(index, 0))
            count = head.get("image_count") if head else None
            if not isinstance(count, int):
                continue
            group = [head, *(rest.get(sidecar_name(index, j)) for j in range(1, count))]
            if all(group) and (stored := self._checked(index, group, expected(index))):  # type: ignore[arg-type]
                found[index] = stored
        return found, len(first) + len(rest)

    def _read_sidecars(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        parsed: dict[str, dict[str, Any] | None] = {}
        for name, data in read_files(self.path, [n for n in names if n in self._listing]).items():
            try:
                metadata = json.loads(data)
            except ValueError:
                metadata = None  # a torn sidecar: the prompt is not stored
            parsed[name] = metadata if isinstance(metadata, dict) else None
        return parsed

    def _checked(
        self, prompt_index: int, group: Sequence[dict[str, Any]], expected: Mapping[str, Any]
    ) -> list[StoredImage] | None:
        """The stored images of a prompt if ``group`` (its sidecars) proves them complete and current."""
        count = group[0].get("image_count") if group else None
        if not isinstance(count, int) or count < 1 or len(group) != count:
            return None
        by_index = {metadata.get("image_index"): metadata for metadata in group}
        stored = []
        for image_index in range(count):
            metadata = by_index.get(image_index)
            if metadata is None or metadata.get("image_count") != count:
                return None
            if any(metadata.get(name) != value for name, value in expected.items()):
                return None
            name, metadata_name = metadata.get("image"), sidecar_name(prompt_index, image_index)
            if not isinstance(name, str) or self._listing.get(name) != metadata.get("bytes"):
                return None  # image missing or of another size: a sidecar from an older attempt
            if metadata_name not in self._listing:
                return None
            stored.append(self._stored(name, metadata_name, metadata))
        return stored

    # -- writing ---------------------------------------------------------------------------------

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
        sidecars, files = [], []
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
                "image": name,
                "media_type": fmt.media_type,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                **self._identity_fields(),
            }
            encoded = _encode(metadata)  # once: the stored text, and what a JSON round trip gives back
            sidecars.append((name, sidecar_name(prompt_index, image_index), json.loads(encoded), encoded))
        # Only now the sidecars: whoever sees one may trust every image of the prompt.
        for _, metadata_name, _, encoded in sidecars:
            if local is None:
                write_atomic(self.path / metadata_name, encoded)
            else:
                files.append((metadata_name, encoded))
        written = {name for entry in sidecars for name in entry[:2]}
        stale = [n for n in self._by_prompt.get(f"{prompt_index:04d}", ()) if n not in written]
        if local is None:
            remove_files(self.path, stale)  # e.g. a .png from an older try that now returned a .webp
        else:
            local.submit(files, stale, label=prompt_index)
        return [self._stored(name, metadata_name, metadata) for name, metadata_name, metadata, _ in sidecars]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every image and sidecar written so far is durable under its final name.

        On a local disk, :meth:`store_prompt` hands its files to a background committer (fsync,
        then rename), so the next request need not wait for the disk. Call this before relying on
        what was stored (the manifest, the XCom) and before the task ends.

        :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
        :return: ``False`` when the timeout passed first.
        :raises CommitError: when a write failed (``label`` is the prompt's index); its files were
            never published.
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
        keys = [_key(image) for image in images]
        if keys == (self._manifest_keys or []):
            return  # already so in storage (or nothing to list and no manifest)
        if not keys:
            remove_files(self.path, [MANIFEST_NAME])
            self._manifest_keys, self._manifest_line_sizes = None, []
            return
        lines = [_encode_line(image.metadata) for image in images]
        write_atomic(self.path / MANIFEST_NAME, b"".join(lines))
        self._manifest_keys = keys
        self._manifest_line_sizes = [len(line) for line in lines]

    # -- XCom and asset events -------------------------------------------------------------------

    def task_result(self, images: Sequence[StoredImage]) -> dict[str, Any]:
        """The task's XCom: at most :data:`XCOM_LIMIT` bytes as JSON, whatever the number of images.

        Keys: ``folder_uri``, ``manifest_uri``, ``count`` (images), ``chunks`` (ranges of the
        manifest to map downstream tasks over: ``manifest_uri``, ``start``, ``stop`` and, when
        known, ``byte_range``; pass one to :func:`read_manifest`) and, only when every entry fits,
        ``images``: one dict per image (:meth:`StoredImage.to_xcom`), in prompt then image order.

        :param images: every image of the task, in the order of the manifest.
        """
        result: dict[str, Any] = {
            "folder_uri": self.uri,
            "manifest_uri": self.manifest_uri,
            "count": len(images),
            "chunks": self._chunks(images),
        }
        room = XCOM_LIMIT - _json_size(result) - len(', "images": []')
        entries = []
        for image in images:
            entry = image.to_xcom()
            room -= _json_size(entry) + 2  # the separator
            if room < 0:
                break
            entries.append(entry)
        else:
            result["images"] = entries
        return result

    def _chunks(self, images: Sequence[StoredImage]) -> list[dict[str, Any]]:
        aligned = self._manifest_keys == [_key(image) for image in images]
        offsets = [0]
        for size in self._manifest_line_sizes if aligned else []:
            offsets.append(offsets[-1] + size)
        size = CHUNK_IMAGES
        while True:
            chunks = []
            for start in range(0, len(images), size):
                stop = min(start + size, len(images))
                chunk: dict[str, Any] = {"manifest_uri": self.manifest_uri, "start": start, "stop": stop}
                if aligned:
                    chunk["byte_range"] = [offsets[start], offsets[stop]]
                chunks.append(chunk)
            if _json_size(chunks) <= _CHUNKS_BUDGET or len(chunks) <= 1:
                return chunks
            size *= 2

    def asset_extra(self, images: Sequence[StoredImage]) -> dict[str, Any]:
        """The ``extra`` of the task's asset events: at most :data:`ASSET_EXTRA_LIMIT` bytes as JSON.

        ``folder_uri``, ``manifest_uri``, ``count`` and, only when they all fit, ``uris`` (the
        image URIs in manifest order).
        """
        extra: dict[str, Any] = {
            "folder_uri": self.uri,
            "manifest_uri": self.manifest_uri,
            "count": len(images),
        }
        uris = [image.uri for image in images]
        if _json_size(extra) + _json_size(uris) + len(', "uris": ') <= ASSET_EXTRA_LIMIT:
            extra["uris"] = uris
        return extra

    # -- helpers ---------------------------------------------------------------------------------

    def _identity_fields(self) -> dict[str, Any]:
        ident = self.identity
        return {
            "dag_id": ident.dag_id,
            "run_id": ident.run_id,
            "task_id": ident.task_id,
            "map_index": ident.map_index,
            "try_number": ident.try_number,
            "generator": f"airflow-provider-azerion {__version__}",
        }

    def _stored(self, name: str, metadata_name: str, metadata: dict[str, Any]) -> StoredImage:
        return StoredImage(
            uri=child_uri(self._uri, name),
            metadata_uri=child_uri(self._uri, metadata_name),
            metadata=metadata,
        )


def read_manifest(
    manifest_uri: str,
    start: int = 0,
    stop: int | None = None,
    byte_range: Sequence[int] | None = None,
    *,
    conn_id: str | None = None,
) -> list[dict[str, Any]]:
    """Read the images of a task (or one chunk of them) from its manifest, in a downstream task.

    Takes a chunk of the XCom as keyword arguments: ``read_manifest(**chunk, conn_id="aws_default")``.
    With ``byte_range`` only those bytes are fetched, so a task mapped over one chunk of a large
    manifest does not download all of it.

    :param manifest_uri: the XCom's ``manifest_uri`` (or a chunk's).
    :param start: index of the first image wanted (0-based, in manifest order).
    :param stop: index after the last image wanted; ``None`` for up to the end.
    :param byte_range: ``[first byte, end byte)`` of lines ``start`` to ``stop`` in the manifest.
    :param conn_id: Airflow connection of the store (the operator's ``output_conn_id``); URIs in
        XComs never carry one.
    :return: one dict per image: its sidecar's fields plus ``uri`` and ``metadata_uri``.
    :raises FileNotFoundError: when there is no manifest at ``manifest_uri``.
    :raises ValueError: when the manifest no longer has those lines (it was rewritten since).
    """
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath(manifest_uri, conn_id=conn_id)
    try:
        if byte_range is not None:
            first, end = byte_range
            data = path.fs.cat_file(path.path, start=first, end=end) if end > first else b""
        else:
            data = path.fs.cat_file(path.path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no manifest at {manifest_uri}: the task that wrote it may have been cleared since. "
            "Rerun that task, then this one"
        ) from None
    lines = data.splitlines()
    if byte_range is None:
        lines = lines[start:stop]
    elif stop is not None and len(lines) != stop - start:
        raise ValueError(
            f"{manifest_uri} no longer holds images {start} to {stop} at bytes {list(byte_range)}: the "
            "task that wrote it ran again since. Rerun this task so that it reads the new XCom"
        )
    folder_uri = manifest_uri.rsplit("/", 1)[0]
    entries = []
    for line in lines:
        try:
            metadata = json.loads(line)
            name, metadata_name = (
                metadata["image"],
                sidecar_name(metadata["prompt_index"], metadata["image_index"]),
            )
        except (ValueError, TypeError, KeyError):
            raise ValueError(
                f"{manifest_uri} has a line that is not an image's sidecar ({line[:80]!r}); it was "
                "changed by something other than the operator. Rerun the task that wrote it"
            ) from None
        entries.append(
            {
                **metadata,
                "uri": child_uri(folder_uri, name),
                "metadata_uri": child_uri(folder_uri, metadata_name),
            }
        )
    return entries


def images_of(result: Mapping[str, Any], *, conn_id: str | None = None) -> list[dict[str, Any]]:
    """All images of a task, from its XCom ``result``: its ``images`` if present, else its manifest.

    Lets downstream code work the same for a batch of three images and one of ten thousand.

    :param result: the operator's XCom (a dict with ``manifest_uri`` and, for small batches, ``images``).
    :param conn_id: Airflow connection of the store, needed only when the manifest is read.
    """
    if "images" in result:
        return list(result["images"])
    return read_manifest(result["manifest_uri"], conn_id=conn_id)


def _key(image: StoredImage) -> tuple[int, int]:
    return image.metadata["prompt_index"], image.metadata["image_index"]


def _json_normalised(value: Any) -> Any:
    # Compare and store exactly what a JSON round trip gives back (tuples become lists...).
    return json.loads(json.dumps(value))


def _json_size(value: Any) -> int:
    # As Airflow stores an XCom or an asset event's extra: json.dumps with its defaults.
    return len(json.dumps(value))


def _encode(metadata: Mapping[str, Any]) -> bytes:
    return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _encode_line(metadata: Mapping[str, Any]) -> bytes:
    return json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
