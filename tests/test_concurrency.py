"""``run_bounded``: the operator's generation pipeline, tested on its own with events, not timings."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_azerion.concurrency import run_bounded


class Probe:
    """Counts work in flight and what the handler saw; each item's work waits for its own gate."""

    def __init__(self, items, *, fail=(), fail_handling=()):
        self.gates = {item: threading.Event() for item in items}
        self.fail, self.fail_handling = set(fail), set(fail_handling)
        self.lock = threading.Lock()
        self.in_flight = self.peak = 0
        self.started: list[int] = []
        self.handled: list[int] = []
        self.handler_threads: set[int] = set()

    def work(self, item):
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.started.append(item)
        try:
            assert self.gates[item].wait(10), f"item {item} was never released"
            if item in self.fail:
                raise RuntimeError(f"work {item} failed")
            return item * 10
        finally:
            with self.lock:
                self.in_flight -= 1

    def handle(self, item, result):
        self.handler_threads.add(threading.get_ident())
        assert result == item * 10
        if item in self.fail_handling:
            raise OSError(f"storing {item} failed")
        self.handled.append(item)


def _release_all(probe):
    for gate in probe.gates.values():
        gate.set()


def test_every_item_is_worked_and_handled_in_the_calling_thread():
    probe = Probe(range(20))
    _release_all(probe)
    outcome = run_bounded(range(20), probe.work, probe.handle, limit=4)
    assert sorted(outcome.handled) == list(range(20))
    assert not outcome.failures
    assert not outcome.not_started
    assert probe.handler_threads == {threading.get_ident()}
    assert probe.peak <= 4


def test_no_more_than_limit_items_are_in_work_at_once():
    items = list(range(12))
    probe = Probe(items)

    def release_in_order():
        for item in items:
            deadline = time.monotonic() + 10
            while item not in probe.started and time.monotonic() < deadline:
                time.sleep(0.001)
            probe.gates[item].set()

    releaser = threading.Thread(target=release_in_order)
    releaser.start()
    run_bounded(items, probe.work, probe.handle, limit=3)
    releaser.join(10)
    assert probe.peak <= 3
    assert sorted(probe.handled) == items


def test_the_next_item_starts_before_the_previous_result_is_handled():
    """With limit 1, item k+1 is already in work while item k is handled: storage overlaps requests."""
    probe = Probe([0, 1])
    probe.gates[0].set()
    seen_in_flight: list[list[int]] = []

    def handle(item, result):
        if item == 0:
            deadline = time.monotonic() + 10
            while 1 not in probe.started and time.monotonic() < deadline:
                time.sleep(0.001)
            seen_in_flight.append(list(probe.started))
            probe.gates[1].set()
        probe.handle(item, result)

    run_bounded([0, 1], probe.work, handle, limit=1)
    assert seen_in_flight == [[0, 1]]
    assert probe.handled == [0, 1]


def test_after_a_failure_nothing_new_starts_and_work_in_flight_is_still_handled():
    items = list(range(6))
    probe = Probe(items, fail={1})
    probe.gates[1].set()  # item 1 fails while item 0 is still in work

    def release_zero_after_failure():
        deadline = time.monotonic() + 10
        while not (len(probe.started) == 2 and probe.in_flight == 1) and time.monotonic() < deadline:
            time.sleep(0.001)
        # Item 1's work has ended; its failure is queued a few instructions later, so item 0's
        # result, released well after, reaches the caller second.
        time.sleep(0.3)
        probe.gates[0].set()

    threading.Thread(target=release_zero_after_failure).start()
    outcome = run_bounded(items, probe.work, probe.handle, limit=2)
    assert set(outcome.failures) == {1}
    assert isinstance(outcome.failures[1], RuntimeError)
    assert outcome.handled == [0]  # in flight when 1 failed: handled, not dropped
    assert outcome.not_started == [2, 3, 4, 5]
    assert sorted(probe.started) == [0, 1]


def test_a_handling_failure_is_reported_for_its_item():
    probe = Probe(range(3), fail_handling={0})
    _release_all(probe)
    outcome = run_bounded(range(3), probe.work, probe.handle, limit=1)
    assert isinstance(outcome.failures[0], OSError)
    assert 0 not in outcome.handled


def test_cancel_stops_new_work():
    items = list(range(5))
    probe = Probe(items)
    cancel = threading.Event()

    def handle(item, result):
        probe.handle(item, result)
        cancel.set()

    probe.gates[0].set()
    threading.Timer(0.2, lambda: [gate.set() for gate in probe.gates.values()]).start()
    outcome = run_bounded(items, probe.work, handle, limit=1, cancel=cancel)
    assert outcome.handled == [0, 1]  # item 1 was already in work when 0 was handled
    assert outcome.not_started == [2, 3, 4]


def test_an_interruption_of_the_caller_aborts_keeps_paid_results_and_propagates():
    items = [0, 1, 2]
    probe = Probe(items)
    aborted = threading.Event()

    def handle(item, result):
        probe.handle(item, result)
        if item == 0:
            probe.gates[1].set()  # items 1 and 2 finish during the grace period
            probe.gates[2].set()
            raise KeyboardInterrupt  # what a task timeout looks like from here

    probe.gates[0].set()
    with pytest.raises(KeyboardInterrupt):
        run_bounded(items, probe.work, handle, limit=2, on_abort=aborted.set, grace=10)
    assert aborted.is_set()
    assert sorted(probe.handled) == [0, 1, 2]


def test_workers_are_daemon_threads():
    seen = []
    run_bounded([0], lambda item: seen.append(threading.current_thread().daemon), lambda *_: None, limit=1)
    assert seen == [True]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit"):
        run_bounded([1], lambda item: item, lambda *_: None, limit=0)


def test_inline_runs_everything_in_the_calling_thread_and_stops_at_the_first_failure():
    threads = set()

    def work(item):
        threads.add(threading.get_ident())
        if item == 2:
            raise RuntimeError("work 2 failed")
        return item

    handled = []
    outcome = run_bounded(range(5), work, lambda item, _: handled.append(item), limit=1, inline=True)
    assert threads == {threading.get_ident()}
    assert handled == outcome.handled == [0, 1]
    assert set(outcome.failures) == {2}
    assert outcome.not_started == [3, 4]


def test_inline_honours_cancel_and_calls_on_abort_when_interrupted():
    cancel = threading.Event()
    outcome = run_bounded(
        range(4), lambda item: item, lambda item, _: cancel.set(), limit=1, inline=True, cancel=cancel
    )
    assert outcome.handled == [0]
    assert outcome.not_started == [1, 2, 3]

    aborted = threading.Event()

    def interrupted(item):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bounded([0], interrupted, lambda *_: None, limit=1, inline=True, on_abort=aborted.set)
    assert aborted.is_set()
