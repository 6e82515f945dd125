"""Latency, the concurrency cap and the in-flight counters, measured with real concurrent clients."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from airflow_provider_azerion.emulator import EmulatorServer
from tests.emulator.conftest import Api, wait_until


def generate_together(server: EmulatorServer, clients: int) -> list[requests.Response]:
    """Send one generation from each of ``clients`` threads, released at the same moment."""
    barrier = threading.Barrier(clients)

    def one(index: int) -> requests.Response:
        client = Api(server)
        try:
            barrier.wait(timeout=10)
            return client.generate(prompt=f"client {index}", size="32x32")
        finally:
            client.session.close()

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(clients)))


def test_latency_delays_each_generation(api: Api):
    api.server.latency = 0.3

    started = time.monotonic()
    response = api.generate(size="16x16")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_latency_does_not_delay_the_model_list(api: Api):
    api.server.latency = 2

    started = time.monotonic()
    api.get("/models")

    assert time.monotonic() - started < 1


def test_sixteen_clients_overlap_their_latency(azerion_emulator: EmulatorServer):
    azerion_emulator.latency = 0.5

    started = time.monotonic()
    responses = generate_together(azerion_emulator, 16)

    assert [r.status_code for r in responses] == [200] * 16
    assert time.monotonic() - started < 3  # Sequential would take 8 s.
    assert azerion_emulator.peak_concurrency == 16
    assert azerion_emulator.generation_count == 16
    assert azerion_emulator.in_flight == 0


def test_sequential_requests_have_peak_concurrency_one(api: Api):
    for _ in range(3):
        api.generate(size="16x16")

    assert api.server.peak_concurrency == 1


def test_request_beyond_the_cap_gets_429_with_retry_headers(azerion_emulator: EmulatorServer):
    azerion_emulator.latency = 1.0
    azerion_emulator.max_concurrency = 2
    azerion_emulator.retry_after = 0.25
    clients = [Api(azerion_emulator) for _ in range(3)]
    with ThreadPoolExecutor(2) as pool:
        in_flight = [pool.submit(client.generate, size="16x16") for client in clients[:2]]
        wait_until(lambda: azerion_emulator.in_flight == 2)

        rejected = clients[2].generate(size="16x16")

        assert [future.result().status_code for future in in_flight] == [200, 200]
    for client in clients:
        client.session.close()
    assert rejected.status_code == 429
    error = rejected.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "rate_limit_error")
    assert rejected.headers["Retry-After"] == "1"
    assert rejected.headers["retry-after-ms"] == "250"
    assert [r.fault for r in azerion_emulator.requests] == ["max_concurrency", None, None]
    assert azerion_emulator.peak_concurrency == 3  # The rejected request was in flight too.


def test_cap_admits_requests_again_once_others_finish(api: Api):
    api.server.max_concurrency = 1

    assert [api.generate(size="16x16").status_code for _ in range(3)] == [200, 200, 200]


def test_concurrent_clients_beyond_the_cap_are_partly_rejected(azerion_emulator: EmulatorServer):
    azerion_emulator.latency = 0.5
    azerion_emulator.max_concurrency = 4

    statuses = sorted(r.status_code for r in generate_together(azerion_emulator, 8))

    assert statuses == [200] * 4 + [429] * 4
