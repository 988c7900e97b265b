"""The stats function's GET /metrics: each recent series' last value as a gauge (capped, with
what was left out), its request histogram, and the token rule (parsed with prometheus_client's
parser, over samples stored in the real PostgreSQL)."""

from __future__ import annotations

from tests.configuration import configure
from tests.scrapes import key, moved, samples
from tests.stats.samples import add_samples, client, hours_ago

LAST = "modelstats_metric_last_value"
TAKEN = "modelstats_metric_last_sample_timestamp_seconds"
OMITTED = "modelstats_metric_last_value_series_omitted"


def seed(url: str) -> None:
    add_samples(
        url,
        [
            # Two label sets of one series: the newest sample of either is the last value.
            ("Mistral", "v1", "drift", {"env": "prod"}, hours_ago(3), 0.10),
            ("Mistral", "v1", "drift", {"env": "dev"}, hours_ago(2), 0.20),
            ("Mistral", "v1", "drift", {"env": "prod"}, hours_ago(4), 0.30),
            ("Mistral", "v2", "drift", {}, hours_ago(1), 0.40),
            ('Odd "name"\\', "v1", "inference_time", {}, hours_ago(0.5), 12.5),
            # Quiet for two days: not exported (Prometheus would read it as current).
            ("Stale", "v1", "drift", {}, hours_ago(48), 0.9),
        ],
    )


def test_each_recent_series_last_value_is_a_gauge(clean_db):
    configure(STATS_API_TOKEN=None)
    seed(clean_db)
    with client() as stats:
        response = stats.get("/metrics")
        assert response.status_code == 200
        scraped = samples(response.text)
    assert scraped[key(LAST, model="Mistral", version="v1", metric="drift")] == 0.20
    assert scraped[key(LAST, model="Mistral", version="v2", metric="drift")] == 0.40
    odd = key(LAST, model='Odd "name"\\', version="v1", metric="inference_time")
    assert scraped[odd] == 12.5
    taken = scraped[key(TAKEN, model="Mistral", version="v1", metric="drift")]
    assert abs(taken - hours_ago(2).timestamp()) < 60
    assert [k for k in scraped if k[0] == LAST] == sorted(k for k in scraped if k[0] == LAST)
    assert len([k for k in scraped if k[0] == LAST]) == 3  # not Stale
    assert scraped[key(OMITTED)] == 0
    # The process's own metrics come along (the default registry's process collector).
    assert any(k[0] == "process_cpu_seconds_total" for k in scraped)


def test_the_cap_keeps_the_most_recently_updated_and_says_how_many_were_left(clean_db):
    configure(STATS_API_TOKEN=None, METRICS_MAX_SERIES="2")
    seed(clean_db)
    with client() as stats:
        scraped = samples(stats.get("/metrics").text)
    exported = sorted(k[1] for k in scraped if k[0] == LAST)
    assert exported == [
        (("metric", "drift"), ("model", "Mistral"), ("version", "v2")),
        (("metric", "inference_time"), ("model", 'Odd "name"\\'), ("version", "v1")),
    ]
    assert scraped[key(OMITTED)] == 1


def test_metrics_follow_the_stats_token_and_requests_are_timed(clean_db):
    token = "s3cret"
    configure(STATS_API_TOKEN=token)
    auth = {"authorization": f"Bearer {token}"}
    with client() as stats:
        assert stats.get("/metrics").status_code == 401
        before = samples(stats.get("/metrics", headers=auth).text)
        assert stats.get("/models", headers=auth).status_code == 200
        assert stats.get("/stats/Nobody/v1", headers=auth).status_code == 404
        assert stats.get("/no/such/path/at/all", headers=auth).status_code == 404
        after = samples(stats.get("/metrics", headers=auth).text)
    timed = "modelstats_http_request_duration_seconds_count"
    assert moved(before, after, timed, function="stats", route="/models", code="200") == 1
    route = "/stats/{model}/{version}"
    assert moved(before, after, timed, function="stats", route=route, code="404") == 1
    assert moved(before, after, timed, function="stats", route="unmatched", code="404") == 1
    assert not [k for k in after if k[0] == timed and ("route", "/metrics") in k[1]]
