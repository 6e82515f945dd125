"""The ``azerion-emulator`` command, the pytest fixtures, and what importing the emulator costs."""

from __future__ import annotations

import errno
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from airflow_provider_azerion.emulator import EmulatorServer
from tests.emulator.conftest import TIMEOUT, Api, decode_image

BANNER = re.compile(r"^Azerion emulator listening on (http://127\.0\.0\.1:(\d+)/v1) \(API key: (.+)\)$")
FILES_BANNER = re.compile(r"^Result files served on (http://127\.0\.0\.1:(\d+))$")


def read_line(process: subprocess.Popen, timeout: float = 30) -> str:
    """Read one line of the process's stdout, failing after ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        pytest.fail(f"no output from the emulator within {timeout} s")


def run_emulator(*args: str) -> subprocess.Popen:
    script = Path(sys.executable).with_name("azerion-emulator")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "airflow_provider_azerion.emulator.cli"]
    )
    return subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM the process and reap it (and its pipes), killing it if it ignores the signal."""
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=5)
    return process.returncode


def test_cli_serves_on_a_free_port_until_terminated():
    process = run_emulator("--port", "0", "--api-key", "cli-key", "--fault-script", "503")
    try:
        match = BANNER.match(read_line(process))
        assert match, "unexpected banner"
        base_url, port, key = match.groups()
        assert int(port) > 0
        assert key == "cli-key"
        headers = {"Authorization": "Bearer cli-key"}
        models = requests.get(f"{base_url}/models", headers=headers, timeout=TIMEOUT)
        assert models.status_code == 200
        assert len(models.json()["data"]) >= 2
        body = {"model": "stable-image-core-1.1", "prompt": "cat", "size": "16x16"}
        generate = f"{base_url}/images/generations"
        assert requests.post(generate, json=body, headers=headers, timeout=TIMEOUT).status_code == 503
        assert requests.post(generate, json=body, headers=headers, timeout=TIMEOUT).status_code == 200
    finally:
        returncode = stop(process)
    assert returncode == 0


def test_cli_serves_result_files_with_the_link_knobs():
    process = run_emulator(
        "--port",
        "0",
        "--url-expiry",
        "120",
        "--forbidden-models",
        "stable-image-core-1.1",
        "--revise-prompts",
    )
    try:
        base_url, _, key = BANNER.match(read_line(process)).groups()
        files = FILES_BANNER.match(read_line(process))
        assert files, "no result-file origin announced"
        headers = {"Authorization": f"Bearer {key}"}
        generate = f"{base_url}/images/generations"
        body = {"model": "bytedance-seedream-4", "prompt": "cat", "size": "512x512"}
        item = requests.post(generate, json=body, headers=headers, timeout=TIMEOUT).json()["data"][0]
        assert item["url"].startswith(files[1] + "/ark-content-generation/")
        assert "X-Tos-Expires=120&" in item["url"]
        assert item["revised_prompt"]
        assert requests.get(item["url"], timeout=TIMEOUT).status_code == 200
        body["model"] = "stable-image-core-1.1"
        assert requests.post(generate, json=body, headers=headers, timeout=TIMEOUT).status_code == 403
    finally:
        stop(process)


def test_cli_api_key_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.setenv("AZERION_EMULATOR_API_KEY", "from-env")
    process = run_emulator("--port", "0")
    try:
        match = BANNER.match(read_line(process))
        assert match
        assert match[3] == "from-env"
    finally:
        stop(process)


def test_cli_rejects_an_unknown_fault_kind():
    process = run_emulator("--port", "0", "--fault-script", "teapot")
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "Unknown fault 'teapot'" in stderr


def test_cli_reports_a_port_in_use(azerion_emulator: EmulatorServer):
    process = run_emulator("--port", str(azerion_emulator.port))
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 1
    assert "cannot listen on 127.0.0.1" in stderr


def test_fixture_serves_on_loopback(azerion_emulator: EmulatorServer):
    assert azerion_emulator.url.startswith("http://127.0.0.1:")
    assert azerion_emulator.port > 0
    headers = {"Authorization": f"Bearer {azerion_emulator.api_key}"}
    assert requests.get(f"{azerion_emulator.base_url}/models", headers=headers, timeout=TIMEOUT).ok


@pytest.mark.azerion_emulator(api_key="marked-key", max_side=32)
def test_fixture_takes_server_options_from_the_marker(api: Api):
    b64 = api.generate(size="64x64", output_format="png").json()["data"][0]["b64_json"]

    assert api.server.api_key == "marked-key"
    assert decode_image(b64).size == (32, 32)


def test_session_fixture_serves(azerion_emulator_session: EmulatorServer):
    azerion_emulator_session.reset()

    headers = {"Authorization": f"Bearer {azerion_emulator_session.api_key}"}
    assert requests.get(f"{azerion_emulator_session.base_url}/models", headers=headers, timeout=TIMEOUT).ok
    assert len(azerion_emulator_session.requests) == 1


def test_server_stops_and_frees_its_ports():
    server = EmulatorServer().start()
    url, files_url = server.base_url, server.files_url
    assert requests.get(f"{url}/models", timeout=TIMEOUT).status_code == 401
    assert requests.get(f"{files_url}/ark-content-generation/x.jpeg", timeout=TIMEOUT).status_code == 403

    server.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/models", timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{files_url}/ark-content-generation/x.jpeg", timeout=TIMEOUT)


def test_server_can_put_the_files_origin_on_a_chosen_port(azerion_emulator: EmulatorServer):
    port = azerion_emulator.files_port
    azerion_emulator.stop()

    with EmulatorServer(files_port=port) as server:
        assert server.files_url == f"http://127.0.0.1:{port}"
        assert server.files_port == port != server.port


def test_a_files_port_in_use_fails_start_and_leaves_no_server_running(azerion_emulator: EmulatorServer):
    server = EmulatorServer(files_port=azerion_emulator.port)

    with pytest.raises(OSError) as caught:  # noqa: PT011 - checked by errno below, not by message
        server.start()
    assert caught.value.errno == errno.EADDRINUSE
    assert server.port == 0  # Nothing was served: the port is only set once both origins are bound.
    assert "running=False" in repr(server)


def test_fixtures_are_available_to_any_test_suite(tmp_path):
    # A suite with no conftest: the fixtures must come from the installed entry point.
    (tmp_path / "test_user_suite.py").write_text(
        "import requests\n"
        "URLS = []\n"
        "def test_uses_the_emulator(azerion_emulator):\n"
        "    URLS.append(azerion_emulator.base_url)\n"
        "    headers = {'Authorization': 'Bearer ' + azerion_emulator.api_key}\n"
        "    assert requests.get(URLS[0] + '/models', headers=headers, timeout=10).status_code == 200\n"
        "def test_emulator_is_stopped_after_the_test():\n"
        "    import pytest\n"
        "    with pytest.raises(requests.exceptions.ConnectionError):\n"
        "        requests.get(URLS[0] + '/models', timeout=10)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_suite.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_importing_the_emulator_loads_no_web_server_or_pillow():
    code = (
        "import json, sys; "
        "import airflow_provider_azerion.emulator, airflow_provider_azerion.emulator.pytest_plugin; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'uvicorn', 'PIL'})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert json.loads(result.stdout) == []


def test_start_returns_only_once_connections_are_accepted():
    started = time.monotonic()
    with EmulatorServer() as server:
        assert requests.get(f"{server.base_url}/models", timeout=TIMEOUT).status_code == 401
    assert time.monotonic() - started < 10


def test_the_default_port_is_not_one_airflow_uses():
    from airflow_provider_azerion.emulator.cli import build_parser

    port = build_parser().parse_args([]).port
    # 8080: the api-server (and the old webserver); 8793: the worker log server; 8794: the triggerer's.
    assert port not in (8080, 8793, 8794)
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert f"azerion-emulator --port {port}" in readme or f"127.0.0.1:{port}" in readme
