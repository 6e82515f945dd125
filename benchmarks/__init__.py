"""Benchmarks of the Azerion provider: ``python -m benchmarks [p1 ... p5] [--quick]``.

Each benchmark is a module with a ``run(**sizes)`` function returning a
:class:`~benchmarks.harness.BenchResult` (a ratio or a duration, its target and the figures behind
it) and a ``QUICK`` dict of tiny sizes that the test suite uses so the code cannot rot.

======  ==========================  ==================================================  ==========
Name    Module                      Measures                                            Target
======  ==========================  ==================================================  ==========
``p1``  :mod:`benchmarks.overhead`     operator ``execute()`` vs a bare request loop       <= 1.10x
``p2``  :mod:`benchmarks.concurrency`  wall time of 64 prompts at 16 in flight vs ideal    <= 1.25x
``p3``  :mod:`benchmarks.memory`       peak RSS growth for one 16 MiB image vs its size    <= 3x
``p4``  :mod:`benchmarks.parse_cost`   import cost of the operator module for a DAG file   <= 30 ms
``p5``  :mod:`benchmarks.retries`      requests sent per image with 20 % injected 503s     <= 1.35
``p6``  :mod:`benchmarks.resume`       resume of 1 000 stored prompts on S3, +20 ms/request <= 5 s
======  ==========================  ==================================================  ==========

The benchmarks talk to the local emulator over real HTTP on loopback; nothing is mocked.
"""

from __future__ import annotations

from typing import NamedTuple


class Benchmark(NamedTuple):
    """One entry of :data:`BENCHMARKS`."""

    module: str
    title: str


#: Benchmark name -> the module that runs it, in the order ``python -m benchmarks`` runs them.
BENCHMARKS: dict[str, Benchmark] = {
    "p1": Benchmark("benchmarks.overhead", "operator overhead vs a bare loop"),
    "p2": Benchmark("benchmarks.concurrency", "concurrency: wall time vs ideal"),
    "p3": Benchmark("benchmarks.memory", "memory: peak RSS growth vs image size"),
    "p4": Benchmark("benchmarks.parse_cost", "DAG-parse cost of the operator import"),
    "p5": Benchmark("benchmarks.retries", "retry efficiency: requests per image"),
    "p6": Benchmark("benchmarks.resume", "resume of stored prompts on S3 at +20 ms a request"),
}
