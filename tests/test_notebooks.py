"""The teaching notebooks: stored clean, shaped alike, and every one runs top to bottom."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
IDS = [p.stem for p in PATHS]


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_the_series_is_numbered_from_zero() -> None:
    """The notebooks are numbered 00, 01, 02 ... with no gaps, one idea each."""
    numbers = [int(p.name[:2]) for p in PATHS]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 10


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_stored_without_outputs(path: Path) -> None:
    """No notebook is stored with outputs or execution counts."""
    for cell in load(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored output"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_has_intro_parameters_and_an_exercise(path: Path) -> None:
    """Each notebook opens with prose, has a tagged parameters cell first among code, and a Try-it exercise."""
    cells = load(path).cells
    assert cells[0].cell_type == "markdown", "starts with an introduction"
    first_code = next(c for c in cells if c.cell_type == "code")
    assert "parameters" in first_code.metadata.get("tags", []), "first code cell is the parameters cell"
    exercises = [c for c in cells if c.cell_type == "markdown" and "Try it" in c.source]
    assert exercises, "has at least one exercise"
    assert any("<details>" in c.source for c in cells if c.cell_type == "markdown"), "solutions can be revealed"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_never_shows_a_password(path: Path) -> None:
    """No notebook source spells out a password in a URL."""
    text = path.read_text()
    assert not re.search(r"://[^:/@\s\"']+:[^@\s\"'*]+@", text), "a URL with a password"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    """The notebook executes top to bottom with small parameters and no error."""
    from nbclient import NotebookClient

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ["POOLVIZ_SMALL"] = "1"
    os.environ["POOLVIZ_PLAIN_PROGRESS"] = "1"
    notebook = load(path)
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_three_pools_runs_on_sqlite_without_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 13 with no PostgreSQL: peewee and SQLAlchemy run on SQLite, each psycopg_pool part says it skipped."""
    text = run_without_postgresql("13_three_pools_one_workload.ipynb", tmp_path, monkeypatch)
    assert "this section runs on SQLite instead" in text
    assert text.count("skipped: psycopg_pool connects to PostgreSQL only") >= 5
    assert "Done: 2 of 3 configurations ran side by side" in text


def run_without_postgresql(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run notebook ``name`` with its small parameters and nothing listening for PostgreSQL; its printed text.

    Fails on any cell's error.
    """
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("POOLVIZ_SMALL", "1")
    monkeypatch.setenv("POOLVIZ_PLAIN_PROGRESS", "1")
    monkeypatch.setenv("POOLVIZ_PG_URL", "postgresql+pool://postgres@127.0.0.1:1/test")  # nothing listens there
    notebook = load(NOTEBOOKS / name)
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
