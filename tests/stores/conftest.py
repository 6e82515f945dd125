"""Fixtures for the store tests: the image API emulator, and GCS and Azure Blob emulators on loopback.

*Google Cloud Storage.* ``gcp-storage-emulator`` (PyPI) runs as a subprocess of this interpreter
bound to 127.0.0.1 on a free port, in memory, for the session. The operator reaches it through a
``google_cloud_platform`` connection with anonymous credentials and ``gcs.endpoint`` in its extra,
which the Google provider's ``gs`` filesystem (gcsfs) reads. The GCS tests are skipped unless the
Google provider and ``gcp-storage-emulator`` are installed (`make` installs both: see
``tests/stores/test_gcs.py``).

*Azure Blob.* Azurite (Microsoft's emulator, npm package ``azurite``) runs as a subprocess bound to
127.0.0.1 on a free port, in memory, for the session. It is installed with npm, once, into a cache
folder of its own (``AZERION_AZURITE_DIR``, default ``~/.cache/airflow-provider-azerion/azurite-
<version>``); nothing is installed globally. Without ``node``/``npm`` on PATH the Azure tests are
skipped with that reason. The operator reaches Azurite only through an Airflow connection
(``connection_string`` in its extra), as it would reach a storage account: the Azure provider's
``abfs`` filesystem (adlfs) reads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.processes import free_port, stop
from tests.scale.conftest import emulator  # noqa: F401  (the image API emulator behind azerion_default)

# gcsfs (2026.x) by default serves gs:// with ExtendedGcsFileSystem, which first asks the gRPC Storage
# Control API for each bucket's layout (zonal / hierarchical). gcp-storage-emulator speaks only the
# JSON API over HTTP, so every such call waits out a 60 s timeout and falls back. gcsfs reads this
# switch when imported: the plain GCSFileSystem, which is what the emulator can prove.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
GCS_START_TIMEOUT = 30
AZURITE_VERSION = "3.37.0"
NPM_INSTALL_TIMEOUT = 300
AZURITE_START_TIMEOUT = 30
#: Azurite's one built-in account and its published key (the same in every Azurite install).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_dir() -> Path:
    """Where Azurite is (or will be) installed with npm, per pinned version."""
    if kept := os.environ.get("AZERION_AZURITE_DIR"):
        return Path(kept)
    return Path.home() / ".cache" / "airflow-provider-azerion" / f"azurite-{AZURITE_VERSION}"


def install_azurite() -> Path:
    """Azurite's blob server executable, installed with npm into :func:`azurite_dir` if missing.

    A file lock keeps concurrent sessions from installing into the same folder at once; npm gets
    :data:`NPM_INSTALL_TIMEOUT` seconds.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("the Azure Blob tests need node and npm on PATH to install Azurite")
    folder = azurite_dir()
    executable = folder / "node_modules" / ".bin" / "azurite-blob"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.exists():
            try:
                done = subprocess.run(
                    [
                        "npm",
                        "install",
                        "--prefix",
                        str(folder),
                        "--no-audit",
                        "--no-fund",
                        "--omit=dev",
                        "--no-save",
                        f"azurite@{AZURITE_VERSION}",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=NPM_INSTALL_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm install azurite@{AZURITE_VERSION} took over {NPM_INSTALL_TIMEOUT} s")
            if done.returncode != 0 or not executable.exists():
                pytest.fail(
                    f"npm install azurite@{AZURITE_VERSION} failed:\n"
                    f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
                )
    return executable


@contextlib.contextmanager
def azurite_server(executable: Path, workdir: Path) -> Iterator[str]:
    """Azurite's blob service on 127.0.0.1, in memory; yields its blob endpoint and stops it after."""
    port = free_port()
    log_path = workdir / "azurite.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            # --skipApiVersionCheck: the Python SDK sends a newer x-ms-version than Azurite knows.
            [
                str(executable),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--silent",
                "--skipApiVersionCheck",
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    try:
        deadline = time.monotonic() + AZURITE_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"Azurite exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
            with contextlib.suppress(requests.ConnectionError):
                # Any HTTP answer (an unauthenticated request gets 4xx) means it is serving.
                requests.get(f"{endpoint}?comp=list", timeout=2)
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Azurite did not listen within {AZURITE_START_TIMEOUT} s:\n"
                    f"{log_path.read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield endpoint
    finally:
        stop(process)


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory) -> Iterator[str]:
    """The blob endpoint of one Azurite server for the session."""
    with azurite_server(install_azurite(), tmp_path_factory.mktemp("azurite")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory) -> Iterator[str]:
    """The endpoint of one gcp-storage-emulator server on 127.0.0.1 for the session."""
    pytest.importorskip("gcp_storage_emulator", reason="gcp-storage-emulator is not installed")
    port = free_port()
    log_path = tmp_path_factory.mktemp("gcs") / "gcs-emulator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--in-memory",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + GCS_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"gcp-storage-emulator exited with {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{endpoint}/storage/v1/b", timeout=2)
                break
            if time.monotonic() > deadline:
                pytest.fail(f"gcp-storage-emulator did not listen within {GCS_START_TIMEOUT} s")
            time.sleep(0.2)
        yield endpoint
    finally:
        stop(process)


@dataclass
class Gcs:
    """A bucket on the GCS emulator for one test, and an Airflow connection the operator uses."""

    client: Any  # google.cloud.storage.Client, straight to the emulator
    bucket: str
    conn_id: str

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` in the bucket, by name (read with google-cloud-storage)."""
        return {
            blob.name: blob.download_as_bytes()
            for blob in self.client.list_blobs(self.bucket, prefix=prefix or None)
        }

    def cold(self) -> None:
        """Forget gcsfs's cached listings, as a new task process would have none."""
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(f"gs://{self.bucket}/", conn_id=self.conn_id).fs.invalidate_cache()


@pytest.fixture
def gcs(gcs_endpoint, monkeypatch) -> Iterator[Gcs]:
    """A fresh bucket on the GCS emulator, reached by the operator through a connection of its own."""
    pytest.importorskip("airflow.providers.google", reason="the gcs extra is not installed")
    import gcsfs
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if gcsfs.GCSFileSystem.__name__ != "GCSFileSystem":  # ExtendedGcsFileSystem
        pytest.fail("gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set (see above)")
    conn_id = f"gcs_store_{uuid.uuid4().hex[:8]}"
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"project": "azerion-test", "is_anonymous": True, "gcs.endpoint": gcs_endpoint},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    client = storage.Client(
        project="azerion-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_endpoint},
    )
    bucket = f"azerion-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)
    store = Gcs(client=client, bucket=bucket, conn_id=conn_id)
    store.cold()
    yield store
    store.cold()


@pytest.fixture(autouse=True)
def _quiet_azure_sdk(monkeypatch):
    """The Azure SDK logs every request and response at INFO; keep test output to what matters."""
    logger = logging.getLogger("azure")
    monkeypatch.setattr(logger, "level", logging.WARNING)


@dataclass
class Blob:
    """A container on Azurite for one test, an Airflow connection to the account, and an SDK client."""

    service: Any  # azure.storage.blob.BlobServiceClient, straight to Azurite
    container: str
    conn_id: str

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every blob under ``prefix`` in the container, by name (read with the Azure SDK, not adlfs)."""
        client = self.service.get_container_client(self.container)
        return {
            blob.name: client.download_blob(blob.name).readall()
            for blob in client.list_blobs(name_starts_with=prefix or None)
        }

    def cold(self) -> None:
        """Forget adlfs's cached listings, as a new task process would have none."""
        from airflow.sdk import ObjectStoragePath

        ObjectStoragePath(f"abfs://{self.container}/", conn_id=self.conn_id).fs.invalidate_cache()


@pytest.fixture
def azure_blob(azurite_endpoint, monkeypatch) -> Iterator[Blob]:
    """A fresh container on Azurite, reached by the operator through a connection of its own.

    Each test gets its own connection id: Airflow keeps one filesystem per connection id for the
    process's lifetime.
    """
    pytest.importorskip("airflow.providers.microsoft.azure", reason="the azure extra is not installed")
    from azure.storage.blob import BlobServiceClient

    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={azurite_endpoint};"
    )
    conn_id = f"azure_store_{uuid.uuid4().hex[:8]}"
    # conn_type "wasb" is the Azure Blob Storage connection of the Azure provider; its abfs
    # filesystem takes the connection string from the extra.
    connection = {"conn_type": "wasb", "extra": {"connection_string": connection_string}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    service = BlobServiceClient.from_connection_string(connection_string)
    container = f"azerion-{uuid.uuid4().hex[:12]}"
    service.create_container(container)
    store = Blob(service=service, container=container, conn_id=conn_id)
    store.cold()
    yield store
    store.cold()
    service.delete_container(container)
