"""What earlier tries of a task stored completely: found from one listing and few reads, never written.

A prompt is stored completely when every sidecar up to its ``image_count`` exists, each image has
the size its sidecar records, and the sidecars describe the same request as now (prompt, model
and parameters): a retry can skip it without calling, or paying, the API again.

The manifest (:mod:`.manifest`) is read once and each prompt it lists checked against the
listing; its lines are its sidecars (the manifest's invariant), so they are not read again.
Sidecars are read, concurrently, only for prompts the manifest does not mention but whose first
sidecar is listed (stored by a try that crashed before writing the manifest).

This module only reads: what must change in storage because of what it found (manifest lines for
prompts that will be generated again) is the folder's job
(:meth:`~airflow_provider_azerion.folder.OutputFolder.forget_unreused`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_azerion import sidecar
from airflow_provider_azerion.layout import MANIFEST_NAME, child_uri, sidecar_name
from airflow_provider_azerion.manifest import ManifestLine, parse_lines
from airflow_provider_azerion.sidecar import StoredImage

#: Reads the named files of the folder; a missing file is left out of the result.
Reader = Callable[[list[str]], Mapping[str, bytes]]


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


@dataclass(frozen=True)
class Resumed:
    """What a try may reuse, and what the manifest in storage lists now.

    :param images: the reusable images of each reusable prompt, in image order.
    :param report: how they were found.
    :param manifest: the lines of the manifest in storage (empty when there is none); a line
        whose ``key`` is ``None`` could not be parsed.
    :param manifest_present: whether the folder has a manifest at all.
    """

    images: dict[int, list[StoredImage]] = field(default_factory=dict)
    report: ResumeReport = ResumeReport()
    manifest: list[ManifestLine] = field(default_factory=list)
    manifest_present: bool = False

    @property
    def manifest_is_current(self) -> bool:
        """Whether every line of the manifest in storage lists an image that is reused."""
        return all(line.key is not None and line.key[0] in self.images for line in self.manifest)


def find_stored(
    folder_uri: str,
    listing: Mapping[str, int],
    read: Reader,
    prompts: Sequence[str],
    *,
    model: str,
    params: Mapping[str, Any],
    overwrite: bool = False,
) -> Resumed:
    """Find the prompts earlier tries stored completely for this request.

    :param folder_uri: the task folder's plain URI (for the images' URIs).
    :param listing: the folder's files and their sizes, temporary files left out.
    :param read: reads files of the folder (sidecars, the manifest).
    :param prompts: the current prompts, by index.
    :param model: the current model.
    :param params: everything sent besides the prompt.
    :param overwrite: reuse nothing: every prompt is generated again.
    :raises OSError: when a sidecar or the manifest exists but cannot be read (the task fails
        rather than paying again for images that may be stored).
    """
    present = MANIFEST_NAME in listing
    if overwrite:
        return Resumed(manifest=[ManifestLine(None, 0, None)] if present else [], manifest_present=present)
    shared = sidecar.json_normalised({"model": model, "params": dict(params)})

    def expected(index: int) -> dict[str, Any]:
        return {"prompt": sidecar.json_normalised(prompts[index]), **shared}

    lines = parse_lines(read([MANIFEST_NAME]).get(MANIFEST_NAME, b"")) if present else []
    groups: dict[int, list[dict[str, Any]]] = {}
    for line in lines:
        if line.key is not None and line.metadata is not None:
            groups.setdefault(line.key[0], []).append(line.metadata)
    images: dict[int, list[StoredImage]] = {}
    for index, group in groups.items():
        if 0 <= index < len(prompts) and (
            stored := _checked(folder_uri, listing, index, group, expected(index))
        ):
            images[index] = stored
    from_manifest = len(images)
    candidates = [i for i in range(len(prompts)) if i not in groups and sidecar_name(i, 0) in listing]
    found, reads = _from_sidecars(folder_uri, listing, read, candidates, expected)
    images.update(found)
    return Resumed(images, ResumeReport(from_manifest, len(found), reads), lines, present)


def _from_sidecars(
    folder_uri: str,
    listing: Mapping[str, int],
    read: Reader,
    candidates: list[int],
    expected: Callable[[int], Mapping[str, Any]],
) -> tuple[dict[int, list[StoredImage]], int]:
    """Prompts whose sidecars vouch for them, and how many sidecars were read.

    Reads the first sidecar of every candidate at once, then the further sidecars of those that
    produced several images.
    """

    def parsed(names: list[str]) -> dict[str, dict[str, Any] | None]:
        return {name: sidecar.parse(data) for name, data in read([n for n in names if n in listing]).items()}

    first = parsed([sidecar_name(index, 0) for index in candidates])
    further = []
    for index in candidates:
        count = (first.get(sidecar_name(index, 0)) or {}).get("image_count")
        if isinstance(count, int) and count > 1:
            further += [sidecar_name(index, j) for j in range(1, count)]
    rest = parsed(further)
    found = {}
    for index in candidates:
        head = first.get(sidecar_name(index, 0))
        count = head.get("image_count") if head else None
        if not isinstance(count, int):
            continue
        group = [head, *(rest.get(sidecar_name(index, j)) for j in range(1, count))]
        if all(group) and (stored := _checked(folder_uri, listing, index, group, expected(index))):  # type: ignore[arg-type]
            found[index] = stored
    return found, len(first) + len(rest)


def _checked(
    folder_uri: str,
    listing: Mapping[str, int],
    prompt_index: int,
    group: Sequence[dict[str, Any]],
    expected: Mapping[str, Any],
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
        if not isinstance(name, str) or listing.get(name) != metadata.get("bytes"):
            return None  # image missing or of another size: a sidecar from an older attempt
        if metadata_name not in listing:
            return None
        stored.append(
            StoredImage(child_uri(folder_uri, name), child_uri(folder_uri, metadata_name), metadata)
        )
    return stored
