"""Notebook 14 without PostgreSQL: it says so, runs the practice app on SQLite, and its story holds there too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

from poolviz.testing import free_port

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "14_your_own_app_live.ipynb"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_your_own_app_runs_on_sqlite_without_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no PostgreSQL the notebook says it uses SQLite, finds the leak at send_welcome and leaves no process."""
    pytest.importorskip("flask")
    pytest.importorskip("gunicorn")
    from nbclient import NotebookClient

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("POOLVIZ_SMALL", "1")
    monkeypatch.setenv("POOLVIZ_PG_URL", f"postgresql+pool://postgres@127.0.0.1:{free_port()}/test")  # nobody there
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "this section runs on SQLite instead" in text
    assert "in send_welcome; the first leak's stack" in text
    assert text.count("processes of its group still running: []") == 2
