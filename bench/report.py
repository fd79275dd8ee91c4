"""The outputs of a suite: ``results.json`` and a Markdown summary (``summary.md``).

Every number in the summary comes from ``results.json``, so ``python -m bench report
results.json`` can rebuild the summary and plots later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["markdown_summary", "write_outputs"]

_TABLE_HEAD = (
    "| target | scenario | mode | conns | rate | # | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms "
    "| server CPU us/req | errors | handshakes (full/resumed) |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n"
)


def write_outputs(document: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``results.json``, ``summary.md`` and the plots; returns what was written."""
    out.mkdir(parents=True, exist_ok=True)
    written = {"json": out / "results.json", "markdown": out / "summary.md"}
    written["json"].write_text(json.dumps(document, indent=2) + "\n")
    try:
        from bench.plots import write_plots
    except ImportError:  # matplotlib is optional (the "bench" extra)
        plots: dict[str, Path] = {}
    else:
        plots = write_plots(document, out)
    written.update(plots)
    written["markdown"].write_text(markdown_summary(document, plots))
    return written


def markdown_summary(document: dict[str, Any], plots: dict[str, Path] | None = None) -> str:
    machine = document["machine"]
    lines = [
        "# Benchmark summary",
        "",
        f"- date (UTC): {machine['date_utc']}",
        f"- machine: {machine['nproc']} usable cores, {machine['cpu_model']}, "
        f"kernel {machine['kernel']}",
        f"- software: Python {machine['python']}, {machine['openssl']}, "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()),
        f"- commit: {machine['commit']}",
        f"- command: `{document['command']}`",
        "",
        "## Runs",
        "",
        _TABLE_HEAD + "".join(_run_row(run) for run in document["runs"]),
    ]
    medians = document.get("median_ratios", [])
    if any(row["runs"] > 1 for row in medians):
        lines += [
            "## Ratios to the baseline, medians over the repeats",
            "",
            _ratio_table(medians, "runs"),
        ]
    if document["ratios"]:
        lines += [
            "## Ratios to the baseline (same run, same point, same repeat)",
            "",
            _ratio_table(document["ratios"], "repeat"),
        ]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({path.name})" for name, path in plots.items()]
        lines.append("")
    lines += [
        "Latency percentiles are over successful (2xx) requests; open-loop latency counts from",
        "the intended send time. `errors` lists non-2xx statuses and transport failures.",
        "",
    ]
    return "\n".join(lines)


def _run_row(run: dict[str, Any]) -> str:
    m = run["measurement"]
    latency = m["latency"]
    errors = ", ".join(f"{kind}: {n}" for kind, n in m["errors"].items()) or "none"
    if m["dropped"]:
        errors += f"; dropped {m['dropped']}"
    handshakes = f"{m['full_handshakes']}/{m['resumed_handshakes']}"
    if m["handshake"]:
        handshakes += f" (p50 {m['handshake']['p50']:.2f} ms)"
    rate = f"{run['rate']:.0f}" if run["rate"] else "-"
    target = _target_label(run)
    cells = [
        target,
        run["scenario"],
        run["mode"],
        str(run["connections"]),
        rate,
        str(run.get("repeat", 0) + 1),
        f"{m['throughput']:,.0f}",
        f"{latency['p50']:.2f}",
        f"{latency['p90']:.2f}",
        f"{latency['p99']:.2f}",
        f"{latency['p999']:.2f}",
        _number(m.get("server_cpu_per_request_us"), "{:,.0f}"),
        errors,
        handshakes,
    ]
    return "| " + " | ".join(cells) + " |\n"


def _ratio_table(ratios: list[dict[str, Any]], extra: str) -> str:
    rows = [
        f"| target | scenario | mode | conns | rate | {extra} | throughput x | p50 x | p99 x |",
        "|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for ratio in ratios:
        shown = ratio.get(extra, 0) + 1 if extra == "repeat" else ratio[extra]
        cells = [
            _target_label(ratio),
            ratio["scenario"],
            ratio["mode"],
            str(ratio["connections"]),
            ratio["rate_spec"] or "-",
            str(shown),
            _number(ratio["throughput_ratio"]),
            _number(ratio["p50_ratio"]),
            _number(ratio["p99_ratio"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _target_label(row: dict[str, Any]) -> str:
    name = str(row["target"])
    return f"{name} x{row['workers']}" if row["workers"] > 1 and "@" not in name else name


def _number(value: float | None, form: str = "{:.2f}") -> str:
    return "-" if value is None else form.format(value)
