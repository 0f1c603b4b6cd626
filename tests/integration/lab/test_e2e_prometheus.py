"""End to end: mesh traffic scraped by the real Prometheus, judged by Flagger's builtin Istio queries."""

from __future__ import annotations

from lab.testing import wait_for

# Flagger's builtin request-success-rate and request-duration queries, as shipped for Istio.
SUCCESS_RATE = (
    'sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}",'
    'destination_workload=~"{target}",response_code!~"5.*"}}[{interval}])) / '
    'sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}",'
    'destination_workload=~"{target}"}}[{interval}])) * 100'
)
DURATION_P99 = (
    'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{reporter="destination",'
    'destination_workload_namespace="{namespace}",destination_workload=~"{target}"}}[{interval}])) by (le))'
)
SERVED = ('sum(max_over_time(istio_requests_total{{reporter="destination",destination_workload_namespace="{namespace}",'
          'destination_workload="{target}"}}[1m]))')


def test_flagger_queries_see_the_canary_error_rate(lab, namespace, lab_objects):
    lab_objects.workload("podinfo-primary", error_rate=0, replicas=2)
    lab_objects.workload("podinfo-canary", error_rate=0.5)
    lab_objects.wait_ready("podinfo-primary")
    lab_objects.wait_ready("podinfo-canary")
    lab_objects.virtualservice(
        "podinfo", ["podinfo"],
        [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 90},
                    {"destination": {"host": "podinfo-canary"}, "weight": 10}]}],
        annotations={"lab.progressive.delivery/rps": "200"})

    # About 15 s at 20 req/s reach the canary; wait for what Prometheus has scraped, not for the clock.
    wait_for(lambda: (lab.query_value(SERVED.format(namespace=namespace, target="podinfo-canary")) or 0) >= 250,
             timeout=60, interval=0.5, message="250 canary requests in Prometheus")

    primary = lab.query_value(SUCCESS_RATE.format(namespace=namespace, target="podinfo-primary", interval="1m"))
    canary = lab.query_value(SUCCESS_RATE.format(namespace=namespace, target="podinfo-canary", interval="1m"))
    assert primary == 100.0
    # >= 250 requests at p=0.5: one standard deviation is at most 3.2 points, so 16 points is five.
    assert canary is not None and 34 < canary < 66

    p99 = lab.query_value(DURATION_P99.format(namespace=namespace, target="podinfo-primary", interval="1m"))
    # Default median 20 ms with a p99 about 2.5x: the histogram puts it in the 50-100 ms bucket.
    assert p99 is not None and 40 < p99 < 100
