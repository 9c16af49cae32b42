"""Notebook 14 without PostgreSQL: it says so, runs the practice app on SQLite, and its story holds there too."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks import run_without_postgresql

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "14_your_own_app_live.ipynb"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_your_own_app_runs_on_sqlite_without_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no PostgreSQL the notebook says it uses SQLite, finds the leak at send_welcome and leaves no process."""
    pytest.importorskip("flask")
    pytest.importorskip("gunicorn")
    text = run_without_postgresql(NOTEBOOK.name, tmp_path, monkeypatch)
    assert "this section runs on SQLite instead" in text
    assert "in send_welcome; the first leak's stack" in text
    assert text.count("processes of its group still running: []") == 2
