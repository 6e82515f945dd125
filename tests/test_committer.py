"""``LocalCommitter``: local writes made durable off the caller's thread, never half-published."""

from __future__ import annotations

import pytest

from airflow_provider_azerion.storage import CommitError, LocalCommitter, is_temp_name, write_local_temp


def _group(folder, label, names):
    return [
        (write_local_temp(str(folder), name, f"{label}:{name}".encode()), f"{folder}/{name}")
        for name in names
    ]


def _temps(folder):
    return [path.name for path in folder.iterdir() if is_temp_name(path.name)]


def test_submitted_groups_land_under_their_final_names(tmp_path):
    committer = LocalCommitter(str(tmp_path))
    for index in range(50):
        committer.submit(_group(tmp_path, index, [f"{index:04d}-0.jpg", f"{index:04d}-0.json"]), label=index)
    assert committer.flush(timeout=30)
    committer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        name for index in range(50) for name in (f"{index:04d}-0.jpg", f"{index:04d}-0.json")
    )
    assert (tmp_path / "0007-0.json").read_bytes() == b"7:0007-0.json"
    assert _temps(tmp_path) == []


def test_stale_files_of_a_group_are_removed_after_its_rename(tmp_path):
    (tmp_path / "0000-0.png").write_bytes(b"old")
    committer = LocalCommitter(str(tmp_path))
    committer.submit(_group(tmp_path, 0, ["0000-0.webp"]), remove=[f"{tmp_path}/0000-0.png"], label=0)
    committer.flush()
    committer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["0000-0.webp"]


def test_a_failed_group_is_reported_with_its_label_and_nothing_is_half_published(tmp_path):
    (tmp_path / "0001-0.jpg").mkdir()  # a folder where the image must go: the rename fails
    committer = LocalCommitter(str(tmp_path), linger=0)
    committer.submit(_group(tmp_path, 0, ["0000-0.jpg"]), label=0)
    committer.flush()
    committer.submit(_group(tmp_path, 1, ["0001-0.jpg", "0001-0.json"]), label=1)
    with pytest.raises(CommitError) as err:
        committer.flush()
    assert err.value.label == 1
    assert isinstance(err.value.error, IsADirectoryError)
    with pytest.raises(CommitError):  # nothing more is accepted, and its files are dropped
        committer.submit(_group(tmp_path, 2, ["0002-0.jpg"]), label=2)
    committer.close()
    assert (tmp_path / "0000-0.jpg").is_file()
    assert not (tmp_path / "0001-0.json").exists()  # the sidecar never appears without its image
    assert not (tmp_path / "0002-0.jpg").exists()
    assert _temps(tmp_path) == []


def test_flush_with_nothing_submitted_returns_at_once(tmp_path):
    committer = LocalCommitter(str(tmp_path))
    assert committer.flush(timeout=0.1)
    committer.close()
