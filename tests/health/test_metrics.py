"""/metrics: Prometheus text with request counts and latency by route *template* (bounded label
cardinality), and the database pool gauges."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SignUp

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=" in response.headers["content-type"]
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def routes(samples: Samples) -> set[str]:
    return {
        dict(labels)["route"]
        for name, labels in samples
        if name == "http_requests_total" and "route" in dict(labels)
    }


async def test_requests_are_counted_by_route_template_and_status(
    client: AsyncClient, sign_up: SignUp, user_headers: dict[str, str]
) -> None:
    other: dict[str, Any] = await sign_up()
    me = (await client.get("/api/v1/users/me", headers=user_headers)).json()
    for user_id in (me["id"], me["id"], other["id"]):
        await client.get(f"/api/v1/users/{user_id}", headers=user_headers)
    await client.get("/health/live")

    samples = await scrape(client)

    template = "/api/v1/users/{user_id}"
    assert value(samples, "http_requests_total", method="GET", route=template, status="200") == 2
    # Someone else's account: 404, same template.
    assert value(samples, "http_requests_total", method="GET", route=template, status="404") == 1
    assert value(samples, "http_requests_total", method="POST", route="/api/v1/users", status="201")
    assert value(
        samples, "http_requests_total", method="GET", route="/api/v1/users/me", status="200"
    )
    assert (
        value(samples, "http_requests_total", method="GET", route="/health/live", status="200") == 1
    )
    # No concrete id ever becomes a label.
    ids = {str(me["id"]), str(other["id"])}
    assert not any(ids & set(route.split("/")) for route in routes(samples))
    assert template in routes(samples)


async def test_latency_is_a_histogram_by_route_template(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    for _ in range(3):
        await client.get("/api/v1/users/me", headers=user_headers)

    samples = await scrape(client)

    labels = {"method": "GET", "route": "/api/v1/users/me"}
    assert value(samples, "http_request_duration_seconds_count", **labels) == 3
    total = value(samples, "http_request_duration_seconds_sum", **labels)
    assert total is not None
    assert total > 0
    assert value(samples, "http_request_duration_seconds_bucket", **labels, le="+Inf") == 3
    buckets = [
        v
        for (name, lbls), v in samples.items()
        if name == "http_request_duration_seconds_bucket" and dict(lbls).items() >= labels.items()
    ]
    assert len(buckets) > 5  # real buckets, not a single summary


async def test_unknown_paths_share_one_unmatched_label(client: AsyncClient) -> None:
    for path in ("/wp-login.php", "/.env", "/api/v1/nope/123", "/admin/42"):
        assert (await client.get(path)).status_code == 404

    samples = await scrape(client)

    assert value(samples, "http_requests_total", method="GET", route="unmatched", status="404") == 4
    assert routes(samples) == {"unmatched"}


async def test_pool_gauges_are_exported(client: AsyncClient, user_headers: dict[str, str]) -> None:
    await client.get("/api/v1/users/me", headers=user_headers)

    samples = await scrape(client)

    # Between requests no connection is checked out: the session went back to the pool.
    assert value(samples, "db_pool_connections_in_use") == 0
    overflow = value(samples, "db_pool_overflow")
    assert overflow is not None
    assert overflow <= 0
    assert value(samples, "http_requests_in_flight") == 1  # this scrape


async def test_each_app_has_its_own_registry(client: AsyncClient) -> None:
    # A fresh app (each test builds one) starts from zero: no counters leak between apps.
    samples = await scrape(client)
    assert routes(samples) == set()
