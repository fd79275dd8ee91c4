"""Is the harness the bottleneck? Our load generator against autocannon, on the same servers.

Both drive ``generate`` with the same connection count from the same core(s) against
``baseline-none`` (answers without parsing or crypto: the fastest server there is here) and
against ``baseline``. If our generator reaches at least autocannon's rate on both, the
numbers it reports for aiokes are the server's, not the harness's.

autocannon (npm, client certificates via ``--cert/--key/--ca``) is installed into
``bench/.node``: ``npm install --prefix bench/.node autocannon@9``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from statistics import median
from typing import Any

from bench.certs import make_certificates
from bench.driver import drive
from bench.keys import create_keys
from bench.loadgen import LoadSpec
from bench.machine import describe_machine, usable_cpus
from bench.scenarios import CONTEXT, Workload, get_scenario, key_names
from bench.targets import Target, started_target
from bench.wire import json_body

__all__ = ["AUTOCANNON", "crosscheck", "crosscheck_table"]

AUTOCANNON = (
    Path(__file__).resolve().parent / ".node" / "node_modules" / "autocannon" / "autocannon.js"
)


def crosscheck(
    out: Path, *, connections: int = 64, duration: float = 10.0, repeat: int = 3
) -> dict[str, Any]:
    """``repeat`` alternating runs of both generators per server; the medians are reported
    (a shared 2-core machine drifts by ±20 % between single runs)."""
    node = shutil.which("node")
    if node is None or not AUTOCANNON.is_file():
        raise RuntimeError(
            f"needs node and {AUTOCANNON}: npm install --prefix bench/.node autocannon@9"
        )
    work = out / "work"
    certs = make_certificates(work / "certs")
    cpus = usable_cpus()
    server_cpus, load_cpus = (cpus[:1], cpus[1:]) if len(cpus) > 1 else ((), ())
    scenario = get_scenario("generate")
    rows = []
    for kind in ("baseline-none", "baseline", "aiokes-fs"):
        with started_target(kind, certs, work / kind, cpus=server_cpus) as target:
            names = key_names(scenario)
            create_keys(target.endpoint, target.tls, names)
            spec = LoadSpec(target.endpoint, target.tls, Workload(scenario, names, {}), connections,
                            None, duration, 1.0, 0, (0, 1), cpus=load_cpus)  # fmt: skip
            pairs = []
            for _ in range(repeat):
                ours = drive([spec], f"harness → {kind} c={connections}")
                theirs = _autocannon(node, target, names[0], connections, duration, load_cpus)
                pairs.append((ours, theirs))
        rows.append(
            {
                "server": kind,
                "harness_rps_runs": [ours.throughput for ours, _ in pairs],
                "autocannon_rps_runs": [theirs["rps"] for _, theirs in pairs],
                "harness_rps": median(ours.throughput for ours, _ in pairs),
                "harness_p50_ms": median(ours.latency.p50 for ours, _ in pairs),
                "harness_p99_ms": median(ours.latency.p99 for ours, _ in pairs),
                "autocannon_rps": median(theirs["rps"] for _, theirs in pairs),
                "autocannon_p50_ms": median(theirs["p50"] for _, theirs in pairs),
                "autocannon_p99_ms": median(theirs["p99"] for _, theirs in pairs),
                "autocannon_non2xx": sum(theirs["non2xx"] for _, theirs in pairs),
            }
        )
    return {
        "machine": describe_machine(),
        "connections": connections,
        "duration": duration,
        "repeat": repeat,
        "rows": rows,
    }


def _autocannon(
    node: str, target: Target, key: str, connections: int, duration: float, cpus: tuple[int, ...]
) -> dict[str, float]:
    url = f"https://{target.endpoint.authority}/v1/key/generate/{key}"
    argv = [node, str(AUTOCANNON), "-j", "-c", str(connections), "-d", str(int(duration + 1)),
            "-m", "POST", "-H", "content-type=application/json",
            "-b", json_body(context=CONTEXT).decode(),
            "--cert", target.tls.cert_file, "--key", target.tls.key_file, url]  # fmt: skip
    if target.tls.ca_file:
        argv += ["--ca", target.tls.ca_file]
    if cpus and shutil.which("taskset"):
        argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"autocannon failed: {done.stderr.strip()[-800:]}") from None
    seconds = float(report["duration"])
    return {
        "rps": report["2xx"] / seconds if seconds else 0.0,
        "p50": float(report["latency"]["p50"]),
        "p99": float(report["latency"]["p99"]),
        "non2xx": float(report["non2xx"]) + float(report["errors"]),
    }


def crosscheck_table(result: dict[str, Any]) -> str:
    lines = [
        "| server | harness req/s (median) | autocannon req/s (median) | harness ÷ autocannon "
        "| harness p50 / p99 ms | autocannon p50 / p99 ms |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in result["rows"]:
        ratio = row["harness_rps"] / row["autocannon_rps"] if row["autocannon_rps"] else 0.0
        lines.append(
            f"| {row['server']} | {row['harness_rps']:,.0f} | {row['autocannon_rps']:,.0f} "
            f"| {ratio:.2f} | {row['harness_p50_ms']:.2f} / {row['harness_p99_ms']:.2f} "
            f"| {row['autocannon_p50_ms']:.0f} / {row['autocannon_p99_ms']:.0f} |"
        )
    return "\n".join(lines)
