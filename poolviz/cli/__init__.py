"""The command line: ``python -m poolviz run | sweep | report`` (also the ``poolviz`` script).

``run`` drives one workload through an instrumented pool and writes the trace,
a summary and three pictures; ``sweep`` repeats a closed loop over several
pool sizes; ``report`` redraws a saved trace. SQLite is the default database
(a file in the output folder), so every command works with nothing else
installed. Bad input ends with one line on stderr naming the value and exit
code 2; URLs are shown with their passwords masked.

``--pool peewee|sqlalchemy|psycopg`` picks the pool library, with that
library's own settings as options (``pools``: which option is whose, checked
before anything connects).

``parser`` (the options), ``values`` (their types), ``pools`` (the pool
library's options), ``commands`` (what each command does), ``runs`` (the
three ways to run a workload: threads, asyncio tasks, worker processes; the
workloads themselves know nothing of the command line) and ``output`` (the
files, the progress bar and the closing line).
"""

from __future__ import annotations

from .commands import main
from .output import progress_bar
from .parser import EXIT_USAGE, build_parser
from .values import UsageError

__all__ = ["EXIT_USAGE", "UsageError", "build_parser", "main", "progress_bar"]
