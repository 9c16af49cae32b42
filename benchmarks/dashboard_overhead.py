"""What drawing the live dashboard costs the workload: throughput with the render thread over throughput without.

The same SQLite closed loop runs through :class:`poolviz.widgets.PoolDashboard`
three ways, interleaved over several rounds in one process so drift hits
them alike:

* ``headless``: ``fps=0``, no render thread (one frame is drawn after the run);
* ``live``: the dashboard's defaults, at most 5 frames a second and at most
  ``render_budget`` of the time spent drawing;
* ``live, 5 fps``: the budget lifted, so the render thread draws as close to
  5 frames a second as it can.

For each it prints the median throughput ratio against ``headless`` (aim:
>= 0.9 for the defaults), the frame rate reached and the mean cost of one
frame. Run: ``.venv/bin/python benchmarks/dashboard_overhead.py [rounds]``.
"""

from __future__ import annotations

import statistics
import sys
import time

from poolviz.widgets import PoolDashboard

WORKLOAD = {"workers": 8, "max_connections": 4, "hold_ms": 5, "think_ms": 1, "distribution": "exp", "duration": 4.0}
MODES = {
    "headless": {"fps": 0},
    "live": {},
    "live, 5 fps": {"fps": 5.0, "render_budget": 1.0},
}


def one_run(options: dict[str, float]) -> dict[str, float]:
    """Throughput, frames per second and mean frame cost of one dashboard run."""
    dash = PoolDashboard(check_servers=False, **options, **WORKLOAD)
    try:
        assert dash.run(wait=True), dash.messages
        result = dash.result
        assert result is not None and result.requests_failed == 0, dash.messages
        frames = dash.frames_rendered
        return {
            "throughput": result.throughput_rps,
            "fps": frames / result.elapsed_s,
            "frame_ms": 1000.0 * dash.render_seconds / frames if frames else float("nan"),
        }
    finally:
        dash.close()


def main(rounds: int = 5) -> None:
    print(f"workload: {WORKLOAD}, {rounds} interleaved rounds")
    one_run(MODES["live"])  # warm up: imports, fonts, the SQLite file
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for round_ in range(rounds):
        # Alternate the order so neither mode always runs first.
        order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
        for mode in order:
            runs[mode].append(one_run(MODES[mode]))
        line = ", ".join(f"{mode} {runs[mode][-1]['throughput']:.0f}/s" for mode in MODES)
        print(f"round {round_ + 1}: {line}")
        time.sleep(0.2)
    base = [r["throughput"] for r in runs["headless"]]
    print()
    print(f"{'mode':<12} {'throughput':>11} {'ratio':>6} {'frames/s':>9} {'ms/frame':>9}")
    for mode, results in runs.items():
        ratios = [r["throughput"] / b for r, b in zip(results, base, strict=True)]
        print(
            f"{mode:<12} {statistics.median(r['throughput'] for r in results):>9.0f}/s "
            f"{statistics.median(ratios):>6.2f} {statistics.median(r['fps'] for r in results):>9.2f} "
            f"{statistics.median(r['frame_ms'] for r in results):>9.0f}"
        )
    print("\nratio: median over rounds of the mode's throughput / headless throughput in the same round")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
