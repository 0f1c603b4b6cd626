"""A Flagger installation taken over while the mesh serves: Flagger's objects adopted by the role, the Canary deleted,
then a release to its end, with every request answered and the primary's replicas unchanged."""

from __future__ import annotations

import threading

from lab.testing import deployment, wait_for
from tests.support.releases import Release

CANARY_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "canaries.flagger.app"},
    "spec": {"group": "flagger.app", "scope": "Namespaced",
             "names": {"plural": "canaries", "singular": "canary", "kind": "Canary", "listKind": "CanaryList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1"
PRIMARY_REPLICAS = 3
ISTIO = ("networking.istio.io", "v1")


def manifest(namespace: str) -> dict:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "app", "namespace": namespace},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                     "progressDeadlineSeconds": 60, "service": {"port": 9898},
                     "analysis": {"interval": "1m", "threshold": 2, "stepWeights": [50], "metrics": [
                         {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}]}}}


def serve_canary_crd(api_client) -> None:
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    extensions = client.ApiextensionsV1Api(api_client)
    try:
        extensions.create_custom_resource_definition(CANARY_CRD)
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition("canaries.flagger.app").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)
    wait_for(established, timeout=20, message="the flagger.app Canary CRD to be established")


def flagger_objects(namespace: str, canary: dict) -> list[tuple[str, dict]]:
    """What Flagger leaves once a Canary is initialized: the objects of its deployment controller and Istio router."""
    owner = [{"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": canary["metadata"]["name"],
              "uid": canary["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    primary = deployment("app-primary", labels={"app": "app-primary"}, replicas=PRIMARY_REPLICAS,
                         annotations={"flagger-id": "3f1c9a52-7d2e-4b8a-9c61-0e5d2f7a4b13"})
    primary["metadata"]["ownerReferences"] = owner

    def service(name: str, selector: str) -> dict:
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "labels": {"app": name}, "ownerReferences": owner},
                "spec": {"type": "ClusterIP", "selector": {"app": selector},
                         "ports": [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}]}}

    def rule(name: str) -> dict:
        return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
                "metadata": {"name": name, "ownerReferences": owner}, "spec": {"host": name}}

    virtual_service = {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "app", "ownerReferences": owner},
        "spec": {"hosts": ["app"], "gateways": ["mesh"], "http": [{"route": [
            {"destination": {"host": "app-primary"}, "weight": 100},
            {"destination": {"host": "app-canary"}, "weight": 0}]}]}}
    # A dependent the collection does not manage: it stays Flagger's, owned by the Canary.
    leftover = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "flagger-leftover", "ownerReferences": owner}}
    return [("deployment", primary), ("service", service("app-canary", "app")),
            ("service", service("app-primary", "app-primary")),
            ("service", service("app", "app-primary")), ("destinationrules", rule("app-primary")),
            ("destinationrules", rule("app-canary")), ("virtualservices", virtual_service), ("configmap", leftover)]


def primary_pods(release: Release) -> set[str]:
    return {pod.metadata.uid for pod in release.core.list_namespaced_pod(release.namespace,
                                                                         label_selector="app=app-primary").items}


class Traffic:
    """Requests through the mesh to the apex host for as long as the migration runs, every answer counted."""

    def __init__(self, lab, namespace: str) -> None:
        self.lab, self.namespace = lab, namespace
        self.total = self.failed = 0
        self.workloads: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            answer = self.lab.send("app", self.namespace, count=5)
            self.total += answer["total"]
            self.failed += answer["failed"]
            for name, count in answer["workloads"].items():
                self.workloads[name] = self.workloads.get(name, 0) + count


def test_a_flagger_canary_is_adopted_and_released_without_a_failed_request(lab, lab_api_client, lab_objects, namespace,
                                                                            tmp_path):
    serve_canary_crd(lab_api_client)
    # Flagger has scaled the target to zero; the primary serves.
    release = Release(lab, namespace, tmp_path, manifest=manifest(namespace), target=deployment("app", replicas=0))
    canary = release.custom.create_namespaced_custom_object("flagger.app", "v1beta1", namespace, "canaries",
                                                            manifest(namespace))
    for kind, body in flagger_objects(namespace, canary):
        if kind == "deployment":
            release.apps.create_namespaced_deployment(namespace, body)
        elif kind == "service":
            release.core.create_namespaced_service(namespace, body)
        elif kind == "configmap":
            release.core.create_namespaced_config_map(namespace, body)
        else:
            release.custom.create_namespaced_custom_object(*ISTIO, namespace, kind, body)
    lab_objects.wait_ready("app-primary")
    lab_objects.patch_virtualservice("app", {"metadata": {"annotations": {"example.com/routed": "yes"}}})
    primary_before = release.apps.read_namespaced_deployment("app-primary", namespace)
    pods_before = primary_pods(release)

    with Traffic(lab, namespace) as traffic:
        wait_for(lambda: traffic.total > 0, timeout=10, message="the first requests")
        refused = release.run()
        assert refused.returncode != 0
        assert "was created by Flagger for Canary %s/app" % namespace in refused.stdout, refused.stdout[-3000:]
        assert "canary_adopt_flagger" in refused.stdout
        assert release.custom.get_namespaced_custom_object(*ISTIO, namespace, "virtualservices", "app")["metadata"][
            "ownerReferences"], "a refused run changes nothing"

        adopted = release.run(canary_adopt_flagger=True)
        assert adopted.returncode == 0, adopted.stdout[-3000:]
        primary = release.apps.read_namespaced_deployment("app-primary", namespace)
        assert primary.spec.replicas == PRIMARY_REPLICAS
        # Same pod template, same ReplicaSet, same pods: nothing restarted.
        assert primary.spec.template == primary_before.spec.template
        assert primary_pods(release) == pods_before and len(pods_before) == PRIMARY_REPLICAS
        assert release.weights() == {"app-primary": 100, "app-canary": 0}
        for kind, name in (("Deployment", "app-primary"), ("Service", "app"), ("Service", "app-primary"),
                           ("Service", "app-canary"), ("destinationrules", "app-primary"),
                           ("destinationrules", "app-canary"), ("virtualservices", "app")):
            if kind == "Deployment":
                metadata = primary.to_dict()["metadata"]
                owners, labels = metadata["owner_references"], metadata["labels"]
            elif kind == "Service":
                metadata = release.core.read_namespaced_service(name, namespace).to_dict()["metadata"]
                owners, labels = metadata["owner_references"], metadata["labels"]
            else:
                metadata = release.custom.get_namespaced_custom_object(*ISTIO, namespace, kind, name)["metadata"]
                owners, labels = metadata.get("ownerReferences"), metadata["labels"]
            assert not owners and labels["app.kubernetes.io/managed-by"] == "progressive.delivery", (kind, name)

        # The Canary goes; the garbage collector takes what Flagger still owned, and nothing that was adopted.
        release.custom.delete_namespaced_custom_object("flagger.app", "v1beta1", namespace, "canaries", "app")
        release.set_template(image=NEW_IMAGE)
        released = release.run()
        assert released.returncode == 0, released.stdout[-3000:]
        assert release.state()["phase"] == "Succeeded"

        # What Flagger made and the collection does not manage stays Flagger's, owned by the Canary, for the garbage
        # collector to take (gone already, or still owned); everything adopted is owned by nothing (above), so the
        # collector has nothing of ours to take. When it runs is the control plane's business: minutes on a busy lab.
        leftovers = release.core.list_namespaced_config_map(namespace, field_selector="metadata.name=flagger-leftover")
        assert all([o.uid for o in item.metadata.owner_references or []] == [canary["metadata"]["uid"]]
                   for item in leftovers.items)
        wait_for(lambda: traffic.workloads.get("app-primary", 0) and traffic.total > 200, timeout=10,
                 message="requests after the release")

    primary = release.apps.read_namespaced_deployment("app-primary", namespace)
    assert primary.spec.template.spec.containers[0].image == NEW_IMAGE
    assert primary.spec.replicas == PRIMARY_REPLICAS
    assert release.weights() == {"app-primary": 100, "app-canary": 0} and release.replicas() == 0
    assert traffic.failed == 0, (traffic.failed, traffic.total)
    assert traffic.workloads.get("app", 0) > 0, "the canary served during the release: %s" % traffic.workloads
