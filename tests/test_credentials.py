"""A password given in a database URL never shows: not in events, frames, logs, errors, CLI output or files.

Real MariaDB users are created with distinctive passwords, so the pool really
logs in with them; PostgreSQL (trust authentication) ignores the password, so
there it passes only through poolviz's own handling. Every place a user can
see is gathered and searched for the password and for pieces of it (a
half-masked password is a leaked password).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import poolviz
from poolviz import servers
from poolviz.testing import kinds, poolviz_cli

FRAGMENTS = ("7f3a9", "zebra")  # in every password below; finding either is a leak


@dataclass(frozen=True)
class Case:
    """A URL carrying ``password`` for ``user``, and the same URL with a wrong password."""

    user: str
    password: str
    url: str
    wrong_url: str


def mysql_case(user: str, password: str, form: str) -> Case:
    """A MariaDB URL with the password in the userinfo (raw or percent-encoded) or the query string."""

    def url(pw: str) -> str:
        if form == "query":
            return f"mysql+pool://{user}@127.0.0.1:3306/test?password={quote(pw, safe='')}"
        shown = quote(pw, safe="") if form == "encoded" else pw
        return f"mysql+pool://{user}:{shown}@127.0.0.1:3306/test"

    return Case(user, password, url(password), url("wrong-" + password))


MYSQL_CASES = {
    "userinfo": mysql_case("pvsecret", "Pw-7f3a9-zebra", "raw"),
    "query-string": mysql_case("pvsecret", "Pw-7f3a9-zebra", "query"),
    "percent-encoded": mysql_case("pvsecret_enc", "Pw@7f3a9:zebra", "encoded"),
    "raw-at-sign": mysql_case("pvsecret_at", "Pw@7f3a9-zebra", "raw"),
}


@pytest.fixture(scope="module")
def mysql_users(mysql_url: str) -> Iterator[None]:
    """The cases' MariaDB users, created (or reset) through root over TCP, dropped afterwards."""
    pymysql = pytest.importorskip("pymysql")
    users = {(c.user, c.password) for c in MYSQL_CASES.values()}
    try:
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)
    except pymysql.MySQLError as exc:
        message = f"cannot create MariaDB users as root over TCP: {exc}"
        if servers.servers_required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        with admin.cursor() as cur:
            for user, password in users:
                for host in ("127.0.0.1", "localhost"):
                    cur.execute(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY %s", (password,))
                    cur.execute(f"ALTER USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
                    cur.execute(f"GRANT ALL ON test.* TO '{user}'@'{host}'")
        yield
        with admin.cursor() as cur:
            for user, _ in users:
                for host in ("127.0.0.1", "localhost"):
                    cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
    finally:
        admin.close()


class Exposure:
    """Everything a user could see, by where it was seen."""

    def __init__(self) -> None:
        self.places: dict[str, str] = {}

    def add(self, place: str, value: Any) -> None:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        self.places[place] = self.places.get(place, "") + text + "\n"

    def add_exception(self, place: str, exc: BaseException) -> None:
        self.add(place, f"{exc}\n{exc!r}\n{''.join(traceback.format_exception(exc))}")

    def add_pool(self, place: str, db: Any, tmp_path: Path) -> None:
        from poolviz.data.traces import save_events

        events = db.events.snapshot()
        frame = db.events.to_frame()
        self.add(f"{place}: repr/str", f"{db!r} {db}")
        self.add(f"{place}: event fields", [tuple(e) for e in events])
        self.add(f"{place}: events.to_frame() CSV", frame.to_csv())
        self.add(f"{place}: frame.attrs", json.dumps(frame.attrs, default=str))
        self.add(f"{place}: events.meta", db.events.meta)
        self.add(f"{place}: get_stats()", db.events.get_stats())
        trace = save_events(frame, tmp_path / f"{place.replace(' ', '_')}.csv")
        for path in sorted(trace.parent.glob(trace.stem + "*")):
            self.add(f"{place}: saved trace {path.name}", path.read_bytes())

    def add_tree(self, place: str, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.add(f"{place}: file {path.relative_to(folder)}", path.read_bytes())

    def leaks(self, password: str) -> list[str]:
        """``place: what`` for every place showing the password, its encoded form, or a piece of it."""
        needles = sorted({password, quote(password, safe=""), *FRAGMENTS})
        found = {place: [n for n in needles if n in text] for place, text in self.places.items()}
        return [f"{place}: {', '.join(map(repr, shown))}" for place, shown in found.items() if shown]

    def assert_no_leak(self, password: str) -> None:
        leaks = self.leaks(password)
        assert not leaks, f"the password shows in {len(leaks)} places:\n" + "\n".join(leaks)


def exercise_in_process(
    case: Case, seen: Exposure, caplog: pytest.LogCaptureFixture, tmp_path: Path, **kwargs: Any
) -> None:
    """Requests, a closed-loop workload and a refused login, in this process, with DEBUG logging captured."""
    from poolviz.workload import run_closed_loop

    with caplog.at_level(logging.DEBUG, logger="poolviz"), caplog.at_level(logging.DEBUG, logger="peewee"):
        db = poolviz.connect(case.url, max_connections=2, **kwargs)
        try:
            for _ in range(3):
                with db.connection_context():
                    db.execute_sql("SELECT 1").fetchone()
            result = run_closed_loop(db, workers=2, requests=3, hold=0)
            seen.add("workload summary", result.summary())
            seen.add("workload requests", result.requests_frame().to_csv())
            seen.add("workload events", result.events.to_csv())
        finally:
            db.close_all()
        seen.add_pool("good pool", db, tmp_path)

        bad = poolviz.connect(case.wrong_url, max_connections=2, **kwargs)
        with pytest.raises(Exception) as refused, bad.connection_context():
            bad.execute_sql("SELECT 1")
        seen.add_exception("refused login: exception", refused.value)
        assert kinds(bad) == ["error"]
        seen.add_pool("refused pool", bad, tmp_path)
        failed = run_closed_loop(bad, workers=1, requests=2, hold=0, setup=False, cleanup=False)
        seen.add("refused workload", [r.error_message for r in failed.records])
        seen.add("servers.reachable", [servers.reachable(case.url), servers.reachable(case.wrong_url)])
    seen.add("logs (poolviz, peewee at DEBUG)", caplog.text)
    seen.add("log records", [(r.getMessage(), r.args, r.exc_text) for r in caplog.records])


def exercise_cli(case: Case, seen: Exposure, tmp_path: Path) -> None:
    """``poolviz run`` with the URL and with the wrong password, then ``report``: output and every file written."""
    small = ["--workers", "2", "--requests", "3", "--hold-ms", "0"]
    good = poolviz_cli("run", "--url", case.url, *small, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    bad = poolviz_cli("run", "--url", case.wrong_url, *small, "--out", str(tmp_path / "refused"), cwd=tmp_path)
    assert bad.returncode == 2 and "refused" in bad.stderr
    redrawn = poolviz_cli(
        "report", str(tmp_path / "run" / "events.csv"), "--out", str(tmp_path / "report"), cwd=tmp_path
    )
    assert redrawn.returncode == 0, redrawn.stderr
    for name, done in (("run", good), ("run with wrong password", bad), ("report", redrawn)):
        seen.add(f"cli {name}: stdout", done.stdout)
        seen.add(f"cli {name}: stderr", done.stderr)
    for folder in ("run", "refused", "report"):
        if (tmp_path / folder).exists():
            seen.add_tree(f"cli --out {folder}", tmp_path / folder)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("form", list(MYSQL_CASES))
def test_mysql_password_never_shows(
    form: str, mysql_users: None, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A MariaDB password (in the URL's userinfo, query string, percent-encoded or with a raw @) shows nowhere."""
    case = MYSQL_CASES[form]
    seen = Exposure()
    exercise_in_process(case, seen, caplog, tmp_path)
    exercise_cli(case, seen, tmp_path)
    seen.assert_no_leak(case.password)


PG_PASSWORD = "Pw-7f3a9-zebra"
PG_CASES = {
    "userinfo": Case(
        "postgres",
        PG_PASSWORD,
        f"postgresql+pool://postgres:{PG_PASSWORD}@127.0.0.1:5432/test",
        f"postgresql+pool://postgres:{PG_PASSWORD}@127.0.0.1:5432/pv_no_such_db",
    ),
    "query-string": Case(
        "postgres",
        PG_PASSWORD,
        f"postgresql+pool://postgres@127.0.0.1:5432/test?password={PG_PASSWORD}",
        f"postgresql+pool://postgres@127.0.0.1:5432/pv_no_such_db?password={PG_PASSWORD}",
    ),
}


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg3"])
@pytest.mark.parametrize("form", list(PG_CASES))
def test_postgresql_password_never_shows(
    form: str, driver: str, pg_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A password in a PostgreSQL URL shows nowhere; the 'wrong' URL names a missing database to force an error."""
    case = PG_CASES[form]
    seen = Exposure()
    exercise_in_process(case, seen, caplog, tmp_path, **({"prefer_psycopg3": True} if driver == "psycopg3" else {}))
    if driver == "psycopg2":
        exercise_cli(case, seen, tmp_path)
    seen.assert_no_leak(case.password)


def test_distinctive_fragments_are_in_every_password() -> None:
    """The leak search looks for pieces of the password, so every test password must contain them."""
    for case in [*MYSQL_CASES.values(), *PG_CASES.values()]:
        assert all(fragment in case.password for fragment in FRAGMENTS)
        assert "***" not in case.password
