"""Build the notebooks as static web pages: run each with its defaults, render it to HTML, list them in an index.

    python docs/build.py                      # every notebook, into build/docs/
    python docs/build.py 00 03 --out DIR      # a subset, chosen by number or file name

Each notebook runs in a fresh kernel from the notebooks/ folder, as JupyterLab would run it, so it
uses MariaDB and PostgreSQL when they answer and falls back to SQLite when they do not. nbclient
executes, nbconvert's HTMLExporter renders (plots are embedded as PNG data), and the index comes
from a template filled with each notebook's first heading and first sentence. A notebook that
fails is reported and left out; the build then exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUT = ROOT / "build" / "docs"

INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>poolviz notebooks</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
li { margin: 0.6rem 0; }
.note { color: #555; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>poolviz notebooks</h1>
<p>The teaching series, run top to bottom with each notebook's default parameters.</p>
<ul>
{% for page in pages %}<li><a href="{{ page.href }}">{{ page.title }}</a>: {{ page.summary }}
  <span class="note">(runs in {{ "%.0f" | format(page.seconds) }} s)</span></li>
{% endfor %}</ul>
<p class="note">Built {{ built }} by docs/build.py with Python {{ python }}.</p>
</body>
</html>
"""


def select(wanted: list[str]) -> list[Path]:
    """The numbered notebooks in order, or those whose file name starts with one of `wanted`."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not wanted:
        return paths
    chosen = [p for p in paths if any(p.name.startswith(w) or p.stem == w for w in wanted)]
    unknown = [w for w in wanted if not any(p.name.startswith(w) or p.stem == w for p in paths)]
    if unknown:
        names = ", ".join(p.stem for p in paths)
        raise SystemExit(f"no notebook matches {', '.join(map(repr, unknown))}; choose from {names}")
    return chosen


def title_and_summary(notebook: dict) -> tuple[str, str]:
    """The first markdown heading, and the first sentence of the prose under it, as plain text."""
    source = next(c.source for c in notebook.cells if c.cell_type == "markdown")
    lines = source.splitlines()
    title = next((line.lstrip("#").strip() for line in lines if line.startswith("#")), "")
    prose = " ".join(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    sentence = re.split(r"(?<=[.!?])\s", prose, maxsplit=1)[0]
    return re.sub(r"[*`]", "", title), re.sub(r"[*`]", "", sentence)


def build_one(path: Path, out: Path, kernel_log: IO[bytes]) -> tuple[str, str, float]:
    """Execute one notebook with its defaults and write it as out/<stem>.html; return title, summary, seconds."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # The kernel's own stderr (start-up notices) goes to a log; what cells print is in the page.
    client.execute(stdout=kernel_log, stderr=kernel_log)
    seconds = time.monotonic() - started
    title, summary = title_and_summary(notebook)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook, resources={"metadata": {"name": title}})
    (out / f"{path.stem}.html").write_text(html, encoding="utf-8")
    return title, summary, seconds


def write_index(pages: list[dict], out: Path) -> Path:
    """Write out/index.html listing the built pages in order, one line each."""
    import jinja2

    template = jinja2.Environment(autoescape=True).from_string(INDEX_TEMPLATE)
    index = out / "index.html"
    index.write_text(
        template.render(
            pages=pages,
            built=time.strftime("%Y-%m-%d %H:%M"),
            python=".".join(map(str, sys.version_info[:3])),
        ),
        encoding="utf-8",
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 00 04_exhaustion_and_timeouts")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    paths = select(args.notebooks)
    args.out.mkdir(parents=True, exist_ok=True)
    # The kernel must be this environment's Python, whatever `python` means on PATH.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    # Defaults, not the test suite's quick settings.
    os.environ.pop("POOLVIZ_SMALL", None)
    # A saved progress widget shows only its first state: print one closing line per bar instead.
    os.environ["POOLVIZ_PLAIN_PROGRESS"] = "1"

    pages, failed, started = [], [], time.monotonic()
    for path in paths:
        print(f"    {path.name} ...", end=" ", flush=True)
        with tempfile.TemporaryFile() as kernel_log:
            try:
                title, summary, seconds = build_one(path, args.out, kernel_log)
            except Exception as error:
                kernel_log.seek(0)
                print("failed")
                print(f"{error}"[-2000:], kernel_log.read().decode(errors="replace")[-2000:], file=sys.stderr)
                failed.append(path.name)
                continue
        print(f"{seconds:.0f} s")
        pages.append({"href": f"{path.stem}.html", "title": title, "summary": summary, "seconds": seconds})
    index = write_index(pages, args.out)
    print(f"    {len(pages)} page(s) in {time.monotonic() - started:.0f} s; open {index}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
