"""The shared Airflow test harness: a throwaway Airflow installation and ``dag.test()`` helpers.

How it works
============

*Isolation.* At import time, before anything imports Airflow, this module points ``AIRFLOW_HOME``
at a fresh temporary folder and the metadata DB at a SQLite file inside it, so a developer's own
``AIRFLOW_HOME`` or database is never touched. Set ``AZERION_TEST_AIRFLOW_HOME`` to reuse a folder
across sessions (the DB is migrated in place, which is faster the second time). Example DAGs are
off. ``[core] unit_test_mode`` is deliberately *not* set: it loads Airflow's own test config
(LocalExecutor, Airflow's test DAG folder, examples on), which helps Airflow's suite, not ours.

*DAG bundles.* Airflow 3 ``dag.test()`` runs only DAGs that a configured DAG bundle contains: it
parses the bundle and writes the serialised DAG to the DB before creating the run. The harness
configures one ``LocalDagBundle`` per folder in :data:`DAG_BUNDLES` (``tests/dags`` and, once it
exists, the repository's ``example_dags``) through ``[dag_processor] dag_bundle_config_list``. To
run another folder's DAGs, add it there. A DAG runs from the file in place; nothing is copied.

*Database.* The session fixture :func:`airflow_db` migrates the SQLite DB once (about 3 s).

*Cost.* The first ``dag.test()`` of a session takes about 8 s more than later ones: Airflow's
in-process Execution API builds its versioned routes (cadwyn) on its first request. Later runs of
a small DAG take about a second.

*Running DAGs.* The :func:`run_dag` fixture loads a DAG from a bundle file, runs it with
``dag.test()`` in this process (tasks run in-process too, so test fixtures such as an emulator on
loopback are reachable), and returns a :class:`DagRunResult` to read task states, XComs and asset
events from the DB. Connections can be given as ``AIRFLOW_CONN_*`` environment variables
(``monkeypatch.setenv``): Airflow resolves them inside ``dag.test()``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk import DAG

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

#: Bundle name -> folder of DAG files that ``run_dag`` may run. Folders that do not exist are skipped.
DAG_BUNDLES: dict[str, Path] = {
    "test-dags": TESTS_DIR / "dags",
    "example-dags": REPO_ROOT / "example_dags",
}


def _configure_airflow() -> Path:
    if "airflow" in sys.modules:  # too late: Airflow has read its configuration already
        raise RuntimeError("tests/conftest.py must configure Airflow before anything imports it")
    if kept := os.environ.get("AZERION_TEST_AIRFLOW_HOME"):
        home = Path(kept)
        home.mkdir(parents=True, exist_ok=True)
    else:
        home = Path(tempfile.mkdtemp(prefix="azerion-airflow-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    # DAG files a test writes itself (e.g. the README's DAG, as written) go here.
    DAG_BUNDLES["scratch-dags"] = home / "scratch-dags"
    DAG_BUNDLES["scratch-dags"].mkdir(exist_ok=True)
    bundles = [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path), "refresh_interval": 0},
        }
        for name, path in DAG_BUNDLES.items()
        if path.is_dir()
    ]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_BUNDLES["test-dags"]),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        }
    )
    return home


AIRFLOW_HOME = _configure_airflow()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's SQLite metadata DB once; return ``AIRFLOW_HOME``."""
    from airflow.utils.db import initdb

    initdb()
    return AIRFLOW_HOME


@dataclass
class DagRunResult:
    """The outcome of one ``dag.test()`` run, read back from the metadata DB.

    :param dag: the DAG object that ran.
    :param dag_run: the DagRun ``dag.test()`` returned.
    """

    dag: DAG
    dag_run: DagRun

    @property
    def run_id(self) -> str:
        """The run id (what the operator uses in output paths)."""
        return self.dag_run.run_id

    @property
    def state(self) -> str:
        """The final DagRun state, e.g. ``"success"`` or ``"failed"``."""
        return str(self.dag_run.state)

    def task_instances(self) -> list[TaskInstance]:
        """All task instances of the run, fresh from the DB, ordered by task id and map index."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            query = (
                select(TaskInstance)
                .where(TaskInstance.dag_id == self.dag.dag_id, TaskInstance.run_id == self.run_id)
                .order_by(TaskInstance.task_id, TaskInstance.map_index)
            )
            tis = list(session.scalars(query))
            session.expunge_all()
        return tis

    def states(self) -> dict[tuple[str, int], str]:
        """``{(task_id, map_index): state}`` of every task instance (``map_index`` -1 if unmapped)."""
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in self.task_instances()}

    def ti(self, task_id: str, map_index: int = -1) -> TaskInstance:
        """One task instance, fresh from the DB."""
        for ti in self.task_instances():
            if ti.task_id == task_id and ti.map_index == map_index:
                return ti
        raise KeyError(f"No task instance {task_id}[{map_index}] in run {self.run_id}")

    def xcom(self, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        """The deserialised XCom ``key`` of one task instance, or ``None`` if it pushed none."""
        return self.xcom_rows(task_id, key).get(map_index)

    def xcom_rows(self, task_id: str, key: str = "return_value") -> dict[int, Any]:
        """``{map_index: value}`` of XCom ``key`` for every map index of ``task_id``."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            query = XComModel.get_many(run_id=self.run_id, key=key, task_ids=task_id, dag_ids=self.dag.dag_id)
            return {row.map_index: XComModel.deserialize_value(row) for row in session.scalars(query)}

    def xcom_raw(self, task_id: str, map_index: int = -1, key: str = "return_value") -> str:
        """The XCom value exactly as stored in the DB (JSON text), to check its size and content."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            value = session.scalar(
                select(XComModel.value).where(
                    XComModel.dag_id == self.dag.dag_id,
                    XComModel.run_id == self.run_id,
                    XComModel.task_id == task_id,
                    XComModel.map_index == map_index,
                    XComModel.key == key,
                )
            )
        return value if isinstance(value, str) else json.dumps(value)

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """Extras of the asset events this run's tasks emitted for the asset with ``uri``."""
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            query = (
                select(AssetEvent.extra)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(
                    AssetModel.uri == uri,
                    AssetEvent.source_dag_id == self.dag.dag_id,
                    AssetEvent.source_run_id == self.run_id,
                )
                .order_by(AssetEvent.id)
            )
            return [dict(extra or {}) for extra in session.scalars(query)]


def load_dag(dag_file: str | Path, dag_id: str) -> DAG:
    """Parse ``dag_file`` the way the DAG processor does and return DAG ``dag_id``.

    :param dag_file: a ``.py`` file inside one of :data:`DAG_BUNDLES`, or its path relative to
        ``tests/dags``.
    :param dag_id: the DAG to return.
    :raises AssertionError: when the file has import errors or lacks the DAG.
    """
    from airflow.dag_processing.dagbag import BundleDagBag

    path = Path(dag_file)
    if not path.is_absolute():
        path = DAG_BUNDLES["test-dags"] / path
    path = path.resolve()
    bundle_name, bundle_path = _bundle_of(path)
    bag = BundleDagBag(dag_folder=str(path), bundle_path=bundle_path, bundle_name=bundle_name)
    assert not bag.import_errors, f"Import errors in {path}: {bag.import_errors}"
    assert dag_id in bag.dags, f"{path} defines no DAG {dag_id!r}; it has {sorted(bag.dags)}"
    return bag.dags[dag_id]


def _bundle_of(path: Path) -> tuple[str, Path]:
    for name, folder in DAG_BUNDLES.items():
        if folder.is_dir() and path.is_relative_to(folder.resolve()):
            return name, folder
    raise AssertionError(
        f"{path} is in no DAG bundle; dag.test() only runs DAGs of configured bundles. "
        f"Put it in one of {[str(p) for p in DAG_BUNDLES.values()]} or add its folder to DAG_BUNDLES."
    )


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., DagRunResult]:
    """Run a DAG from a bundle file with ``dag.test()`` and return a :class:`DagRunResult`.

    Call it as ``run_dag(dag_file, dag_id, logical_date=None, conf=None)``. Runs with the same
    ``logical_date`` share a run id (``dag.test()`` replaces the earlier run), which is how a
    test re-runs "the same" DAG run, e.g. to check that work is resumed. ``manual=True`` makes a
    run without a logical date, as Airflow 3's Trigger button does by default (no ``ds`` then).
    """

    def run(
        dag_file: str | Path,
        dag_id: str,
        *,
        logical_date: datetime | None = None,
        conf: dict[str, Any] | None = None,
        manual: bool = False,
    ) -> DagRunResult:
        dag = load_dag(dag_file, dag_id)
        # The run id derives from run_after: pin both to the logical date so that two calls
        # with one logical_date make the same run id. Without it, dag.test() uses "now".
        when: dict[str, Any] = {}
        if logical_date is not None:
            when = {"logical_date": logical_date, "run_after": logical_date}
        if manual:
            when["logical_date"] = None
        dag_run = dag.test(run_conf=conf, **when)
        return DagRunResult(dag=dag, dag_run=dag_run)

    return run


@pytest.fixture
def output_dir(tmp_path) -> Path:
    """A local folder for the operator's output (``output_path`` is its ``file://`` URL)."""
    path = tmp_path / "images"
    path.mkdir()
    return path


def emulator_connection_json(base_url: str, api_key: str) -> str:
    """``AIRFLOW_CONN_AZERION_DEFAULT`` for an emulator, with fast hook backoff for tests."""
    return json.dumps(
        {
            "conn_type": "azerion",
            "host": base_url,
            "password": api_key,
            "extra": {"backoff_factor": 0.01, "max_retry_wait": 0.05},
        }
    )


def put_emulator_behind_default_connection(emulator, monkeypatch, api_key: str):
    """Give the emulator ``api_key`` and point ``azerion_default`` at it; no ``AZERION_API_KEY`` fallback."""
    emulator.api_key = api_key
    monkeypatch.setenv("AIRFLOW_CONN_AZERION_DEFAULT", emulator_connection_json(emulator.base_url, api_key))
    monkeypatch.delenv("AZERION_API_KEY", raising=False)
    return emulator


@contextlib.contextmanager
def moto_bucket(monkeypatch, conn_id: str, bucket: str) -> Iterator[Any]:
    """moto's S3 server on loopback, Airflow connection ``conn_id`` to it, and ``bucket``.

    :return: a boto3 S3 client of the server, to check what landed in the bucket.
    """
    from benchmarks.s3_latency import aws_connection, moto_s3, s3_client

    with moto_s3() as (moto_url, _proxy):  # straight to moto: nothing here counts requests
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(aws_connection(moto_url)))
        client = s3_client(moto_url)
        client.create_bucket(Bucket=bucket)
        yield client


#: Tests that skip themselves when a piece is missing (an extra, an emulator, node, apt) but must
#: run in CI (``CI=true``, as ``.ci/run`` sets): there a skip would hide that a claim went untested.
MUST_RUN_IN_CI = ("tests/stores/", "tests/cluster/")
_skipped_in_ci: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("CI") == "true" and report.skipped and report.nodeid.startswith(MUST_RUN_IN_CI):
        _skipped_in_ci.append(f"{report.nodeid}: {report.longrepr}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_in_ci and exitstatus == 0:
        print("\nThese tests must run in CI but were skipped:\n  " + "\n  ".join(_skipped_in_ci))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
