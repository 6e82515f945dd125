"""``LocalCommitter``: local writes made durable off the caller's thread, never half-published."""

from __future__ import annotations

import pytest

from airflow_provider_azerion.storage import CommitError, LocalCommitter, is_temp_name


def _group(label, names):
    return [(name, f"{label}:{name}".encode()) for name in names]


def _temps(folder):
    return [path.name for path in folder.iterdir() if is_temp_name(path.name)]


def test_submitted_groups_land_under_their_final_names(tmp_path):
    committer = LocalCommitter(str(tmp_path))
    for index in range(50):
        committer.submit(_group(index, [f"{index:04d}-0.jpg", f"{index:04d}-0.json"]), label=index)
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
    committer.submit(_group(0, ["0000-0.webp"]), remove=["0000-0.png"], label=0)
    committer.flush()
    committer.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["0000-0.webp"]


def test_a_failed_group_is_reported_with_its_label_and_nothing_is_half_published(tmp_path):
    (tmp_path / "0001-0.jpg").mkdir()  # a folder where the image must go: the rename fails
    committer = LocalCommitter(str(tmp_path), linger=0)
    committer.submit(_group(0, ["0000-0.jpg"]), label=0)
    committer.flush()
    committer.submit(_group(1, ["0001-0.jpg", "0001-0.json"]), label=1)
    with pytest.raises(CommitError) as err:
        committer.flush()
    assert err.value.label == 1
    assert isinstance(err.value.error, IsADirectoryError)
    with pytest.raises(CommitError):  # nothing more is accepted
        committer.submit(_group(2, ["0002-0.jpg"]), label=2)
    committer.close()
    assert (tmp_path / "0000-0.jpg").is_file()
    assert not (tmp_path / "0001-0.json").exists()  # the sidecar never appears without its image
    assert not (tmp_path / "0002-0.jpg").exists()
    assert _temps(tmp_path) == []


def test_a_write_that_fails_is_reported_with_its_label_and_leaves_no_temporary_file(tmp_path):
    committer = LocalCommitter(str(tmp_path), linger=0)
    committer.submit([("0000-0.jpg", b"image"), ("no-such-folder/0000-0.json", b"{}")], label=0)
    with pytest.raises(CommitError) as err:
        committer.flush()
    committer.close()
    assert err.value.label == 0
    assert isinstance(err.value.error, FileNotFoundError)
    assert list(tmp_path.iterdir()) == []  # neither the image nor a temporary file


def test_bytes_waiting_for_the_disk_stay_bounded(tmp_path):
    # A linger of a minute: only the bound can make the first group reach the disk this early.
    committer = LocalCommitter(str(tmp_path), linger=60, max_pending_bytes=100)
    committer.submit([("0000-0.jpg", b"x" * 80)], label=0)
    committer.submit([("0001-0.jpg", b"y" * 80)], label=1)  # 160 > 100: waits for the first group
    assert (tmp_path / "0000-0.jpg").read_bytes() == b"x" * 80
    committer.submit([("0002-0.jpg", b"z" * 500)], label=2)  # larger than the bound: accepted alone
    assert (tmp_path / "0001-0.jpg").is_file()
    assert committer.flush(timeout=30)
    committer.close()
    assert (tmp_path / "0002-0.jpg").read_bytes() == b"z" * 500
    assert _temps(tmp_path) == []


def test_flush_with_nothing_submitted_returns_at_once(tmp_path):
    committer = LocalCommitter(str(tmp_path))
    assert committer.flush(timeout=0.1)
    committer.close()


def test_groups_dropped_with_a_failed_one_are_all_reported(tmp_path):
    (tmp_path / "0001-0.jpg").mkdir()
    committer = LocalCommitter(str(tmp_path), linger=60)  # the flush below commits all in one pass
    for index in range(4):
        committer.submit(_group(index, [f"{index:04d}-0.jpg", f"{index:04d}-0.json"]), label=index)
    with pytest.raises(CommitError) as err:
        committer.flush()
    committer.close()
    assert err.value.label == 1
    assert err.value.lost == [1, 2, 3]  # renamed before the failure: 0 only
    assert (tmp_path / "0000-0.json").is_file()
    assert not any((tmp_path / f"{index:04d}-0.json").exists() for index in (1, 2, 3))
    assert _temps(tmp_path) == []
