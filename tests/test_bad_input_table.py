"""Every row of the README's bad-input table is a test."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any, NamedTuple

import peewee
import pytest

import poolviz
import poolviz.workload

README = Path(__file__).resolve().parent.parent / "README.md"


class Row(NamedTuple):
    """One row: ``Python`` or ``CLI``, the input, and text the error must contain."""

    where: str
    given: str
    error: str


def bad_input_section(path: Path) -> str:
    """The README's "Bad input" section, up to the next heading."""
    text = path.read_text(encoding="utf-8")
    start = text.index("\n## Bad input")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def read_table(section: str) -> list[Row]:
    """The rows of the markdown table in ``section`` (backticks around cells removed)."""
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or re.fullmatch(r"\|(\s*-+\s*\|)+", line):
            continue
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        rows.append(Row(*cells))
    header, *body = rows
    assert header == ("Where", "Input", "Error")
    return body


ROWS = read_table(bad_input_section(README))


def test_table_is_well_formed() -> None:
    """The table has rows, each says where it runs, and no input appears twice."""
    assert len(ROWS) >= 20
    assert {row.where for row in ROWS} == {"Python", "CLI"}
    assert len({row.given for row in ROWS}) == len(ROWS)
    assert all(row.given.startswith("poolviz ") for row in ROWS if row.where == "CLI")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("row", ROWS, ids=[row.given for row in ROWS])
def test_row(row: Row, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The input fails with an error containing the table's text (CLI: on stderr, exit status 2)."""
    monkeypatch.chdir(tmp_path)  # CLI runs create their --out folder relative to here
    if row.where == "Python":
        namespace: dict[str, Any] = {
            "poolviz": poolviz,
            "peewee": peewee,
            "workload": poolviz.workload,
            "otel": importlib.import_module("poolviz.otel"),
            "practice": importlib.import_module("poolviz.practice"),
        }
        with pytest.raises(Exception) as info:
            eval(row.given, namespace)
        shown = f"{type(info.value).__name__}: {info.value}"
        assert row.error in shown
    else:
        from poolviz.cli import main

        status: Any
        try:
            status = main(shlex.split(row.given)[1:])
        except SystemExit as exit_:
            status = exit_.code
        assert status == 2
        assert row.error in capsys.readouterr().err
