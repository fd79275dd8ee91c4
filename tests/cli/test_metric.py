"""``aiokes metric``: the Prometheus parser, the interval arithmetic, and the live view of a
real server."""

from __future__ import annotations

import json
import math

import pytest

from aiokes.cli.metric import Sample, Scrape, parse_metrics, quantile, report
from aiokes.errors import APIError
from tests.cli.conftest import ainvoke, client_env
from tests.conftest import RunningServer

# --- the text format ---------------------------------------------------------------------------


def test_parse_samples_labels_types_and_escapes() -> None:
    scrape = parse_metrics(
        "# HELP kes_http_request_success Number of requests.\n"
        "# TYPE kes_http_request_success counter\n"
        'kes_http_request_success{code="200"} 3\n'
        'kes_http_request_success{code="204"} 2 1700000000000\n'
        'aiokes_thing{path="/v1/key/\\"q\\"\\\\x\\n", method="GET",} 1.5e3\n'
        "kes_system_up_time 12.25\n"
        "\n"
    )
    assert scrape.types == {"kes_http_request_success": "counter"}
    assert scrape.total("kes_http_request_success") == 5
    assert scrape.samples[2] == Sample(
        "aiokes_thing", (("path", '/v1/key/"q"\\x\n'), ("method", "GET")), 1500.0
    )
    assert scrape.total("kes_system_up_time") == 12.25
    assert scrape.total("absent") == 0


def test_parse_special_values_and_histogram_order() -> None:
    scrape = parse_metrics(
        'h_bucket{le="+Inf"} 4\nh_bucket{le="0.5"} 3\nh_bucket{le="0.1"} 1\ng NaN\n'
    )
    assert scrape.histogram("h") == [(0.1, 1.0), (0.5, 3.0), (math.inf, 4.0)]
    assert math.isnan(scrape.total("g"))


@pytest.mark.parametrize(
    "line", ["kes_up", "kes_up one", 'kes_up{code="200" 1', "kes_up{code=200} 1", "9bad 1"]
)
def test_a_malformed_line_is_named(line: str) -> None:
    with pytest.raises(ValueError, match="line 2 is not a Prometheus sample"):
        parse_metrics("ok 1\n" + line + "\n")


# --- between two scrapes -----------------------------------------------------------------------


def _histogram(counts: dict[str, int]) -> str:
    return "".join(f'kes_http_response_time_bucket{{le="{le}"}} {n}\n' for le, n in counts.items())


def test_quantiles_interpolate_within_the_bucket() -> None:
    buckets = [(0.01, 50.0), (0.05, 90.0), (0.1, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.25, buckets) == pytest.approx(0.005)
    assert quantile(0.7, buckets) == pytest.approx(0.03)
    assert quantile(0.99, buckets) == pytest.approx(0.095)


def test_quantile_in_the_open_bucket_is_the_highest_bound() -> None:
    assert quantile(0.99, [(0.01, 1.0), (10.0, 2.0), (math.inf, 10.0)]) == 10.0


def test_quantile_without_observations_is_unknown() -> None:
    assert quantile(0.5, [(0.01, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.5, []) is None


def test_report_rates_and_latency_cover_only_the_interval() -> None:
    before = parse_metrics(
        'kes_http_request_success{code="200"} 10\n'
        + _histogram({"0.01": 10, "0.05": 10, "+Inf": 10})
        + "kes_http_response_time_sum 0.05\nkes_http_response_time_count 10\n",
        taken=100.0,
    )
    after = parse_metrics(
        'kes_http_request_success{code="200"} 30\nkes_http_request_success{code="204"} 10\n'
        'kes_http_request_error{code="404"} 5\n'
        "kes_http_request_active 2\nkes_system_up_time 42.5\n"
        + _histogram({"0.01": 10, "0.05": 50, "+Inf": 50})
        + "kes_http_response_time_sum 1.25\nkes_http_response_time_count 50\n",
        taken=105.0,
    )
    current = report(before, after)
    assert current.totals == {"success": 40, "error": 5, "failure": 0}
    assert current.per_second == {"success": 6.0, "error": 1.0, "failure": 0.0}
    assert (current.active, current.uptime, current.interval) == (2, 42.5, 5.0)
    # The 40 requests of the interval all took 10-50 ms; the 10 before did not count.
    assert current.latency["mean"] == pytest.approx(1.2 / 40)
    assert current.latency["p50"] == pytest.approx(0.03)


def test_a_counter_that_went_down_was_reset() -> None:
    before = parse_metrics('kes_http_request_success{code="200"} 500\n', taken=0.0)
    after = parse_metrics('kes_http_request_success{code="200"} 20\n', taken=10.0)
    assert report(before, after).per_second["success"] == 2.0


def test_aiokes_families_are_shown_with_counter_rates() -> None:
    text = (
        "# TYPE aiokes_cache_hits counter\naiokes_cache_hits {}\n"
        "# TYPE aiokes_cache_entries gauge\naiokes_cache_entries {}\n"
        "# TYPE aiokes_keystore_latency histogram\n"
        'aiokes_keystore_latency_bucket{{le="+Inf"}} {}\naiokes_keystore_latency_count {}\n'
    )
    before = parse_metrics(text.format(100, 7, 3, 3), taken=0.0)
    after = parse_metrics(text.format(150, 9, 8, 8), taken=5.0)
    extras = {(x.name, x.per_second, x.value) for x in report(before, after).extras}
    assert extras == {
        ("aiokes_cache_hits", 10.0, 150.0),
        ("aiokes_cache_entries", None, 9.0),
        ("aiokes_keystore_latency_count", 1.0, 8.0),
    }


def test_report_json_shape() -> None:
    empty = Scrape(samples=(), taken=0.0)
    document = report(empty, Scrape(samples=(), taken=1.0)).to_json()
    assert set(document) == {"interval", "uptime", "requests", "active", "latency", "aiokes"}
    assert document["requests"]["failure"] == {"total": 0, "per_second": 0.0}
    assert document["latency"] == {"mean": None, "p50": None, "p90": None, "p99": None}


# --- against a real server ---------------------------------------------------------------------


async def _traffic(server: RunningServer) -> None:
    """Two successes and one 404: the counted routes are the key routes (spec §10.4)."""
    admin = server.client()
    await admin.create_key("my-key-1")
    await admin.describe_key("my-key-1")
    with pytest.raises(APIError):
        await admin.describe_key("missing")


async def test_metric_json_reports_the_servers_counters(
    server: RunningServer, admin_env: dict[str, str]
) -> None:
    await _traffic(server)
    result = await ainvoke(["metric", "--rate", "10ms", "--count", "2", "--json"], admin_env)
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["requests"]["success"]["total"] == 2
    assert first["requests"]["error"]["total"] == 1
    assert first["requests"]["success"]["per_second"] == 0  # nothing happened in the interval
    assert first["active"] == 0
    assert first["uptime"] > 0
    assert second["uptime"] >= first["uptime"]
    assert first["interval"] > 0


async def test_metric_dashboard(server: RunningServer, admin_env: dict[str, str]) -> None:
    await _traffic(server)
    result = await ainvoke(["metric", "--rate", "10ms", "--count", "1"], admin_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"● 127.0.0.1:{server.server.port}   up ")
    rows = {line.split("[")[0].strip(): line.split() for line in lines[2:5]}
    assert rows["OK"][-2:] == ["2", "0.00"]
    assert rows["Err"][-2:] == ["1", "0.00"]
    assert rows["Fail"][-2:] == ["0", "0.00"]
    assert lines[5].split() == ["Active", "0"]
    assert lines[6].split()[:3] == ["Latency", "mean", "-"]


@pytest.mark.parametrize("rate", ["0", "5", "-1s", "soon"])
async def test_metric_rejects_a_bad_rate(rate: str, admin_env: dict[str, str]) -> None:
    result = await ainvoke(["metric", "--rate", rate], admin_env)
    assert result.exit_code == 1  # kes: cli.Fatalf
    assert "--rate" in result.output


async def test_metric_needs_the_metrics_permission(server: RunningServer) -> None:
    result = await ainvoke(["metric", "--count", "1"], client_env(server, server.app))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: not authorized: insufficient permissions"
