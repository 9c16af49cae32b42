"""What watching a run costs the workload: throughput with the live view over throughput headless.

The same SQLite closed loop runs through :class:`poolviz.widgets.PoolDashboard`
inside a real IPython kernel (started with jupyter_client, whose IOPub channel
this script drains as a browser's server would), three ways, interleaved over
several rounds in that one kernel process so drift hits them alike:

* ``headless``: ``live=False``, no shipper thread; the events go in one batch
  when the run ends;
* ``live view``: the shipper sends new events as packed binary batches ten
  times a second (what a browser watching the run gets);
* ``png 5 fps``: for contrast, what poolviz did before: a thread redraws the
  whole matplotlib dashboard to PNG bytes in the kernel five times a second
  (through :mod:`poolviz.plots`, as the old widget did; the PNG is not sent).

It first prints the CPU cost of ``since()`` + packing per event. For each
mode it prints the median throughput ratio against ``headless`` in the
same round (aim: >= 0.95 for the live view), the batches a second and bytes
per event sent, the shipper's CPU time per second of run, and the kernel
process's CPU time per request (other load on the machine moves throughput far
more than it moves CPU per request). Run:
``.venv/bin/python benchmarks/dashboard_overhead.py [rounds]``.
"""

from __future__ import annotations

import json
import statistics
import sys

from jupyter_client.manager import start_new_kernel

WORKLOAD = {"workers": 8, "max_connections": 4, "hold_ms": 5, "think_ms": 1, "distribution": "exp", "duration": 4.0}

KERNEL_CODE = """
import json, threading, time
from poolviz import plots
from poolviz.widgets import PoolDashboard, frame_stats
from matplotlib.figure import Figure

WORKLOAD = {workload!r}

def png_loop(dash, stop):
    fig = Figure(figsize=(12, 7), dpi=72)
    while not stop.wait(0.2):
        db = dash.db
        if db is None:
            continue
        frame = db.events.to_frame()
        plots.plot_dashboard(frame, fig=fig, max_connections=db.max_connections)
        png = plots.figure_to_png_bytes(fig)
        frame_stats(frame)

def one_run(mode):
    dash = PoolDashboard(check_servers=False, live=(mode == "live view"), **WORKLOAD)
    stop = threading.Event()
    drawer = threading.Thread(target=png_loop, args=(dash, stop)) if mode == "png 5 fps" else None
    try:
        if drawer:
            drawer.start()
        cpu = time.process_time()
        assert dash.run(wait=True), dash.messages
        cpu = time.process_time() - cpu
        result = dash.result
        assert result is not None and result.requests_failed == 0, dash.messages
        shipper = dash._run.shipper
        view = dash.view
        return {{
            "throughput": result.throughput_rps,
            "batches_per_s": view.batches_sent / result.elapsed_s,
            "bytes_per_event": view.bytes_sent / max(1, view.events_sent),  # binary buffers; headers are JSON
            "ship_cpu_ms_per_s": 1000 * shipper.cpu_s / result.elapsed_s if shipper else 0.0,
            "cpu_us_per_request": 1e6 * cpu / max(1, result.requests),
        }}
    finally:
        stop.set()
        if drawer:
            drawer.join()
        dash.close()
"""

MODES = ("headless", "live view", "png 5 fps")


def run_in_kernel(client, code: str, timeout: float = 120.0) -> str:
    """Execute ``code``; return its stdout. IOPub is drained meanwhile, widget messages included."""
    msg_id = client.execute(code)
    out = ""
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            out += msg["content"]["text"]
        elif kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return out


def packing_cost(n: int = 100_000) -> None:
    """CPU per event of since() + pack() for a batch of ``n`` events, in this process."""
    import time

    from poolviz.events import EventLog
    from poolviz.live.packing import EventPacker

    log = EventLog()
    with log.lock:
        for i in range(n):
            log.record("checkout" if i % 2 else "checkin", i % 8 + 1, f"worker-{i % 16}", 4, 0, 2, wait_s=0.001)
    packer = EventPacker()
    began = time.process_time()
    header, buffers = packer.pack(log.since(0))
    spent = time.process_time() - began
    size = sum(len(b) for b in buffers)
    print(
        f"since() + pack() of {n} events: {1e6 * spent / n:.2f} µs CPU and {size / n:.1f} bytes per event "
        f"(columns: {', '.join(f'{name} {js}' for name, js in header['columns'])})"
    )


def main(rounds: int = 3) -> None:
    packing_cost()
    print(f"workload: {WORKLOAD}, {rounds} interleaved rounds in one kernel")
    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        run_in_kernel(client, KERNEL_CODE.format(workload=WORKLOAD))
        run_in_kernel(client, "one_run('live view')")  # warm up: imports, fonts, the SQLite file
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for round_ in range(rounds):
            order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
            for mode in order:
                runs[mode].append(json.loads(run_in_kernel(client, f"print(json.dumps(one_run({mode!r})))")))
            print(f"round {round_ + 1}: " + ", ".join(f"{m} {runs[m][-1]['throughput']:.0f}/s" for m in MODES))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    base = [r["throughput"] for r in runs["headless"]]
    print()
    print(
        f"{'mode':<10} {'throughput':>11} {'ratio':>6} {'batches/s':>10} {'B/event':>8} {'ship ms/s':>10} "
        f"{'CPU µs/req':>11} {'CPU ratio':>9}"
    )
    base_cpu = [r["cpu_us_per_request"] for r in runs["headless"]]
    for mode, results in runs.items():
        ratios = [r["throughput"] / b for r, b in zip(results, base, strict=True)]
        print(
            f"{mode:<10} {statistics.median(r['throughput'] for r in results):>9.0f}/s "
            f"{statistics.median(ratios):>6.2f} {statistics.median(r['batches_per_s'] for r in results):>10.1f} "
            f"{statistics.median(r['bytes_per_event'] for r in results):>8.1f} "
            f"{statistics.median(r['ship_cpu_ms_per_s'] for r in results):>10.2f} "
            f"{statistics.median(r['cpu_us_per_request'] for r in results):>11.0f} "
            f"{statistics.median(r['cpu_us_per_request'] / b for r, b in zip(results, base_cpu, strict=True)):>9.2f}"
        )
    print("\nratio: median over rounds of the mode's throughput / headless throughput in the same round")
    print("CPU µs/req: the kernel process's CPU time per request (less sensitive than throughput to other load)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
