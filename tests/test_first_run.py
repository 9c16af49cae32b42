"""A newcomer's first commands, run as they would run them: `make lab`, `make docs`, and a first `make setup`.

Each runs `make` from the repository root as the user the tests run as (root in most containers and
in CI). Only what a newcomer's screen would show is changed: JupyterLab gets a port, a token and
fresh config and runtime folders, and opens no browser. These tests are slow (seconds to a minute
each), so `make check` leaves them out and `make test` runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poolviz.testing import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
START = "00_start_here.ipynb"
PNG = re.compile(r'<img[^>]+src="data:image/png;base64,')


def make_command(*args: str) -> list[str]:
    """`make ARGS`, using the venv these tests run in: .venv by default, or the one VENV= named for `make test`."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = Path(sys.prefix)
    if not (venv / ".poolviz-installed").exists():
        pytest.skip(f"the tests are not running in a venv made by `make setup` ({venv}): run them with `make test`")
    command = ["make", *args]
    if venv != ROOT / ".venv":
        command.append(f"VENV={venv}")
    return command


def newcomer_env(**extra: str) -> dict[str, str]:
    """The environment of a shell in the repository, without what an enclosing `make test` passes down."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "POOLVIZ_SMALL"}}
    env.update(extra)
    return env


def process_table() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, start time), zombies left out (they are gone, just not reaped)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> set[tuple[int, str]]:
    """The (pid, start time) of `pid` and every process below it: make, JupyterLab, its kernels."""
    table = process_table()
    found = {pid}
    grew = True
    while grew:
        below = {p for p, (parent, _) in table.items() if parent in found}
        grew = not below <= found
        found |= below
    return {(p, table[p][1]) for p in found if p in table}


def still_running(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = process_table()
    return {(p, start) for p, start in processes if p in table and table[p][1] == start}


def stop(make: subprocess.Popen[bytes], processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Ctrl-C's effect, by signal: SIGTERM to make's process group; returns whatever is still running after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(make.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while still_running(processes) and time.monotonic() < deadline:
        make.poll()
        time.sleep(0.2)
    left = still_running(processes)
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    make.wait(10)
    return left


def api(url: str, token: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    """One call to the Jupyter server's REST API, authenticated with the token."""
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


async def execute(ws_url: str, code: str) -> tuple[str, list[str]]:
    """Run `code` through the kernel's websocket, as JupyterLab does; returns its stdout and any error names."""
    from tornado.websocket import websocket_connect

    session, msg_id = uuid.uuid4().hex, uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": session,
            "username": "newcomer",
            "date": "",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "buffers": [],
    }
    ws = await websocket_connect(ws_url)
    try:
        await ws.write_message(json.dumps(request))
        stdout, errors, replied, idle = [], [], False, False
        while not (replied and idle):
            raw = await asyncio.wait_for(ws.read_message(), timeout=60)
            assert raw is not None, "the kernel's websocket closed"
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content["name"] == "stdout":
                stdout.append(content["text"])
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return "".join(stdout), errors
    finally:
        ws.close()


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`make lab` from the repository root, answering on a free port; stopped at teardown, leaving no process."""
    command = make_command("lab", "LAB_ARGS=--no-browser")
    dirs = {name: tmp_path / name for name in ("config", "runtime", "settings", "workspaces")}
    for path in dirs.values():
        path.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = newcomer_env(
        JUPYTER_PORT=str(port),
        JUPYTER_TOKEN=token,
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
    )
    log_path = tmp_path / "make-lab.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    processes: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + 120
        while True:
            processes |= descendants(make.pid)
            if make.poll() is not None:
                pytest.fail(f"`make lab` exited with {make.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                api(f"{url}/api/status", token)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"`make lab` did not answer in 120 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        yield {"url": url, "token": token, "log": log_path, "processes": processes, "make": make}
    finally:
        processes |= descendants(make.pid)
        left = stop(make, processes)
    assert not left, f"left running after `make lab` was stopped: {sorted(left)}"


def test_make_lab_serves_the_notebooks_and_a_kernel_that_imports_poolviz(make_lab: dict[str, Any]) -> None:
    """`make lab` starts (as root too), lists every numbered notebook, opens on 00, and its kernels import poolviz."""
    url, token = make_lab["url"], make_lab["token"]
    listing = api(f"{url}/api/contents", token)
    assert sorted(item["name"] for item in listing["content"] if item["type"] == "notebook") == NOTEBOOKS
    assert len(NOTEBOOKS) >= 10

    with urllib.request.urlopen(f"{url}/?token={token}", timeout=30) as landing:
        assert landing.url.split("?")[0] == f"{url}/lab/tree/{START}", "the server opens on the first notebook"

    kernel = api(f"{url}/api/kernels", token, "POST", {"name": "python3"})
    make_lab["processes"] |= descendants(make_lab["make"].pid)
    ws_url = f"ws://127.0.0.1:{url.rsplit(':', 1)[1]}/api/kernels/{kernel['id']}/channels?token={token}"
    stdout, errors = asyncio.run(execute(ws_url, "import poolviz; print(poolviz.__file__)"))
    assert errors == []
    assert Path(stdout.strip()).parent == ROOT / "poolviz"

    printed = make_lab["log"].read_text()
    assert re.search(rf"http://\S+/lab/tree/{START}\?token=", printed), "prints the address to open"
    root_line = "passing --allow-root" in printed
    assert root_line == (os.geteuid() == 0), "says so, in one line, exactly when it runs as root"


@pytest.mark.timeout(600)
def test_make_docs_renders_notebooks_with_their_plots_and_an_index(tmp_path: Path) -> None:
    """`make docs` on two notebooks executes them with defaults and writes HTML pages with PNG plots and an index."""
    out = tmp_path / "docs"
    chosen = ["04_exhaustion_and_timeouts", "06_leaks"]
    command = make_command("docs", f"DOCS_ARGS={' '.join(chosen)} --out {out}")
    result = subprocess.run(command, cwd=ROOT, env=newcomer_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert sorted(p.name for p in out.glob("*.html")) == sorted([*(f"{n}.html" for n in chosen), "index.html"])
    for name in chosen:
        page = (out / f"{name}.html").read_text()
        assert PNG.search(page), f"{name}.html has no embedded plot"
        assert "Traceback" not in page and 'data-mime-type="application/vnd.jupyter.stderr"' not in page
    index = (out / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)">', index)
    assert links == [f"{n}.html" for n in chosen], "the index lists the pages in order"


@pytest.mark.timeout(900)
def test_first_setup_prints_only_progress_lines(tmp_path: Path) -> None:
    """A first `make setup` into an empty venv prints a few progress lines and its duration, no warning walls."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    try:
        result = subprocess.run(
            ["make", "setup", f"VENV={venv}"],
            cwd=ROOT,
            env=newcomer_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        installed = (venv / "bin" / "jupyter").exists()
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # about a gigabyte; pytest would keep three runs of it
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = (result.stdout + result.stderr).splitlines()
    assert all(line.startswith("==> ") for line in lines), "\n".join(lines)
    assert len(lines) <= 4
    assert re.match(r"==> set up in \d+ s", lines[-1])
    assert installed, "the venv has JupyterLab"
