"""Where a request ends up and how it is answered (topology + dispatch + outcome drawing)."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter

import pytest

from lab.mesh.dispatch import dispatch, duration_ms, serve
from lab.mesh.outcomes import Behaviour, behaviour_from_annotations, draw_outcome, poisson
from lab.mesh.routing import Request
from lab.mesh.topology import Topology


def deployment(name, ready=1, labels=None, annotations=None, namespace="test", service_account=None):
    spec = {"containers": [{"name": "app", "image": "x"}]}
    if service_account:
        spec["serviceAccountName"] = service_account
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": labels or {"app": name}, "annotations": annotations or {}},
                                  "spec": spec}},
            "status": {"readyReplicas": ready}}


def service(name, selector=None, namespace="test"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"selector": selector or {"app": name}}}


def vs(http, namespace="test", hosts=("podinfo",)):
    return {"metadata": {"name": "podinfo", "namespace": namespace}, "spec": {"hosts": list(hosts), "http": http}}


def canary_topology(canary_annotations=None, canary_ready=1):
    return Topology(
        services=[service("podinfo-primary"), service("podinfo-canary"), service("podinfo", {"app": "podinfo"})],
        deployments=[deployment("podinfo-primary", 2), deployment("podinfo-canary", canary_ready,
                                                                  annotations=canary_annotations)],
    )


def weighted(primary, canary, **extra):
    route = {"route": [{"destination": {"host": "podinfo-primary"}, "weight": primary},
                       {"destination": {"host": "podinfo-canary"}, "weight": canary}]}
    route.update(extra)
    return vs([route])


def test_weights_split_traffic_between_workloads():
    rng = random.Random(1)
    topology = canary_topology()
    served = Counter(dispatch(topology, weighted(90, 10), Request("podinfo", source_namespace="test"), rng)
                     .upstream.workload.name for _ in range(20000))
    assert 0.09 < served["podinfo-canary"] / 20000 < 0.11


def test_error_rate_annotation_sets_the_share_of_5xx():
    rng = random.Random(2)
    topology = canary_topology({"lab.progressive.delivery/error-rate": "0.5"})
    codes = Counter(dispatch(topology, weighted(0, 100), Request("podinfo"), rng).code for _ in range(10000))
    errors = codes[500] + codes[503]
    assert 0.47 < errors / 10000 < 0.53
    assert codes[500] > codes[503] > 0
    assert set(codes) == {200, 500, 503}


def test_no_ready_endpoint_is_a_503_with_no_healthy_upstream_flag():
    rng = random.Random(3)
    outcome = dispatch(canary_topology(canary_ready=0), weighted(0, 100), Request("podinfo"), rng)
    assert (outcome.code, outcome.upstream.flags, outcome.upstream.workload) == (503, "UH", None)
    assert outcome.upstream.service_name == "podinfo-canary"


def test_unknown_service_and_unmatched_route():
    rng = random.Random(4)
    topology = canary_topology()
    missing = dispatch(topology, vs([{"route": [{"destination": {"host": "nowhere"}}]}]), Request("podinfo"), rng)
    assert (missing.code, missing.upstream.flags) == (503, "NC")
    unmatched = dispatch(topology, vs([{"match": [{"headers": {"x": {"exact": "y"}}}],
                                        "route": [{"destination": {"host": "podinfo-primary"}}]}]),
                         Request("podinfo"), rng)
    assert (unmatched.code, unmatched.upstream.flags) == (404, "NR")


def test_service_endpoints_are_split_by_ready_pods_without_a_virtualservice():
    rng = random.Random(5)
    topology = Topology(services=[service("podinfo", {"app": "podinfo"})],
                        deployments=[deployment("podinfo-a", 3, {"app": "podinfo"}),
                                     deployment("podinfo-b", 1, {"app": "podinfo"}),
                                     deployment("podinfo-c", 0, {"app": "podinfo"})])
    served = Counter(serve(topology, "podinfo", "test", rng).workload.name for _ in range(8000))
    assert 0.72 < served["podinfo-a"] / 8000 < 0.78
    assert "podinfo-c" not in served


def test_subsets_come_from_destination_rules():
    rng = random.Random(6)
    topology = Topology(
        services=[service("reviews", {"app": "reviews"})],
        deployments=[deployment("reviews-v1", 1, {"app": "reviews", "version": "v1"}),
                     deployment("reviews-v2", 1, {"app": "reviews", "version": "v2"})],
        destinationrules=[{"metadata": {"name": "reviews", "namespace": "test"},
                           "spec": {"host": "reviews.test.svc.cluster.local",
                                    "subsets": [{"name": "v2", "labels": {"version": "v2"}}]}}])
    names = {serve(topology, "reviews", "test", rng, "v2").workload.name for _ in range(200)}
    assert names == {"reviews-v2"}
    assert serve(topology, "reviews", "test", rng, "v9").flags == "UH"


def test_mirror_copies_a_share_without_changing_the_client_outcome():
    rng = random.Random(7)
    topology = canary_topology({"lab.progressive.delivery/error-rate": "1"})
    route = vs([{"route": [{"destination": {"host": "podinfo-primary"}}],
                 "mirror": {"host": "podinfo-canary"}, "mirrorPercentage": {"value": 30}}])
    outcomes = [dispatch(topology, route, Request("podinfo"), rng) for _ in range(5000)]
    assert all(o.code == 200 and o.upstream.workload.name == "podinfo-primary" for o in outcomes)
    mirrored = [m for o in outcomes for m in o.mirrors]
    assert 0.27 < len(mirrored) / 5000 < 0.33
    assert all(m.workload.name == "podinfo-canary" and m.code >= 500 for m in mirrored)


def test_fault_abort_delay_and_timeout():
    rng = random.Random(8)
    topology = canary_topology()
    aborted = dispatch(topology, weighted(100, 0, fault={"abort": {"httpStatus": 418, "percentage": {"value": 100}}}),
                       Request("podinfo"), rng)
    assert (aborted.code, aborted.upstream.flags, aborted.upstream.workload) == (418, "FI", None)
    delayed = dispatch(topology, weighted(100, 0, fault={"delay": {"fixedDelay": "2s", "percentage": {"value": 100}}}),
                       Request("podinfo"), rng)
    assert delayed.code == 200 and delayed.latency_ms >= 2000 and delayed.upstream.flags == "DI"
    timed_out = dispatch(topology, weighted(100, 0, timeout="1s",
                                            fault={"delay": {"fixedDelay": "2s", "percentage": {"value": 100}}}),
                         Request("podinfo"), rng)
    assert (timed_out.code, timed_out.upstream.flags, timed_out.latency_ms) == (504, "UT", 1000)


@pytest.mark.parametrize("text, expected", [("1s", 1000.0), ("250ms", 250.0), ("1.5s", 1500.0), ("2m", 120000.0),
                                            ("soon", None), (None, None)])
def test_duration_ms(text, expected):
    assert duration_ms(text) == expected


def test_behaviour_from_annotations_clamps_and_defaults():
    assert behaviour_from_annotations({}) == Behaviour(0.0, 20.0)
    assert behaviour_from_annotations({"lab.progressive.delivery/error-rate": "1.7",
                                       "lab.progressive.delivery/latency-ms": "150"}) == Behaviour(1.0, 150.0)
    assert behaviour_from_annotations({"lab.progressive.delivery/error-rate": "lots"}).error_rate == 0.0


def test_latency_has_the_configured_median_and_a_realistic_tail():
    rng = random.Random(9)
    latencies = sorted(draw_outcome(Behaviour(0.0, 100.0), rng)[1] for _ in range(20000))
    median = statistics.median(latencies)
    p99 = latencies[int(0.99 * len(latencies))]
    assert 95 < median < 105
    assert 2.0 < p99 / median < 3.0


def test_poisson_has_the_expected_mean_for_small_and_large_rates():
    rng = random.Random(10)
    for expected in (2.0, 200.0):
        draws = [poisson(expected, rng) for _ in range(4000)]
        mean = statistics.fmean(draws)
        # Mean of 4000 Poisson draws: standard error sqrt(expected / 4000).
        assert abs(mean - expected) < 5 * math.sqrt(expected / 4000)
    assert poisson(0, rng) == 0


def pod(name, workload, template_hash, ready=True, annotations=None, labels=None, terminating=False):
    meta = {"name": name, "namespace": "test",
            "labels": dict(labels or {"app": workload}, **{"pod-template-hash": template_hash}),
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{workload}-{template_hash}"}],
            "annotations": annotations or {}}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"serviceAccountName": "podinfo"},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_endpoints_are_serving_pods_and_a_rollout_mixes_old_and_new_behaviour():
    rng = random.Random(11)
    failing = {"lab.progressive.delivery/error-rate": "1"}
    topology = Topology(
        services=[service("podinfo", {"app": "podinfo"})],
        # The Deployment's template already says "fail", but only one new pod serves yet.
        deployments=[deployment("podinfo", 2, {"app": "podinfo"}, failing)],
        pods=[pod("podinfo-old-a", "podinfo", "old"), pod("podinfo-new-a", "podinfo", "new", annotations=failing),
              pod("podinfo-new-b", "podinfo", "new", ready=False, annotations=failing),
              pod("podinfo-old-b", "podinfo", "old", terminating=True)])
    upstreams = [serve(topology, "podinfo", "test", rng) for _ in range(4000)]
    assert {u.workload.name for u in upstreams} == {"podinfo"}
    failed = sum(1 for u in upstreams if u.code >= 500) / 4000
    # One serving pod of each template: half the requests reach the failing one.
    assert 0.45 < failed < 0.55
    assert {u.workload.principal for u in upstreams} == {"spiffe://cluster.local/ns/test/sa/podinfo"}


def test_a_deployment_without_pod_objects_is_read_from_its_status():
    topology = Topology(services=[service("podinfo")], deployments=[deployment("podinfo", 0)])
    assert serve(topology, "podinfo", "test", random.Random(12)).flags == "UH"
