"""PNG plots of a suite: throughput against connections, and latency CDFs (log-scaled tail).

matplotlib runs headless (Agg backend); it is in the ``bench`` extra.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import median
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

__all__ = ["write_plots"]


def write_plots(document: dict[str, Any], out: Path) -> dict[str, Path]:
    runs = document["runs"]
    written: dict[str, Path] = {}
    for scenario in sorted({run["scenario"] for run in runs}):
        closed = [r for r in runs if r["scenario"] == scenario and r["mode"] == "closed"]
        if len({r["connections"] for r in closed}) > 1:
            written[f"throughput-{scenario}"] = _throughput(closed, scenario, out)
        of_scenario = [r for r in runs if r["scenario"] == scenario]
        if of_scenario:
            written[f"latency-{scenario}"] = _cdf(of_scenario, scenario, out)
    return written


def _label(run: dict[str, Any]) -> str:
    workers = f" x{run['workers']}" if run["workers"] > 1 and "@" not in run["target"] else ""
    return f"{run['target']}{workers}"


def _throughput(runs: list[dict[str, Any]], scenario: str, out: Path) -> Path:
    series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        series[_label(run)][run["connections"]].append(run["measurement"]["throughput"])
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for label, by_connections in series.items():
        counts = sorted(by_connections)
        rates = [median(by_connections[count]) for count in counts]  # over the repeats
        axes.plot(counts, rates, marker="o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("connections (closed loop)")
    axes.set_ylabel("successful requests / s")
    axes.set_title(f"{scenario}: throughput vs connections")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return _save(figure, out / f"throughput-{scenario}.png")


def _cdf(runs: list[dict[str, Any]], scenario: str, out: Path) -> Path:
    """Latency against percentile on a 'nines' axis: 0.9, 0.99, 0.999 evenly spaced."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        points = run["measurement"]["cdf"]
        if not points or run.get("repeat", 0):  # the first repeat stands for the others
            continue
        tail = [(ms, f) for ms, f in points if f < 1.0]
        rate = f", {run['rate']:.0f}/s" if run["rate"] else ""
        label = f"{_label(run)} {run['mode']} c={run['connections']}{rate}"
        axes.plot([1.0 / (1.0 - f) for _, f in tail], [ms for ms, _ in tail], label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000]
    axes.set_xticks(ticks, ["0", "50", "90", "99", "99.9", "99.99"])
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.set_title(f"{scenario}: latency percentiles")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, out / f"latency-{scenario}.png")


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
