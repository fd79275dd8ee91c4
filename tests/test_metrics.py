"""KES's metric families, byte for byte where clients look them up, summed over workers."""

from __future__ import annotations

from aiokes.cache import CacheStats
from aiokes.metrics import MetricsTable


def _samples(text: str) -> dict[str, str]:
    pairs = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return dict(pairs)


def test_counters_keep_kes_names_without_total_suffix() -> None:
    metrics = MetricsTable().worker()
    metrics.observe(200, 0.002)
    metrics.observe(404, 0.002)
    metrics.observe(502, 0.3)
    samples = _samples(metrics.render())
    assert samples['kes_http_request_success{code="200"}'] == "1"
    assert samples['kes_http_request_error{code="404"}'] == "1"
    assert samples['kes_http_request_failure{code="502"}'] == "1"
    assert not any("_total" in name for name in samples)
    assert "# TYPE kes_http_request_success counter" in metrics.render()


def test_families_without_observations_are_absent_as_in_go() -> None:
    text = MetricsTable().worker().render()
    assert "kes_http_request_success" not in text
    assert "kes_http_request_active 0" in text
    assert "kes_log_audit_events 0" in text


def test_histogram_buckets_are_cumulative_with_kes_bounds() -> None:
    metrics = MetricsTable().worker()
    for duration in (0.005, 0.02, 0.2, 20.0):
        metrics.observe(200, duration)
    samples = _samples(metrics.render())
    assert samples['kes_http_response_time_bucket{le="0.01"}'] == "1"
    assert samples['kes_http_response_time_bucket{le="0.05"}'] == "2"
    assert samples['kes_http_response_time_bucket{le="0.25"}'] == "3"
    assert samples['kes_http_response_time_bucket{le="10"}'] == "3"
    assert samples['kes_http_response_time_bucket{le="+Inf"}'] == "4"
    assert samples["kes_http_response_time_count"] == "4"
    assert float(samples["kes_http_response_time_sum"]) == 20.225


def test_every_worker_counts_in_its_own_row_and_any_renders_the_sum() -> None:
    table = MetricsTable(workers=3)
    first, second, third = (table.worker(index) for index in range(3))
    first.observe(200, 0.001)
    second.observe(200, 0.001)
    second.observe(200, 0.001)
    first.request_started()
    second.request_started()
    first.publish_cache(CacheStats(hits=5, entries=2))
    third.publish_cache(CacheStats(hits=7, entries=3, offline=True))
    samples = _samples(third.render())
    assert samples['kes_http_request_success{code="200"}'] == "3"
    assert samples["kes_http_request_active"] == "2"
    assert samples["aiokes_cache_hits"] == "12"
    assert samples["aiokes_cache_entries"] == "5"
    assert samples["aiokes_workers"] == "3"
    assert third.value("cache_offline") == 1


def test_cache_counters_of_every_process_sum_into_one_cache_stats() -> None:
    table = MetricsTable(workers=2, helpers=1)  # two workers and the key keeper
    table.worker(0).publish_cache(CacheStats(hits=5, misses=1))
    table.worker(1).publish_cache(CacheStats(hits=2, misses=3, expirations=9))
    table.worker(2).publish_cache(
        CacheStats(evictions=4, keystore_reads=6, keystore_read_errors=1, entries=7, offline=True)
    )
    totals = table.worker(1).cache_totals()
    # expirations and keystore_read_errors are the cache's own: not in the shared table.
    assert totals == CacheStats(
        hits=7, misses=4, evictions=4, keystore_reads=6, entries=7, offline=True
    )
    assert totals.status() == {
        "entries": 7,
        "hits": 7,
        "misses": 4,
        "evictions": 4,
        "keystore_reads": 6,
        "offline": True,
    }
    assert list(totals.status()) == [
        "entries",
        "hits",
        "misses",
        "evictions",
        "keystore_reads",
        "offline",
    ]


def test_cache_families_keep_their_names_kinds_and_order() -> None:
    text = MetricsTable().worker().render()
    types = [line for line in text.splitlines() if line.startswith("# TYPE aiokes_cache_")]
    assert types == [
        "# TYPE aiokes_cache_hits counter",
        "# TYPE aiokes_cache_misses counter",
        "# TYPE aiokes_cache_evictions counter",
        "# TYPE aiokes_cache_keystore_reads counter",
        "# TYPE aiokes_cache_entries gauge",
        "# TYPE aiokes_cache_offline gauge",
    ]
    assert "# HELP aiokes_cache_hits Key cache lookups answered from the cache.\n" in text


def test_unexpected_status_codes_stay_in_their_class() -> None:
    metrics = MetricsTable().worker()
    metrics.observe(418, 0.001)
    metrics.observe(599, 0.001)
    samples = _samples(metrics.render())
    assert samples['kes_http_request_error{code="400"}'] == "1"
    assert samples['kes_http_request_failure{code="500"}'] == "1"


def test_a_finished_request_leaves_the_active_gauge_and_is_observed() -> None:
    metrics = MetricsTable().worker()
    for _ in range(3):
        metrics.request_started()
    metrics.request_finished(200, 0.002)
    metrics.request_abandoned()  # the client went away: no answer to count
    samples = _samples(metrics.render())
    assert samples["kes_http_request_active"] == "1"
    assert samples['kes_http_request_success{code="200"}'] == "1"
    assert samples["kes_http_response_time_count"] == "1"
