"""On the real control plane the mesh finds a Service's endpoints in its EndpointSlices, as Envoy does."""

from __future__ import annotations

from lab.mesh.topology import Topology


def pod(name, labels, template="h1", ready=True, namespace="test"):
    return {"metadata": {"name": name, "namespace": namespace, "labels": dict(labels, **{"pod-template-hash": template}),
                         "ownerReferences": [{"kind": "ReplicaSet", "name": labels["app"] + "-" + template}]},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def service(name, selector, namespace="test"):
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"selector": dict(selector)}}


def endpoint_slice(service_name, pods, ready=True, namespace="test"):
    return {"metadata": {"name": service_name + "-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": name, "namespace": namespace}} for name in pods]}


PODS = [pod("web-1", {"app": "web", "version": "v1"}), pod("web-2", {"app": "web", "version": "v2"}, template="h2"),
        pod("other-1", {"app": "other"})]


def names(workloads):
    return sorted((w.name, w.ready_replicas) for w in workloads)


def test_endpoints_are_the_pods_the_slices_list_not_what_the_selector_would_pick():
    topology = Topology(services=[service("web", {"app": "web"})], pods=PODS,
                        endpointslices=[endpoint_slice("web", ["web-1", "other-1"])])
    assert names(topology.endpoints(topology.service("web", "test"))) == [("other", 1), ("web", 1)]


def test_a_not_ready_endpoint_or_an_unknown_pod_serves_nothing():
    topology = Topology(services=[service("web", {"app": "web"})], pods=PODS,
                        endpointslices=[endpoint_slice("web", ["web-1"], ready=False),
                                        endpoint_slice("web", ["gone-pod"])])
    assert topology.endpoints(topology.service("web", "test")) == []


def test_a_service_without_slices_has_no_endpoints_even_when_its_selector_matches():
    topology = Topology(services=[service("web", {"app": "web"})], pods=PODS, endpointslices=[])
    assert topology.endpoints(topology.service("web", "test")) == []


def test_subsets_narrow_the_sliced_endpoints_by_their_labels():
    rule = {"metadata": {"name": "web", "namespace": "test"},
            "spec": {"host": "web", "subsets": [{"name": "v2", "labels": {"version": "v2"}}]}}
    topology = Topology(services=[service("web", {"app": "web"})], pods=PODS, destinationrules=[rule],
                        endpointslices=[endpoint_slice("web", ["web-1", "web-2"])])
    endpoints = topology.endpoints(topology.service("web", "test"), "v2")
    assert [w.labels["version"] for w in endpoints] == ["v2"]


def test_without_slices_given_the_selector_decides_as_before():
    topology = Topology(services=[service("web", {"app": "web"})], pods=PODS)
    assert names(topology.endpoints(topology.service("web", "test"))) == [("web", 1), ("web", 1)]
