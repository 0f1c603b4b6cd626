"""A deleted namespace's series leave the mesh's /metrics; a namespace whose workloads are scaled to 0 keeps its own."""

from __future__ import annotations

import random

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lab.mesh.dispatch import Upstream
from lab.mesh.engine import Mesh
from lab.mesh.evidence import SERIES
from lab.mesh.telemetry import INGRESS_GATEWAY, IstioTelemetry, belongs_to, label_values, mesh_client
from lab.mesh.topology import Topology, Workload
from lab.store import Store

GONE, KEPT = "gone", "kept"
STICKY = "flagger-cookie=abc; Max-Age=60"
ISTIO = ("istio_requests_total", "istio_request_duration_milliseconds_bucket",
         "istio_request_duration_milliseconds_count", "istio_request_duration_milliseconds_sum")
LAB = tuple(name + "_total" for name in SERIES)


def deployment(namespace, name, ready=1):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": ready, "template": {"metadata": {"labels": {"app": name}},
                                                     "spec": {"containers": [{"name": "app", "image": "x"}]}}},
            "status": {"readyReplicas": ready}}


def service(namespace, name):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"selector": {"app": name}}}


def virtualservice(namespace):
    """Mesh and gateway traffic, a weighted split with a sticky cookie from the canary, a mirror, and a
    route to a host that does not exist (503 NC, reported by the client alone)."""
    return {"metadata": {"name": "podinfo", "namespace": namespace,
                         "annotations": {"lab.progressive.delivery/rps": "400"}},
            "spec": {"hosts": ["podinfo"], "gateways": ["mesh", "public-gateway"],
                     "http": [{"match": [{"headers": {"x-ghost": {"exact": "1"}}}],
                               "route": [{"destination": {"host": "ghost.nowhere"}}]},
                              {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 50},
                                         {"destination": {"host": "podinfo-canary"}, "weight": 50,
                                          "headers": {"response": {"add": {"Set-Cookie": STICKY}}}}],
                               "mirror": {"host": "podinfo-canary"}}]}}


def populate(store, namespace):
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        store.create("services", service(namespace, name))
    for name in ("podinfo-primary", "podinfo-canary"):
        store.create("deployments", deployment(namespace, name))
    store.create("virtualservices", virtualservice(namespace))


def run(mesh, seconds, tick=0.1):
    rng = random.Random(5)
    for _ in range(int(round(seconds / tick))):
        topology = mesh.topology()
        mesh._generate(topology, mesh._sources, tick, rng)  # pylint: disable=protected-access


def exported(mesh):
    """name -> {labels: value} of every sample on /metrics, parsed as Prometheus would."""
    found: dict[str, dict] = {}
    for family in text_string_to_metric_families(generate_latest(mesh.registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def of_namespace(samples, namespace):
    """The samples a namespace's traffic made: destination or client there (Istio), `namespace` label (lab)."""
    keep = {}
    for labels, value in samples.items():
        named = dict(labels)
        if namespace in (named.get("namespace"), named.get("destination_service_namespace"),
                         named.get("source_workload_namespace")):
            keep[labels] = value
    return keep


def two_namespaces():
    store = Store()
    populate(store, GONE)
    populate(store, KEPT)
    mesh = Mesh(store, seed=11)
    run(mesh, 2)
    mesh.send("podinfo", GONE, count=20, headers={"x-ghost": "1"})
    mesh.send("podinfo", KEPT, count=20, headers={"x-ghost": "1"})
    return store, mesh


def test_every_series_kind_is_there_for_both_namespaces_to_begin_with():
    _, mesh = two_namespaces()
    samples = exported(mesh)
    for name in ISTIO + LAB:
        for namespace in (GONE, KEPT):
            assert of_namespace(samples.get(name, {}), namespace), (name, namespace)
    codes = {dict(labels)["response_flags"] for labels in of_namespace(samples["istio_requests_total"], GONE)}
    assert {"-", "NC"} <= codes


def test_a_deleted_namespace_s_series_disappear_and_the_others_stay_exactly():
    store, mesh = two_namespaces()
    before = exported(mesh)
    store.delete_namespace_contents(GONE)
    mesh.topology()
    after = exported(mesh)
    for name in ISTIO + LAB:
        assert not of_namespace(after.get(name, {}), GONE), name
        assert of_namespace(after.get(name, {}), KEPT) == of_namespace(before[name], KEPT), name
    assert GONE not in mesh.topology().namespaces


def test_a_scaled_down_workload_keeps_its_series_while_its_namespace_exists():
    store, mesh = two_namespaces()
    before = exported(mesh)
    for name in ("podinfo-primary", "podinfo-canary"):
        def scale_to_zero(obj):
            obj["spec"]["replicas"] = 0
            obj["status"]["readyReplicas"] = 0
            return obj
        store.mutate("deployments", KEPT, name, scale_to_zero)
    store.delete("virtualservices", KEPT, "podinfo")  # no more traffic: nothing can add to the counters
    mesh.topology()
    assert KEPT in mesh.topology().namespaces
    after = exported(mesh)
    for name in ISTIO + LAB:
        assert of_namespace(after[name], KEPT) == of_namespace(before[name], KEPT), name
    assert mesh.evidence.value("lab_requests", namespace=KEPT, destination_workload="podinfo-canary") > 0


def test_a_namespace_the_mesh_never_held_keeps_its_series_and_a_recreated_one_starts_afresh():
    store, mesh = two_namespaces()
    mesh.send("podinfo", "elsewhere", count=5)  # no Service: 503 NC, by a client in a namespace without objects
    store.delete_namespace_contents(GONE)
    mesh.topology()
    samples = exported(mesh)
    assert of_namespace(samples["istio_requests_total"], "elsewhere")

    populate(store, GONE)
    mesh.topology()
    assert not of_namespace(exported(mesh)["istio_requests_total"], GONE)
    mesh.send("podinfo-primary", GONE, count=3)
    counts = of_namespace(exported(mesh)["istio_requests_total"], GONE)
    assert sorted(counts.values()) == [3.0, 3.0]
    store.delete_namespace_contents(GONE)
    mesh.topology()
    assert not of_namespace(exported(mesh)["istio_requests_total"], GONE)


def test_series_go_with_their_destination_or_the_client_proxy_that_reported_them():
    primary = Workload("podinfo-primary", "b", 1, {"app": "podinfo"})
    served = Upstream("podinfo.b.svc.cluster.local", "podinfo", "b", primary, 200, 5.0)
    unserved = Upstream("ghost.c.svc.cluster.local", "ghost", "c", None, 503, 0.3, "NC")
    client = mesh_client("a")
    assert belongs_to(label_values("destination", client, served), {"b"})
    assert belongs_to(label_values("source", client, served), {"b"})
    # The client's proxy goes with namespace a; the server's proxy in b still reports its side.
    assert belongs_to(label_values("source", client, served), {"a"})
    assert not belongs_to(label_values("destination", client, served), {"a"})
    assert belongs_to(label_values("source", client, unserved), {"a"})
    assert not belongs_to(label_values("source", INGRESS_GATEWAY, served), {"a"})

    telemetry = IstioTelemetry()
    telemetry.record_request(client, served)
    telemetry.record_request(INGRESS_GATEWAY, served)
    telemetry.record_request(client, unserved)
    assert telemetry.series_count() == 5
    assert telemetry.forget_namespaces(frozenset()) == 0
    assert telemetry.forget_namespaces({"a"}) == 2  # the client's two source-side series
    assert telemetry.forget_namespaces({"b"}) == 3  # both sides of the gateway's request, the server side of a's


def test_the_topology_knows_the_namespaces_holding_objects_it_routes_by():
    topology = Topology(services=[service("s", "x")], deployments=[deployment("d", "x", 0)],
                        pods=[], endpointslices=[{"metadata": {"name": "e", "namespace": "e"}}])
    assert topology.namespaces == {"s", "d", "e"}
    assert Topology().namespaces == frozenset()
