"""Gateway API releases through the real ansible-playbook: Flagger's Gateway API guide as written, and a user's HTTPRoute.

The lab's mesh routes the HTTPRoute as a Gateway's Envoy would and exports that Envoy's cluster stats, which the
guide's MetricTemplates query. Counters are read as they are (never with increase(), which drops a new series'
first samples).
"""

from __future__ import annotations

import contextlib

import pytest
import yaml

from lab.seed import demo_deployment
from lab.testing import wait_for
from tests.support.modules import REPO_ROOT
from tests.support.releases import Release, assert_safe, hook_calls, short_manifest
from tests.support.routes import create_gateway

pytestmark = pytest.mark.slow

GUIDE = REPO_ROOT / "examples" / "gatewayapi"
BAD = {"lab.progressive.delivery/error-rate": "0.5", "lab.progressive.delivery/latency-ms": "2000"}
GATEWAY_API = ("gateway.networking.k8s.io", "v1")


def proxy_env(lab) -> dict:
    """The guide's webhooks call http://flagger-loadtester.test/, which the lab's hooks server answers as a proxy."""
    return {"http_proxy": lab.hooks_url, "HTTP_PROXY": lab.hooks_url, "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost"}


def templates_for(lab, tmp_path) -> list[str]:
    """The guide's MetricTemplate files, pointed at the lab's Prometheus as a user points them at theirs."""
    paths = []
    for name in ("error-rate", "latency"):
        template = yaml.safe_load((GUIDE / ("metric-template-%s.yaml" % name)).read_text())
        template["spec"]["provider"]["address"] = lab.prometheus_url
        paths.append(tmp_path / ("metric-template-%s.yaml" % name))
        paths[-1].write_text(yaml.safe_dump(template))
    return [str(path) for path in paths]


@pytest.fixture
def guide_namespaces(kube):
    """The guide's namespaces: test (podinfo) and projectcontour (the Gateway contour)."""
    created = []
    for name in ("test", "projectcontour"):
        def settled(name=name):
            found = kube.core.list_namespace(field_selector="metadata.name=" + name).items
            return "absent" if not found else None if found[0].status.phase == "Terminating" else "active"
        if wait_for(settled, timeout=60, interval=0.2, message="namespace %s not terminating" % name) == "absent":
            kube.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            created.append(name)
    create_gateway(kube.custom, "projectcontour", "contour", class_name="contour")
    try:
        yield
    finally:
        for name in created:
            kube.core.delete_namespace(name)


@contextlib.contextmanager
def running(process):
    """A playbook run in the background; when the block fails, it is stopped and its output joins the failure."""
    try:
        yield process
    except AssertionError as failure:
        if process.poll() is None:
            process.kill()
        output, _ = process.communicate()
        raise AssertionError("%s\n--- playbook output ---\n%s" % (failure, (output or "")[-4000:])) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def cluster_requests(lab, service: str) -> float:
    return lab.query_value('sum(envoy_cluster_upstream_rq{envoy_cluster_name="test_%s_9898"})' % service) or 0.0


def test_flaggers_gateway_api_guide_promotes_a_good_revision_and_rolls_back_a_bad_one(lab, kube, guide_namespaces, tmp_path):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    release = Release(lab, "test", tmp_path, manifest_path=GUIDE / "podinfo-canary.yaml",
                      target=demo_deployment(namespace="test", name="podinfo"), env=proxy_env(lab),
                      mesh_provider="gatewayapi:v1")
    client.AutoscalingV2Api(lab.kube_client()).create_namespaced_horizontal_pod_autoscaler("test", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "podinfo"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "minReplicas": 2, "maxReplicas": 4}})
    settings = {"canary_metric_templates": templates_for(lab, tmp_path),
                "canary_interval_override": "3s"}
    initialized = release.run(**settings)
    assert initialized.returncode == 0, initialized.stdout[-3000:]
    route = release.route()
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "contour",
                                            "namespace": "projectcontour"}]
    assert route["spec"]["hostnames"] == ["localproject.contour.io"]
    assert release.weights() == {"podinfo-primary": 100, "podinfo-canary": 0}

    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    with running(release.popen(**settings)) as process:
        # Between the first step and the promotion, the canary's share of the gateway's requests follows the weights.
        wait_for(lambda: release.weights()["podinfo-canary"] > 0, timeout=120, interval=0.1, message="the first step")
        start = (cluster_requests(lab, "podinfo-canary"), cluster_requests(lab, "podinfo-primary"))
        seen = set()

        def back_on_the_primary() -> bool:
            weight = release.weights()["podinfo-canary"]
            seen.add(weight)
            return weight == 0
        wait_for(back_on_the_primary, timeout=120, interval=0.1, message="the promotion")
        canary = cluster_requests(lab, "podinfo-canary") - start[0]
        primary = cluster_requests(lab, "podinfo-primary") - start[1]
        output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output[-4000:]
    assert {10, 20, 30, 40, 50} <= seen, seen
    # Weights 10 to 50, one interval each: about 30 % of the requests on average.
    assert 0.1 < canary / (canary + primary) < 0.5, (canary, primary)
    # The guide's smoke test went through the proxy to the load tester, and passed before the canary got traffic
    # (other tests of the session also post to the lab's load tester in a namespace called test).
    smoke = [call for call in hook_calls(lab, "test", "/") if call["body"].get("name") == "podinfo"
             and call["headers"].get("Host") == "flagger-loadtester.test"
             and (call["body"].get("metadata") or {}).get("type") == "bash"]
    assert smoke and smoke[-1]["status"] == 200, [(c["status"], c["headers"], c["body"]) for c in smoke]
    assert release.template("podinfo-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    assert_safe(release)
    assert release.state()["phase"] == "Succeeded"
    assert release.state()["route"]["kind"] == "HTTPRoute"

    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2", annotations=BAD)
    bad = release.run(**settings)
    assert bad.returncode != 0 and "rolling back" in bad.stdout, bad.stdout[-4000:]
    assert "error-rate" in bad.stdout or "latency" in bad.stdout
    assert release.template("podinfo-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    assert_safe(release)
    assert release.state()["phase"] == "Failed"
    # The route is as initialize made it: one rule, primary 100, canary 0, nothing added.
    assert release.route()["spec"] == route["spec"]


def test_a_users_http_route_keeps_its_other_rules_filters_and_parents(lab, kube, namespace, tmp_path):
    create_gateway(kube.custom, namespace)
    header = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-team", "value": "shop"}]}}
    legacy = {"name": "legacy", "matches": [{"path": {"type": "PathPrefix", "value": "/legacy"}}],
              "backendRefs": [{"group": "", "kind": "Service", "name": "legacy", "port": 80, "weight": 1}]}
    owned = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop"},
             "spec": {"parentRefs": [{"name": "public", "namespace": namespace, "sectionName": "http"},
                                     {"name": "app", "kind": "Service", "group": "", "port": 9898}],
                      "hostnames": ["shop.example.com"],
                      "rules": [legacy,
                                {"name": "app", "filters": [header],
                                 "backendRefs": [{"group": "", "kind": "Service", "name": "app-primary", "port": 9898,
                                                  "weight": 100},
                                                 {"group": "", "kind": "Service", "name": "app-canary", "port": 9898,
                                                  "weight": 0}]}]}}
    before = kube.custom.create_namespaced_custom_object(*GATEWAY_API, namespace, "httproutes", owned)
    # stepWeightPromotion: after the promotion the canary's share shrinks to 25 % for an interval, then to 0.
    manifest = short_manifest(namespace, stepWeights=[50], stepWeightPromotion=25)
    manifest["spec"]["provider"] = "gatewayapi:v1"
    manifest["spec"]["service"] = {"port": 9898, "gatewayRefs": [{"name": "public", "namespace": namespace}]}
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    adopt = {"canary_http_route": {"adopt": "shop", "rule": "app"}}
    assert release.run(**adopt).returncode == 0
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    with running(release.popen(**adopt)) as process:
        def at_half() -> dict | None:
            spec = kube.custom.get_namespaced_custom_object(*GATEWAY_API, namespace, "httproutes", "shop")["spec"]
            return spec if spec["rules"][1]["backendRefs"][1]["weight"] == 50 else None
        during = wait_for(at_half, timeout=120, interval=0.1, message="the canary at 50 %")
        output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output[-4000:]
    assert "promotion: canary weight 25%" in output, output[-4000:]
    assert during["rules"][0] == legacy and during["rules"][1]["filters"] == [header]
    assert during["parentRefs"] == before["spec"]["parentRefs"]
    after = kube.custom.get_namespaced_custom_object(*GATEWAY_API, namespace, "httproutes", "shop")
    assert after["spec"] == before["spec"]
    # Adopted, never owned: no marker of this collection on the user's object.
    assert after["metadata"].get("labels") == before["metadata"].get("labels")
    assert after["metadata"].get("annotations") == before["metadata"].get("annotations")
