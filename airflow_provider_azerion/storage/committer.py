"""Durable local writes off the task's thread: :class:`LocalCommitter` and its :class:`CommitError`.

Group commit: many small files cost a few disk flushes a second, not one each, with the same
guarantee as an atomic write (a final name only ever holds a complete file that reached the disk).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from airflow_provider_azerion.layout import temp_name
from airflow_provider_azerion.storage.files import _fsync_path, _write_new


class CommitError(OSError):
    """A group of files submitted to :class:`LocalCommitter` could not be committed.

    :param label: the label of the group that failed (the operator's prompt index).
    :param error: the underlying error; also ``__cause__``.
    :param lost: the labels of every group whose files were dropped with it (the failed group
        first, then the groups committed in the same pass after it): none of them is published.
    """

    def __init__(self, message: str, label: Any, error: BaseException, lost: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.label = label
        self.error = error
        self.lost = list(lost) or [label]
        self.__cause__ = error


class LocalCommitter:
    """Writes local files durably off the caller's thread: write, fsync, rename, in submission order.

    :func:`write_atomic` on a local disk costs a file creation and an ``fsync`` per file in the
    caller's thread, which dominates a fast generation loop: on ext4 a file creation itself can
    wait half a millisecond for a journal commit in progress. Here the caller only hands over each
    group of files (:meth:`submit`: names and bytes) and goes on, e.g. to send the next request;
    a background thread writes every pending file to a hidden temporary name, ``fsync``-s them,
    renames them onto their final names in the order submitted (a prompt's images before its
    sidecars), removes the group's stale files, and ``fsync``-s the folder. The guarantee is the
    one :func:`write_atomic` gives: a final name only ever holds a complete file that reached the
    disk. Groups pending together share one pass, so one journal commit covers many files (group
    commit).

    Memory is bounded: the bytes waiting to be written are at most ``max_pending_bytes``, or one
    group when a single group is larger; :meth:`submit` waits (and the commit starts at once)
    beyond that.

    A process that dies before a group is committed leaves at most hidden temporary files, which
    the next try removes (:meth:`.folder.OutputFolder.open`) before generating those prompts again.

    :param folder: the local folder the files go to.
    :param max_pending: groups queued at most; :meth:`submit` waits beyond that.
    :param max_pending_bytes: bytes queued at most (a larger single group is still accepted alone).
    :param linger: seconds a commit waits for more groups to join it (unless flushed), so that
        a fast stream of small files costs a few disk flushes a second rather than one per file.
    """

    def __init__(
        self,
        folder: str,
        max_pending: int = 256,
        linger: float = 0.05,
        max_pending_bytes: int = 8 * 2**20,
    ) -> None:
        import collections
        import threading

        self.folder = folder
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.linger = linger
        self._flushing = 0
        self._cond = threading.Condition()
        self._pending: collections.deque[_Group] = collections.deque()
        #: Bytes submitted and not yet committed (queued or in the commit under way).
        self._pending_bytes = 0
        self._working = False
        self._closed = False
        self._error: BaseException | None = None
        self._error_label: Any = None
        self._error_lost: list[Any] = []
        self._thread: threading.Thread | None = None

    def submit(
        self,
        files: Sequence[tuple[str, bytes]],
        remove: Sequence[str] = (),
        label: Any = None,
    ) -> None:
        """Queue one group of files, written and renamed onto their final names in this order.

        :param files: ``(name, data)`` pairs; ``name`` is relative to the folder.
        :param remove: names to delete once the group is renamed (stale files it replaces).
        :param label: names the group in a :class:`CommitError` (the operator's prompt index).
        :raises CommitError: the first error of an earlier commit (nothing more is accepted then).
        """
        import threading

        size = sum(len(data) for _, data in files)
        with self._cond:
            self._flushing += 1  # a waiting caller must not wait for a commit's linger as well
            try:
                while self._error is None and (
                    len(self._pending) >= self.max_pending
                    or (self._pending_bytes and self._pending_bytes + size > self.max_pending_bytes)
                ):
                    self._cond.notify_all()
                    self._cond.wait()
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._failure()
            self._pending.append(_Group(list(files), list(remove), label, size))
            self._pending_bytes += size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="azerion-commit", daemon=True)
                self._thread.start()
            # Wake the committer only when it waits for a first group or should stop lingering:
            # a wake-up per group would hand it the GIL for nothing while the task sends requests.
            if len(self._pending) == 1 or len(self._pending) >= self.max_pending // 2:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted group is committed.

        :param timeout: seconds to wait at most; ``None`` waits as long as it takes.
        :return: ``True`` when all were committed, ``False`` when the timeout passed first.
        :raises CommitError: when a commit failed (its files were removed, never published).
        """
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while (self._pending or self._working) and self._error is None:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._failure()
        return True

    def _failure(self) -> CommitError:
        error = self._error
        assert error is not None
        return CommitError(
            f"writing into {self.folder} failed: {error}", self._error_label, error, self._error_lost
        )

    def close(self) -> None:
        """Stop the background thread once it is idle (pending groups are committed first)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        import time

        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                until = time.monotonic() + self.linger
                while (
                    len(self._pending) < self.max_pending // 2
                    and not (self._flushing or self._closed)
                    and (left := until - time.monotonic()) > 0
                ):
                    self._cond.wait(left)  # let more groups join this commit
                batch = list(self._pending)
                self._pending.clear()
                self._working = True
                self._cond.notify_all()
            temps: set[str] = set()
            try:
                self._commit(batch, temps)
            except _GroupFailed as failed:
                for temp in temps:  # renamed ones are gone already
                    with suppress(OSError):
                        os.remove(temp)
                with self._cond:
                    if self._error is None:
                        self._error, self._error_label = failed.error, failed.label
                        # The failed group and every group of this pass not renamed before it.
                        lost = [group.label for group in batch[failed.first_lost :]]
                        self._error_lost = [failed.label, *(label for label in lost if label != failed.label)]
            finally:
                with self._cond:
                    self._working = False
                    self._pending_bytes -= sum(group.size for group in batch)
                    self._cond.notify_all()

    def _commit(self, batch: list[_Group], temps: set[str]) -> None:
        moves: list[list[tuple[str, str]]] = []
        for group in batch:
            group_moves = []
            try:
                for name, data in group.files:
                    temp = f"{self.folder}/{temp_name(name)}"
                    temps.add(temp)
                    _write_new(temp, data)
                    group_moves.append((temp, f"{self.folder}/{name}"))
            except BaseException as err:
                raise _GroupFailed(group.label, err, first_lost=0) from err
            group.files = []  # the bytes are on their way to the disk: free them now
            moves.append(group_moves)
        for group, group_moves in zip(batch, moves, strict=True):
            try:
                for temp, _final in group_moves:
                    _fsync_path(temp)  # after the first, cheap: one journal commit carries the rest
            except BaseException as err:
                raise _GroupFailed(group.label, err, first_lost=0) from err
        for position, (group, group_moves) in enumerate(zip(batch, moves, strict=True)):
            try:
                for temp, final in group_moves:
                    os.replace(temp, final)
                    temps.discard(temp)
                for name in group.remove:
                    with suppress(FileNotFoundError):
                        os.remove(f"{self.folder}/{name}")
            except BaseException as err:
                raise _GroupFailed(group.label, err, first_lost=position) from err
        try:
            _fsync_path(self.folder)  # the renames themselves
        except BaseException as err:
            raise _GroupFailed(batch[0].label, err, first_lost=0) from err  # none is known durable


@dataclass
class _Group:
    """One :meth:`LocalCommitter.submit` call: files to write in order, stale names, label, bytes."""

    files: list[tuple[str, bytes]]
    remove: list[str]
    label: Any
    size: int


class _GroupFailed(Exception):
    """A commit pass failed at group ``label``; groups from ``first_lost`` on in the pass are dropped."""

    def __init__(self, label: Any, error: BaseException, first_lost: int) -> None:
        super().__init__(str(error))
        self.label = label
        self.error = error
        self.first_lost = first_lost
