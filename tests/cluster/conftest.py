"""The cluster of the ``tests/cluster`` tests: brought up once per session by ``scripts/cluster.py``.

A real deployment on loopback (PostgreSQL, Redis, CeleryExecutor with two workers, moto S3, the
emulator), in a temporary folder, with StatsD metrics sent to a listener in this process. Every
test uses its own DAG run and S3 prefix. Skipped, saying why, on Airflow < 3.3, and when the
machine lacks PostgreSQL 15 or Redis and we are not root to install them (on CI we are root).
Teardown always runs ``down``. To iterate on a test, start a cluster yourself (with
``AZERION_CLUSTER_API_KEY`` set to :data:`API_KEY`, ``--statsd-port`` aside) and point
``AZERION_CLUSTER_DIR`` at its folder: it is used as it is, and left running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.statsd import StatsdListener

#: Recognisable, so that test_secrets can prove it reaches no file.
API_KEY = "sk-azerion-CLUSTER-SECRET-9d1ce5"
#: Versioned, so that every PUT of a key is counted.
BUCKET = "azerion-cluster-tests"
SCRIPT = REPO_ROOT / "scripts" / "cluster.py"
UP_TIMEOUT = 420
#: The order the modules run in: the worker kill leaves one worker; the secrets scan reads every log.
ORDER = (
    "test_mapped_run",
    "test_metrics",
    "test_images_tab",
    "test_pool",
    "test_worker_kill",
    "test_secrets",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = Path(str(item.fspath)).stem
        return ORDER.index(name) if name in ORDER else -1

    items.sort(key=lambda item: (Path(str(item.fspath)).parent.name == "cluster", rank(item)))


def skip_reason() -> str | None:
    """Why the cluster cannot run here, or None."""
    from airflow import __version__
    from packaging.version import Version

    if Version(__version__) < Version("3.3"):
        return f"the cluster tests need Airflow >= 3.3 (this is {__version__})"
    missing = [
        name
        for name, path in (("postgresql-15", "/usr/lib/postgresql/15/bin/postgres"), ("redis-server", None))
        if not (Path(path).exists() if path else shutil.which(name))
    ]
    if missing and os.geteuid() != 0:
        return (
            f"{', '.join(missing)} missing and not root to install it: apt-get install -y {' '.join(missing)}"
        )
    return None


@pytest.fixture(scope="session")
def statsd():
    """A StatsD listener every process of the cluster sends its metrics to."""
    with StatsdListener() as listener:
        yield listener


@pytest.fixture(scope="session")
def cluster(statsd):
    """The running cluster (:class:`tests.cluster.cluster.Cluster`), and its test bucket."""
    from tests.cluster.cluster import Cluster

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    if os.environ.get("AZERION_CLUSTER_DIR"):  # a cluster already up (started with this API key)
        yield Cluster(Path(os.environ["AZERION_CLUSTER_DIR"]))
        return
    # Under /tmp, world-searchable: PostgreSQL runs as the postgres user and must reach its data.
    folder = Path(tempfile.mkdtemp(prefix="azerion-cluster-"))
    folder.chmod(0o755)
    env = {**os.environ, "AZERION_CLUSTER_API_KEY": API_KEY}
    command = [sys.executable, str(SCRIPT)]
    args = ["--dir", str(folder), "--statsd-port", str(statsd.port)]
    args += ["--extra-dags", str(Path(__file__).parent / "dags")]
    try:
        try:
            up = subprocess.run(
                [*command, "up", *args], env=env, capture_output=True, text=True, timeout=UP_TIMEOUT
            )
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"cluster up took over {UP_TIMEOUT} s: {error.stdout}{error.stderr}")
        assert up.returncode == 0, f"cluster up failed:\n{up.stdout[-3000:]}\n{up.stderr[-5000:]}"
        running = Cluster(folder)
        client = running.s3()
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield running
    finally:
        subprocess.run([*command, "down", "--dir", str(folder)], capture_output=True, timeout=180)
        if not os.environ.get("AZERION_CLUSTER_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
