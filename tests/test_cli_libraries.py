"""``poolviz run --pool peewee|sqlalchemy|psycopg``: each library's run, its trace's meta, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poolviz.cli import main
from poolviz.data.traces import load_events
from poolviz.testing import poolviz_cli

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg_pool")

SMALL = ["--workers", "3", "--requests", "4", "--hold-ms", "2", "--quiet"]
# Nothing listens here: a refusal that names the bad input proves nothing tried to connect first.
NOWHERE = "postgresql://app:s3cret@127.0.0.1:1/test"


@pytest.mark.parametrize(
    ("library", "options", "recorded"),
    [
        ("peewee", ["--max-connections", "2"], {"library": "peewee", "max_connections": 2}),
        (
            "sqlalchemy",
            ["--pool-size", "2", "--max-overflow", "1", "--use-lifo", "--pre-ping", "--recycle", "60"],
            {"library": "sqlalchemy", "pool_size": 2, "max_overflow": 1, "use_lifo": True, "pre_ping": True},
        ),
        (
            "psycopg",
            ["--min-size", "1", "--max-size", "2", "--max-waiting", "8", "--max-lifetime", "120"],
            {"library": "psycopg_pool", "min_size": 1, "max_size": 2, "max_waiting": 8, "max_lifetime": 120.0},
        ),
    ],
)
def test_run_writes_a_trace_naming_the_library_and_its_settings(
    pg_url: str, tmp_path: Path, library: str, options: list[str], recorded: dict[str, object]
) -> None:
    """Each library's run on PostgreSQL: every request served, the trace's meta names the library and settings."""
    url = pg_url if library == "peewee" else pg_url.replace("+pool", "")
    out = tmp_path / library
    assert main(["run", "--pool", library, "--url", url, *options, *SMALL, "--out", str(out)]) == 0
    frame = load_events(out / "events.csv")
    assert {key: frame.attrs[key] for key in recorded} == recorded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["library"] == recorded["library"] and summary["requests"] == 12
    assert int((frame["kind"] == "checkout").sum()) == 12


def test_report_prints_the_library(pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``report`` on a SQLAlchemy trace says whose pool it was."""
    out = tmp_path / "run"
    url = pg_url.replace("+pool", "")
    assert main(["run", "--pool", "sqlalchemy", "--url", url, *SMALL, "--out", str(out)]) == 0
    assert main(["report", str(out / "events.csv")]) == 0
    assert "events.csv: sqlalchemy pool, 12 requests" in capsys.readouterr().out


def test_sqlalchemy_runs_on_sqlite_by_default(tmp_path: Path) -> None:
    """Without --url the run uses SQLite in --out, for SQLAlchemy as for peewee."""
    out = tmp_path / "out"
    assert main(["run", "--pool", "sqlalchemy", "--pool-size", "2", *SMALL, "--out", str(out)]) == 0
    frame = load_events(out / "events.csv")
    assert (frame.attrs["library"], frame.attrs["backend"]) == ("sqlalchemy", "sqlite")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--pool", "psycopg", "--url", "mysql://root@127.0.0.1:1/test"], ["PostgreSQL only", "MariaDB"]),
        (["--pool", "psycopg"], ["--pool psycopg connects to PostgreSQL only, not SQLite"]),
        (
            ["--pool", "sqlalchemy", "--url", NOWHERE, "--max-size", "3"],
            ["--max-size is a --pool psycopg setting", "--pool sqlalchemy takes --pool-size, --max-overflow"],
        ),
        (["--pool", "psycopg", "--url", NOWHERE, "--use-lifo"], ["--use-lifo is a --pool sqlalchemy setting"]),
        (["--url", NOWHERE.replace("postgresql", "postgresql+pool"), "--pool-size", "2"], ["--pool peewee takes"]),
        (
            ["--pool", "psycopg", "--url", NOWHERE, "--min-size", "5", "--max-size", "2"],
            ["min_size must be at most max_size (2), got 5"],
        ),
        (["--pool", "sqlalchemy", "--url", NOWHERE, "--timeout", "none"], ["--timeout none is peewee's"]),
        (
            ["--pool", "psycopg", "--url", "mysql+asyncpool://root@127.0.0.1:1/test"],
            ["--pool psycopg connects to PostgreSQL only, not MariaDB"],
        ),
        (
            ["--pool", "sqlalchemy", "--processes", "2", "--url", "postgresql+asyncpool://x:s3cret@127.0.0.1:1/t"],
            ["--processes runs threads", "postgresql+pool://", "+asyncpool runs asyncio tasks"],
        ),
        (["--pool", "django"], ["invalid choice: 'django'", "peewee", "sqlalchemy", "psycopg"]),
    ],
)
def test_bad_library_input_is_refused_before_anything_connects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    """A library that cannot take the URL or an option of another library: one line naming it, exit 2, no files."""
    out = tmp_path / "out"
    try:
        code = main(["run", *argv, "--out", str(out)])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "s3cret" not in err
    for word in words:
        assert word in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("library", "server", "options", "recorded"),
    [
        (
            "sqlalchemy",
            "pg_url",
            ["--pool-size", "2", "--max-overflow", "1", "--use-lifo"],
            {"library": "sqlalchemy", "pool": "AsyncAdaptedQueuePool", "pool_size": 2, "max_overflow": 1},
        ),
        (
            "sqlalchemy",
            "mysql_url",
            ["--pool-size", "2", "--pre-ping"],
            {"library": "sqlalchemy", "pool": "AsyncAdaptedQueuePool", "backend": "mysql", "pre_ping": True},
        ),
        (
            "psycopg",
            "pg_url",
            ["--min-size", "1", "--max-size", "2", "--max-waiting", "8"],
            {"library": "psycopg_pool", "pool": "AsyncConnectionPool", "min_size": 1, "max_size": 2},
        ),
    ],
)
def test_an_asyncpool_url_runs_tasks_on_the_library_asyncio_pool(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    library: str,
    server: str,
    options: list[str],
    recorded: dict[str, object],
) -> None:
    """``--pool sqlalchemy|psycopg`` on a +asyncpool URL: tasks on an AsyncEngine or AsyncConnectionPool, all served."""
    url = str(request.getfixturevalue(server)).replace("+pool://", "+asyncpool://")
    out = tmp_path / library
    done = poolviz_cli("run", "--pool", library, "--url", url, *options, *SMALL, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = load_events(out / "events.csv")
    assert {key: frame.attrs[key] for key in recorded} == recorded
    summary = json.loads((out / "summary.json").read_text())
    assert summary["library"] == recorded["library"]
    assert (summary["workload"]["concurrency"], summary["workload"]["requests_ok"]) == ("asyncio", 12)
    assert int((frame["kind"] == "checkout").sum()) == 12
    assert set(frame.loc[frame["kind"] == "checkout", "thread"]) == {"task-0", "task-1", "task-2"}
    assert (out / "server.csv").exists()


def test_an_asyncpool_open_loop_runs_on_a_psycopg_async_pool(pg_url: str, tmp_path: Path) -> None:
    """``--open-loop`` on a +asyncpool URL with ``--pool psycopg``: one task per arrival, every arrival served."""
    url = pg_url.replace("+pool://", "+asyncpool://")
    out = tmp_path / "open"
    argv = ["--open-loop", "--rate", "400", "--requests", "10", "--hold-ms", "2", "--quiet"]
    done = poolviz_cli(
        "run", "--pool", "psycopg", "--max-size", "2", "--url", url, *argv, "--out", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["workload"]["mode"], summary["workload"]["requests_ok"]) == ("open", 10)
    assert load_events(out / "events.csv").attrs["pool"] == "AsyncConnectionPool"


def test_sqlalchemy_asyncio_runs_on_sqlite_with_aiosqlite(tmp_path: Path) -> None:
    """A sqlite+asyncpool URL with ``--pool sqlalchemy``: an AsyncEngine on aiosqlite, no server needed."""
    out = tmp_path / "out"
    url = f"sqlite+asyncpool:///{tmp_path / 'async.db'}"
    done = poolviz_cli("run", "--pool", "sqlalchemy", "--url", url, *SMALL, "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = load_events(out / "events.csv")
    assert (frame.attrs["pool"], frame.attrs["url"]) == (
        "AsyncAdaptedQueuePool",
        f"sqlite+aiosqlite:///{tmp_path / 'async.db'}",
    )
    assert int((frame["kind"] == "checkout").sum()) == 12


def test_sweep_refuses_an_asyncpool_url_naming_the_threaded_form(tmp_path: Path) -> None:
    """``poolviz sweep`` runs threads: a +asyncpool URL is refused with the +pool URL to give, exit 2, no files."""
    out = tmp_path / "out"
    url = f"sqlite+asyncpool:///{tmp_path / 'sweep.db'}"
    done = poolviz_cli("sweep", "--pool", "sqlalchemy", "--url", url, "--quiet", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"poolviz sweep: error: poolviz sweep runs threads: give --url as sqlite+pool://..., not {url!r} "
        "(+asyncpool runs asyncio tasks in one process with poolviz run)"
    ]
    assert not out.exists()


def test_factory_builds_asyncio_pools_from_an_asyncpool_url(tmp_path: Path) -> None:
    """``factory.build`` on a +asyncpool URL gives the asyncio pool; asyncio=False refuses it, naming the +pool form."""
    from sqlalchemy.ext.asyncio import AsyncEngine

    from poolviz.pools import factory

    url = f"sqlite+asyncpool:///{tmp_path / 'async.db'}"
    engine = factory.build("sqlalchemy", url, pool_size=2)
    assert isinstance(engine, AsyncEngine) and engine.sync_engine.pool.size() == 2
    with pytest.raises(TypeError, match="AsyncEngine is an asyncio pool: close it with await factory.aclose"):
        factory.close(engine)
    with pytest.raises(ValueError, match=r"asyncio=False, but '.*' is an asyncio URL: give it as 'sqlite\+pool:///"):
        factory.build("sqlalchemy", url, asyncio=False)
    with pytest.raises(ValueError, match="psycopg_pool pools connect to PostgreSQL only"):
        factory.build("psycopg", url)
