"""Storage helpers: safe names, output roots, listings and writes that are never seen half done."""

from __future__ import annotations

import os
import uuid

import pytest
from airflow.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_azerion.exceptions import AzerionValidationError
from airflow_provider_azerion.storage import files as storage_files
from airflow_provider_azerion.storage import (
    is_temp_name,
    list_files,
    remove_files,
    resolve_output_root,
    sanitize_segment,
    storage_uri,
    write_atomic,
)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("manual__2024-05-01T06:30:00+00:00", "manual__2024-05-01T06_30_00_00_00"),
        ("scheduled__2024-05-01T00:00:00.123456+00:00", "scheduled__2024-05-01T00_00_00.123456_00_00"),
        ("group.task_1", "group.task_1"),
        ("a/b\\c d", "a_b_c_d"),
        ("..", "__"),
        (".", "_"),
        ("...", "__."),
        ("a..b", "a__b"),
        (".hidden", "_hidden"),
        ("", "_"),
        ("é✓", "__"),
        ("key=value", "key=value"),
        (42, "42"),
    ],
)
def test_segments_are_sanitised(raw, safe):
    assert sanitize_segment(raw) == safe


def test_sanitised_segments_never_escape_or_hide():
    for raw in ["../..", "/etc/passwd", ".partial", "..\\..", " "]:
        safe = sanitize_segment(raw)
        assert safe
        assert "/" not in safe
        assert ".." not in safe
        assert not safe.startswith(".")


class TestResolveOutputRoot:
    def test_file_url(self, tmp_path):
        root = resolve_output_root(tmp_path.as_uri() + "/")
        assert (root.protocol, root.path) == ("file", str(tmp_path))

    def test_absolute_path_becomes_a_file_url(self, tmp_path):
        root = resolve_output_root(str(tmp_path))
        assert root.protocol == "file"
        assert storage_uri(root) == tmp_path.as_uri()

    def test_object_storage_path_is_accepted_and_conn_id_applied(self, tmp_path):
        root = resolve_output_root(ObjectStoragePath(tmp_path.as_uri()), conn_id="my_fs")
        assert root.conn_id == "my_fs"
        assert root.path == str(tmp_path)

    def test_conn_id_is_kept_out_of_uris(self, tmp_path):
        root = resolve_output_root(tmp_path.as_uri(), conn_id="my_fs")
        assert "my_fs" in str(root)
        assert storage_uri(root / "x.png") == (tmp_path / "x.png").as_uri()

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "non-empty URL"),
            ("   ", "non-empty URL"),
            (None, "non-empty URL"),
            (7, "non-empty URL"),
            ("images/today", "is relative"),
            ("file://images/today", "three slashes"),
            ("nosuchproto://x/y", "unsupported protocol"),
            ("memory://x/y", "no Airflow filesystem is registered"),
        ],
    )
    def test_unusable_paths_are_refused(self, value, message):
        with pytest.raises(AzerionValidationError, match=message):
            resolve_output_root(value)


def test_temp_names_are_recognised():
    assert is_temp_name(".0000-0.png.0123abcd.partial")
    assert not is_temp_name("0000-0.png")
    assert not is_temp_name(".hidden")
    assert not is_temp_name("x.partial")


class TestLocalFiles:
    def test_write_creates_folders_and_leaves_no_temp(self, tmp_path):
        target = ObjectStoragePath((tmp_path / "a" / "b" / "img.png").as_uri())
        write_atomic(target, b"\x89PNG data")
        assert (tmp_path / "a" / "b" / "img.png").read_bytes() == b"\x89PNG data"
        assert os.listdir(tmp_path / "a" / "b") == ["img.png"]

    def test_write_replaces_an_existing_file_by_renaming(self, tmp_path):
        final = tmp_path / "img.png"
        final.write_bytes(b"old")
        before = final.stat().st_ino
        write_atomic(ObjectStoragePath(final.as_uri()), b"new contents")
        assert final.read_bytes() == b"new contents"
        assert final.stat().st_ino != before

    def test_a_failed_write_removes_its_temp_and_keeps_the_old_file(self, tmp_path, monkeypatch):
        final = tmp_path / "img.png"
        final.write_bytes(b"old")

        def broken_replace(src, dst):
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", broken_replace)
        with pytest.raises(OSError, match="disk full"):
            write_atomic(ObjectStoragePath(final.as_uri()), b"new")
        assert os.listdir(tmp_path) == ["img.png"]
        assert final.read_bytes() == b"old"

    def test_listing_gives_file_sizes_only(self, tmp_path):
        (tmp_path / "a.png").write_bytes(b"12345")
        (tmp_path / "a.json").write_text("{}")
        (tmp_path / "sub").mkdir()
        assert list_files(ObjectStoragePath(tmp_path.as_uri())) == {"a.png": 5, "a.json": 2}

    def test_listing_a_missing_folder_is_empty(self, tmp_path):
        assert list_files(ObjectStoragePath((tmp_path / "nope").as_uri())) == {}

    def test_remove_ignores_missing_files(self, tmp_path):
        (tmp_path / "a.png").write_bytes(b"1")
        remove_files(ObjectStoragePath(tmp_path.as_uri()), ["a.png", "gone.png"])
        assert os.listdir(tmp_path) == []


class RecordingMemoryFS(MemoryFileSystem):
    """An in-memory store that records which paths were written to."""

    written: list[str]

    def _open(self, path, mode="rb", **kwargs):
        if "w" in mode:
            self.written.append(self._strip_protocol(path))
        return super()._open(path, mode, **kwargs)

    def pipe_file(self, path, value, **kwargs):
        self.written.append(self._strip_protocol(path))
        return super().pipe_file(path, value, **kwargs)


class NoOverwriteMemoryFS(RecordingMemoryFS):
    """Like SFTP: a rename onto an existing file is refused."""

    def mv(self, path1, path2, **kwargs):
        if self.exists(path2):
            raise FileExistsError(path2)
        return super().mv(path1, path2, **kwargs)


@pytest.fixture
def memory_store(monkeypatch):
    """Register an in-memory store as Airflow's ``memory://`` filesystem for one test."""
    from airflow.sdk.io.store import _STORE_CACHE, ObjectStore

    def register(fs_class):
        fs = fs_class()
        fs.written = []
        monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
        return fs, f"memory://test-{uuid.uuid4().hex}"

    return register


class TestRemoteFiles:
    def test_a_non_atomic_store_gets_a_temp_then_a_rename(self, memory_store):
        fs, base = memory_store(RecordingMemoryFS)
        write_atomic(ObjectStoragePath(f"{base}/img.png"), b"data")
        (temp,) = fs.written
        assert temp.rsplit("/", 1)[1].startswith(".img.png.")
        assert temp.endswith(".partial")
        assert list_files(ObjectStoragePath(base)) == {"img.png": 4}

    def test_a_store_refusing_to_rename_onto_a_file_still_gets_replaced(self, memory_store):
        fs, base = memory_store(NoOverwriteMemoryFS)
        target = ObjectStoragePath(f"{base}/img.png")
        write_atomic(target, b"old")
        write_atomic(target, b"new!")
        assert fs.cat_file(target.path) == b"new!"
        assert list_files(ObjectStoragePath(base)) == {"img.png": 4}

    def test_an_object_store_is_written_directly(self, memory_store, monkeypatch):
        fs, base = memory_store(RecordingMemoryFS)
        monkeypatch.setattr(storage_files, "ATOMIC_PUT_PROTOCOLS", frozenset({"memory"}))
        target = ObjectStoragePath(f"{base}/img.png")
        write_atomic(target, b"data")
        assert set(fs.written) == {target.path}  # no temporary name
