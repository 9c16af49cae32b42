"""WorkloadSpec: the one checked closed-loop workload the command line, the dashboard and Compare share."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import poolviz
from poolviz.cli import build_parser
from poolviz.live.settings import DashboardSettings
from poolviz.workload import WorkloadSpec


def test_the_cli_and_the_dashboard_default_to_the_spec() -> None:
    """`poolviz run` and the dashboard start from WorkloadSpec's defaults, not from defaults of their own."""
    spec = WorkloadSpec()
    args = build_parser().parse_args(["run"])
    cli = (args.workers, args.requests, args.hold_ms, args.think_ms, args.distribution, args.seed)
    assert cli == (spec.workers, spec.requests, spec.hold_ms, spec.think_ms, spec.distribution, spec.seed)
    d = DashboardSettings()
    assert (d.workers, d.hold_ms, d.think_ms, d.distribution, d.seed) == (
        spec.workers,
        spec.hold_ms,
        spec.think_ms,
        spec.distribution,
        spec.seed,
    )
    assert d.workload() == spec.replace(requests=None, duration=d.duration)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "workers must be a positive integer, got 0"),
        ({"requests": 2.5}, "requests must be a positive integer"),
        ({"hold_ms": -1}, "hold_ms must be a finite number >= 0, got -1"),
        ({"distribution": "gauss"}, "distribution must be one of fixed, exp, uniform, got 'gauss'"),
        ({"seed": "7"}, "seed must be an integer, got '7'"),
        ({"duration": 0}, "duration must be None or a number of seconds > 0, got 0"),
        ({"requests": None}, "a workload needs requests or a duration"),
    ],
)
def test_bad_fields_are_refused_with_the_checks_wording(changes: dict, message: str) -> None:
    """Each bad field raises a ValueError in poolviz.checks' words, naming the field and the value."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WorkloadSpec(**changes)


def test_spellings_become_canonical() -> None:
    """A count given as a digit string becomes an int and a number of milliseconds a float."""
    spec = WorkloadSpec(workers="3", hold_ms=5)
    assert spec.workers == 3 and spec.hold_ms == 5.0 and isinstance(spec.hold_ms, float)


def test_run_stops_at_the_duration_when_there_is_no_request_count(tmp_path: Path) -> None:
    """requests=None with duration=0.3 runs until about 0.3 s, then every worker stops."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'spec.db'}", max_connections=2)
    began = time.perf_counter()
    result = WorkloadSpec(workers=2, requests=None, hold_ms=1, duration=0.3).run(db)
    assert 0.25 < time.perf_counter() - began < 5
    db.close_all()
    assert result.requests > 0 and result.stopped
