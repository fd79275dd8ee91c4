"""The benchmark suite (``bench/``) keeps working: a smoke run of a few seconds against an
aiokes the harness starts (``--dev``, in-memory keystore) and the baseline, plus the pieces
whose mistakes would silently skew every result (HTTP parsing, percentiles, the op mix).
No performance thresholds: the numbers depend on the machine."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aiokes.cli import main as aiokes_main
from bench.report import write_outputs
from bench.runner import SuiteOptions, run_suite
from bench.scenarios import RequestSource, Workload, get_scenario
from bench.stats import percentiles
from bench.wire import ResponseParser, build_request

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
_REPO = Path(__file__).resolve().parent.parent


def test_smoke_run_writes_json_markdown_and_plots_with_successful_requests(
    tmp_path: Path,
) -> None:
    """aiokes and the baseline, keep-alive and resumed-handshake scenarios, two connection
    counts and an open-loop rate: every run answers, and the outputs carry what reports need."""
    options = SuiteOptions(
        out=tmp_path,
        targets=("aiokes",),
        scenarios=("generate", "resumed"),
        connections=(1, 2),
        rates=("50%",),
        duration=0.4,
        warmup=0.1,
        max_requests=150,
        timeout=5.0,
        command="pytest smoke run",
    )
    document = run_suite(options)
    written = write_outputs(document, tmp_path)

    results = json.loads(written["json"].read_text())
    assert set(results) == {"command", "machine", "options", "runs", "ratios", "median_ratios"}
    assert results["machine"]["nproc"] >= 1
    assert results["machine"]["cpu_model"]
    runs = results["runs"]
    assert {run["target"] for run in runs} == {"aiokes", "baseline"}
    assert {run["mode"] for run in runs} == {"closed", "open"}
    for run in runs:
        measurement = run["measurement"]
        assert measurement["ok"] > 0, run
        assert measurement["statuses"] == {"200": measurement["ok"]}
        assert set(measurement["latency"]) == {"count", "mean", "p50", "p90", "p99", "p999", "max"}
        assert measurement["cdf"][-1][1] == 1.0
        assert "server_cpu_per_request_us" in measurement
    resumed = [run["measurement"] for run in runs if run["scenario"] == "resumed"]
    assert all(m["resumed_handshakes"] > 0 and m["full_handshakes"] == 0 for m in resumed)
    assert {(r["target"], r["scenario"]) for r in results["ratios"]} == {
        ("aiokes", "generate"),
        ("aiokes", "resumed"),
    }
    summary = written["markdown"].read_text()
    assert "## Runs" in summary
    assert "## Ratios to the baseline" in summary
    assert "usable cores" in summary
    if HAS_MATPLOTLIB:
        assert (tmp_path / "throughput-generate.png").stat().st_size > 0
        assert (tmp_path / "latency-resumed.png").stat().st_size > 0


def test_parser_reassembles_a_response_split_across_reads_and_keeps_what_follows() -> None:
    parser = ResponseParser()
    first = b'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"a":"b"}\n'
    assert parser.feed(first[:7]) is None
    assert parser.feed(first[7:30]) is None
    response = parser.feed(first[30:] + b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nn")
    assert response is not None
    assert (response.status, response.body, response.keep_alive) == (200, b'{"a":"b"}\n', True)
    second = parser.feed(b"o")
    assert second is not None
    assert (second.status, second.body) == (404, b"no")


def test_parser_decodes_chunked_bodies_and_sees_connection_close() -> None:
    parser = ResponseParser()
    data = (
        b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n"
    )
    response = parser.feed(data)
    assert response is not None
    assert (response.status, response.body, response.keep_alive) == (502, b"abcdefg", False)


def test_parser_fast_path_takes_a_whole_canonical_response() -> None:
    body = b'{"plaintext":"x"}\n'
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    response = ResponseParser().feed(data)
    assert response is not None
    assert (response.status, response.body, response.keep_alive) == (200, body, True)


def test_request_bytes_carry_length_host_and_close_when_asked() -> None:
    request = build_request("POST", "/v1/key/generate/k", "127.0.0.1:7373", b"{}", close=True)
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/key/generate/k HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:7373" in head
    assert b"\r\nContent-Length: 2" in head
    assert b"\r\nConnection: close" in head
    assert body == b"{}"


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    ordered = [i / 1000 for i in range(1, 1001)]  # 1 ms … 1000 ms
    result = percentiles(ordered)
    assert (result.p50, result.p90, result.p99, result.p999, result.max) == (
        500.0,
        900.0,
        990.0,
        999.0,
        1000.0,
    )
    assert percentiles([]).count == 0


def test_mixed_scenario_follows_the_generate_decrypt_ratio_over_every_key() -> None:
    scenario = get_scenario("mixed", keys=4, mix=(1, 3))
    keys = tuple(f"k{i}" for i in range(4))
    workload = Workload(scenario, keys, {key: b"sealed" for key in keys})
    source = RequestSource(workload, "h:1", share=(0, 1))
    requests = [source.next() for _ in range(len(source))]
    generate = [r for r in requests if r.startswith(b"POST /v1/key/generate/")]
    decrypt = [r for r in requests if r.startswith(b"POST /v1/key/decrypt/")]
    assert (len(generate), len(decrypt)) == (4, 12)
    assert {r.split(b" ")[1].rsplit(b"/", 1)[1] for r in generate} == {k.encode() for k in keys}


def test_miss_storm_processes_take_disjoint_key_names() -> None:
    scenario = get_scenario("miss-storm", keys=10)
    workload = Workload(scenario, tuple(f"k{i}" for i in range(10)), {})
    seen = []
    for index in range(2):
        source = RequestSource(workload, "h:1", share=(index, 2))
        seen.append({source.next().split(b" ")[1] for _ in range(len(source))})
    assert len(seen[0]) == len(seen[1]) == 5
    assert not seen[0] & seen[1]


def test_aiokes_bench_explains_when_the_bench_package_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "bench.cli", None)  # makes the import fail
    result = CliRunner().invoke(aiokes_main, ["bench", "run", "--help"])
    assert result.exit_code == 1
    assert "benchmark suite is not importable" in result.output
    assert "pip install -e '.[bench]'" in result.output  # how to get it
    assert "PYTHONPATH=/path/to/checkout aiokes bench" in result.output


def test_bench_imports_nothing_from_the_test_suite() -> None:
    """bench runs without ``tests`` (issue 14 item 7): no module of it imports the test suite,
    at the top or inside a function."""
    seen, offenders = set(), []
    for path in sorted((_REPO / "bench").rglob("*.py")):
        seen.add(path.relative_to(_REPO).as_posix())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "tests"]
    assert {"bench/cli.py", "bench/fakevault/__main__.py", "bench/fakevault/vault.py"} <= seen
    assert offenders == []


async def test_fake_vault_process_serves_with_the_test_suite_unimportable(
    tmp_path: Path,
) -> None:
    """``python -m bench.fakevault`` (the vault of the aiokes-azure target) from outside the
    tree, with ``import tests`` made to fail: it starts, serves and stops on SIGTERM."""
    block_tests = (
        "import runpy, sys; sys.modules['tests'] = None; "
        "runpy.run_module('bench.fakevault', run_name='__main__', alter_sys=True)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", block_tests, str(tmp_path / "vault"),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO)},  # bench from the tree, as targets.py runs it
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        ready = await asyncio.wait_for(process.stdout.readline(), 60)
        assert ready.startswith(b"ready https://127.0.0.1:"), await process.stderr.read()
    finally:
        if process.returncode is None:
            process.terminate()
        returncode = await asyncio.wait_for(process.wait(), 60)
    assert returncode == 0


def test_aiokes_bench_delegates_to_the_bench_command_line() -> None:
    result = CliRunner().invoke(aiokes_main, ["bench", "--help"])
    assert result.exit_code == 0
    assert "Usage: aiokes bench" in result.output
    for command in ("run", "crypto", "handler", "memory", "profile", "crosscheck", "report"):
        assert command in result.output


@pytest.mark.parametrize("scenario", ["generate", "decrypt"])
def test_handler_command_measures_both_handlers_on_successful_answers(
    tmp_path: Path, scenario: str
) -> None:
    from bench.cli import main as bench_main

    out = tmp_path / "handler.json"
    args = ["handler", "--scenario", scenario, "--connections", "4", "--requests", "200"]
    result = CliRunner().invoke(bench_main, [*args, "--repeat", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["scenario"] == scenario
    assert len(document["aiokes_us"]) == len(document["baseline_us"]) == 2
    assert all(cost > 0 for cost in document["aiokes_us"] + document["baseline_us"])
    assert "aiokes - baseline" in result.output


def test_handler_measurement_refuses_to_measure_error_answers() -> None:
    import asyncio

    from aiohttp import web

    from bench.handler import _cpu_per_request, _PeerCertificate

    async def refuse(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=403)

    async def measure() -> float:
        server = web.Server(refuse, access_log=None)
        request = build_request("GET", "/version", "127.0.0.1")
        return await _cpu_per_request(server, _PeerCertificate(b""), request, 2, 10)

    with pytest.raises(RuntimeError, match="403"):
        asyncio.run(measure())


def test_saturate_reads_vegetas_report_and_compares_servers_round_by_round() -> None:
    from bench.saturate import Row, ratio_table
    from bench.vegeta import parse_report

    report = json.dumps(
        {
            "requests": 1000,
            "success": 1.0,
            "throughput": 99.5,
            "latencies": {"50th": 2_000_000, "99th": 9_500_000},
        }
    )
    figures = parse_report(report)
    assert figures == {
        "requests": 1000.0,
        "success": 1.0,
        "throughput": 99.5,
        "p50_ms": 2.0,
        "p99_ms": 9.5,
    }

    def row(index: int, server: str, rate: float, cpu: float) -> Row:
        return Row(index, "generate", server, 100, 1.0, rate, 1.0, cpu, 0.5, 1.0, 2.0)

    rows = [
        row(0, "aiokes", 300, 10),
        row(0, "kes", 200, 20),
        row(1, "kes", 100, 30),
        row(1, "aiokes", 200, 10),
    ]
    table = ratio_table(rows, "aiokes", "kes")
    assert "| generate | 0 | 1.50 | 2.00 |" in table
    assert "| generate | 1 | 2.00 | 3.00 |" in table
    assert "| **generate** | median | **1.75** | **2.50** |" in table


def test_saturate_refuses_to_run_without_a_loader(tmp_path: Path) -> None:
    from bench.vegeta import find_vegeta

    with pytest.raises(FileNotFoundError, match="vegeta not found"):
        find_vegeta(str(tmp_path / "no-such-vegeta"))


def test_instructions_per_request_difference_two_windows_and_compare_with_kes() -> None:
    from bench.instructions import Count, counts_table, per_request

    # The same handshakes in both windows cancel: (2500 - 500) requests cost the difference.
    assert per_request((500, 60_000_000), (2500, 160_000_000)) == 50_000
    with pytest.raises(RuntimeError, match="no more requests"):
        per_request((500, 1), (500, 2))
    table = counts_table(
        [
            Count("aiokes", "generate", 2000, 150_000.0),
            Count("kes", "generate", 2000, 120_000.0),
        ]
    )
    assert "| generate | aiokes | 2000 | 150,000 |" in table
    assert "| **generate** | kes/aiokes | | **0.80** |" in table


def test_instructions_command_wants_a_small_and_a_large_window() -> None:
    from bench.cli import main as bench_main

    result = CliRunner().invoke(bench_main, ["instructions", "--requests", "2500,500"])
    assert result.exit_code == 2
    assert "SMALL < LARGE" in result.output


def test_a_compiled_build_is_measured_beside_this_checkout_and_compared_with_every_peer() -> None:
    from bench.instructions import Count, counts_table
    from bench.saturate import compared_pairs, compared_servers

    servers = compared_servers("/peers/kes", "/tmp/before", compiled="/tmp/compiled")
    assert [server.name for server in servers] == ["aiokes", "compiled", "before", "kes"]
    assert servers[1].environment == {"PYTHONPATH": "/tmp/compiled"}
    assert compared_pairs([server.name for server in servers]) == [
        ("aiokes", "compiled"),
        ("aiokes", "before"),
        ("aiokes", "kes"),
        ("compiled", "before"),
        ("compiled", "kes"),
    ]
    counts = [Count("compiled", "decrypt", 2000, 100_000.0), Count("kes", "decrypt", 2000, 90e3)]
    table = counts_table(counts, ours="compiled", rows=False)
    assert "| **decrypt** | kes/compiled | | **0.90** |" in table
    assert "| decrypt | compiled |" not in table


def test_a_cpu_quota_runs_the_server_in_a_capped_cgroup(tmp_path: Path) -> None:
    """``--server-quota``: the wrapped argv joins the cgroup before it becomes the server,
    so the server and all it starts are capped from the first instruction."""
    from bench.quota import CpuQuota, QuotaError

    try:
        quota = CpuQuota(0.25, name=f"aiokes-bench-test-{os.getpid()}")
    except QuotaError as exc:
        pytest.skip(str(exc))  # not root, or no cgroup cpu controller on this machine
    try:
        limits = {p.name: p.read_text().split() for p in quota.directory.glob("cpu.*")}
        quota_line = limits.get("cpu.max") or limits["cpu.cfs_quota_us"]
        assert quota_line[0] == "25000"
        script = "cat /proc/self/cgroup"
        joined = subprocess.run(quota.wrap(["sh", "-c", script]), capture_output=True, text=True)
        assert joined.returncode == 0, joined.stderr
        assert f"/{quota.directory.name}" in joined.stdout
    finally:
        quota.remove()
    assert not quota.directory.exists()
    with pytest.raises(QuotaError, match="not between"):
        CpuQuota(0)
