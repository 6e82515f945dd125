"""A bounded two-stage pipeline: slow work in worker threads, its results handled in the caller.

The operator generates images (network-bound, in workers) and stores them (in the calling
thread). As soon as a result arrives its worker slot is free, so the next request starts while
the caller stores the previous result: storage overlaps with generation, and at most ``limit``
results exist beyond the one being handled.

Workers are daemon threads: a worker stuck in a socket read can never keep a killed task's
process alive. Stopping is explicit: after the first failure, or once ``cancel`` is set, no new
item starts; the items in flight finish and their results are still handled (they are paid for).
If the caller itself is interrupted (a task timeout raised in the main thread), ``on_abort`` runs
(e.g. to cancel the HTTP calls), results that arrive within ``grace`` seconds are still handled,
and the interruption propagates.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()
#: How often the caller wakes up to look at ``cancel`` while waiting for results.
_POLL_SECONDS = 0.2


@dataclass
class RunOutcome(Generic[T]):
    """What :func:`run_bounded` did with each item.

    :param handled: items whose result was handled, in the order they were handled.
    :param failures: items whose work or handling raised, with the exception.
    :param not_started: items never started because the run stopped early.
    """

    handled: list[T] = field(default_factory=list)
    failures: dict[T, BaseException] = field(default_factory=dict)
    not_started: list[T] = field(default_factory=list)


def run_bounded(
    items: Iterable[T],
    work: Callable[[T], R],
    handle: Callable[[T, R], None],
    *,
    limit: int,
    cancel: threading.Event | None = None,
    on_abort: Callable[[], None] | None = None,
    grace: float = 5.0,
    name: str = "worker",
    inline: bool = False,
) -> RunOutcome[T]:
    """Run ``work(item)`` for each item, at most ``limit`` at once, and ``handle`` each result.

    :param items: the items, started in this order.
    :param work: runs in a daemon thread; its return value goes to ``handle``.
    :param handle: runs in the calling thread, one result at a time, as results arrive.
    :param limit: items in work at once (>= 1).
    :param cancel: once set, no further item starts.
    :param on_abort: called when the caller is interrupted by a ``BaseException``.
    :param grace: seconds to keep handling results after an interruption.
    :param name: prefix of the worker threads' names.
    :return: the outcome; failures are returned, not raised.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if inline:
        return _run_inline(items, work, handle, cancel, on_abort)
    outcome: RunOutcome[T] = RunOutcome()
    pending = iter(items)
    results: queue.SimpleQueue[tuple[T, bool, object]] = queue.SimpleQueue()
    in_flight = 0

    def run(item: T) -> None:
        try:
            results.put((item, True, work(item)))
        except BaseException as err:  # handed to the caller, who decides
            results.put((item, False, err))

    def stopping() -> bool:
        return bool(outcome.failures) or (cancel is not None and cancel.is_set())

    def top_up() -> None:
        nonlocal in_flight
        while in_flight < limit and not stopping():
            item = next(pending, _END)
            if item is _END:
                return
            threading.Thread(target=run, args=(item,), name=f"{name}-{in_flight}", daemon=True).start()
            in_flight += 1

    def take(timeout: float) -> tuple[T, bool, object] | None:
        try:
            return results.get(timeout=timeout)
        except queue.Empty:
            return None

    def settle(item: T, ok: bool, value: object) -> None:
        if not ok:
            outcome.failures[item] = value  # type: ignore[assignment]
            return
        try:
            handle(item, value)  # type: ignore[arg-type]
        except Exception as err:
            outcome.failures[item] = err
        else:
            outcome.handled.append(item)

    try:
        top_up()
        while in_flight:
            got = take(_POLL_SECONDS)
            if got is None:
                continue
            in_flight -= 1
            item, ok, value = got
            if ok:
                top_up()  # the next item starts before this result is handled
                settle(item, ok, value)
            else:
                settle(item, ok, value)  # recorded first: nothing starts after a failure
                top_up()
    except BaseException:
        if on_abort is not None:
            on_abort()
        deadline = time.monotonic() + grace
        while in_flight and (left := deadline - time.monotonic()) > 0:
            got = take(left)
            if got is None:
                break
            in_flight -= 1
            settle(*got)
        raise
    outcome.not_started = [item for item in pending if item is not _END]  # type: ignore[misc]
    return outcome


def _run_inline(
    items: Iterable[T],
    work: Callable[[T], R],
    handle: Callable[[T, R], None],
    cancel: threading.Event | None,
    on_abort: Callable[[], None] | None,
) -> RunOutcome[T]:
    """One item at a time in the calling thread: no thread hand-off, no GIL convoy."""
    outcome: RunOutcome[T] = RunOutcome()
    pending = iter(items)
    try:
        for item in pending:
            if cancel is not None and cancel.is_set():
                outcome.not_started.append(item)
                break
            try:
                result = work(item)
                handle(item, result)
            except Exception as err:
                outcome.failures[item] = err
                break
            outcome.handled.append(item)
    except BaseException:
        if on_abort is not None:
            on_abort()
        raise
    outcome.not_started.extend(pending)
    return outcome
