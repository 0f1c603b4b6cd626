"""Every Flagger strategy through the real ansible-playbook, on Canary manifests written as Flagger's docs show them.

Each test promotes a good revision and rolls back a bad one. While the good one is held at its promotion gate, the
mesh's telemetry in Prometheus shows the traffic went where the strategy says. Counters are read as they are
(never with increase(), which drops a new series' first samples).
"""

from __future__ import annotations

import contextlib
import sys

import pytest

from lab.testing import wait_for
from tests.support.modules import REPO_ROOT, run_playbook
from tests.support.releases import Release, assert_safe, hook_bodies, post, short_manifest
from tests.support.routes import create_gateway

pytestmark = pytest.mark.slow

# Sub-second steps; holds re-analyse and ask the gate a few times a second, so a held release costs little CPU.
TICKS = {"canary_interval_override": "300ms", "canary_metric_interval_override": "10s", "canary_poll": 0.5,
         "canary_webhook_gate_poll": 0.25}
# A fresh canary has no telemetry for its first seconds; sub-second analyses count that as failed checks.
PATIENT = 60
GATEWAYS = ["public-gateway.istio-system.svc.cluster.local", "mesh"]
# Slow as well as failing: the latency histogram's series exist from the good release, so the very first analyses
# see the regression (a new 5xx series needs two scrapes before rate() counts it).
BAD = {"lab.progressive.delivery/error-rate": "0.5", "lab.progressive.delivery/latency-ms": "2000"}
ROLLBACK = REPO_ROOT / "playbooks" / "rollback.yml"
ISTIO, GATEWAY_API = "istio", "gatewayapi"


def count(lab, promql: str) -> float:
    """A counter's value now; a series that never appeared counts 0."""
    return lab.query_value(promql) or 0.0


def release_with_gate(lab, namespace, tmp_path, webhooks=(), service=None, router=ISTIO, **analysis) -> Release:
    """A Canary whose promotion waits for the lab's gate, initialized, with a new revision waiting to be released.

    With ``router=GATEWAY_API`` it routes through an HTTPRoute attached to a Gateway of its namespace.
    """
    hooks = [{"name": "approve-promotion", "type": "confirm-promotion", "url": lab.hooks_url + "/gate/check"},
             {"name": "notify", "type": "event", "url": lab.hooks_url + "/gate/approve"}] + list(webhooks)
    manifest = short_manifest(namespace, webhooks=hooks, threshold=PATIENT, stepWeights=None, **analysis)
    if router == GATEWAY_API:
        manifest["spec"]["provider"] = "gatewayapi:v1"
        manifest["spec"]["service"] = dict(manifest["spec"]["service"], gatewayRefs=[{"name": "public", "namespace": namespace}],
                                           **(service or {}))
        del manifest["spec"]["service"]["gateways"]
    else:
        manifest["spec"]["service"].update(gateways=GATEWAYS, **(service or {}))
    release = Release(lab, namespace, tmp_path, manifest=manifest)
    if router == GATEWAY_API:
        create_gateway(release.custom, namespace)
    initialized = release.run(**TICKS)
    assert initialized.returncode == 0, initialized.stdout[-3000:]
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.1")
    return release


@contextlib.contextmanager
def held_at_promotion(lab, release: Release, **ticks):
    """Close the promotion gate and start the release; yields the running playbook once it waits for promotion.

    The playbook is killed when the block fails, so a failed test leaves no run behind.
    """
    post(lab.hooks_url + "/gate/close", {"name": release.name, "namespace": release.namespace})
    process = release.popen(**dict(TICKS, **ticks))
    try:
        wait_for(lambda: release.state().get("phase") == "WaitingPromotion", timeout=180, interval=0.2,
                 message="the release waiting for its promotion gate")
        yield process
    except BaseException:
        process.kill()
        process.communicate()
        raise


def promote(lab, release: Release, process) -> str:
    post(lab.hooks_url + "/gate/open", {"name": release.name, "namespace": release.namespace})
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    assert release.state()["phase"] == "Succeeded"
    assert release.template(release.name + "-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    return output


def roll_back_a_bad_revision(release: Release) -> None:
    release.set_template(image="ghcr.io/stefanprodan/podinfo:6.7.2", annotations=BAD)
    # Each analysis waits one interval and reads a window no longer than it: a 10 s window read 300 ms after the
    # canary started holds only the good revision's requests of the release before, and would promote the bad one.
    result = release.run(**dict(TICKS, canary_interval_override="3s", canary_metric_interval_override="3s"))
    assert result.returncode != 0, result.stdout[-3000:]
    assert release.state()["phase"] == "Failed", result.stdout[-3000:]
    assert release.template(release.name + "-primary")["spec"]["containers"][0]["image"].endswith(":6.7.1")
    assert_safe(release)
    assert_route_as_before(release)


def routes(release: Release) -> dict[str | None, dict]:
    """The VirtualService's routes or the HTTPRoute's rules by name: their backends' weights and whether they match."""
    spec = release.route()["spec"]
    if release.gateway_api:
        return {rule.get("name"): {"weights": {ref["name"]: ref.get("weight", 1) for ref in rule["backendRefs"]},
                                   "matches": any(m.get("headers") for m in rule.get("matches") or [])}
                for rule in spec["rules"]}
    return {route.get("name"): {"weights": {d["destination"]["host"]: d.get("weight", 0) for d in route["route"]},
                                "matches": bool(route.get("match"))} for route in spec["http"]}


def assert_route_as_before(release: Release) -> None:
    """Nothing of the strategy is left: one route, no mirror, no cookies."""
    spec = release.route()["spec"]
    if release.gateway_api:
        assert len(spec["rules"]) == 1, spec["rules"]
        rule = spec["rules"][0]
        assert not any(f["type"] in ("RequestMirror", "ResponseHeaderModifier") for f in rule.get("filters") or []), rule
        assert all(not ref.get("filters") for ref in rule["backendRefs"]), rule["backendRefs"]
        return
    http = spec["http"]
    assert len(http) == 1, http
    assert "mirror" not in http[0] and "mirrorPercentage" not in http[0]
    assert all(not (d.get("headers") or {}).get("response") for d in http[0]["route"]), http[0]["route"]


def series(release: Release, metric: str, **labels) -> str:
    selector = ",".join('%s="%s"' % item for item in dict(namespace=release.namespace, **labels).items())
    return "sum(%s{%s})" % (metric, selector)


@pytest.mark.parametrize("router", [ISTIO, GATEWAY_API])
def test_ab_testing_sends_only_matched_requests_to_the_canary(lab, namespace, tmp_path, router):
    # Flagger's A/B testing guides: a header or a cookie selects the canary for ten iterations (here three).
    match = [{"headers": {"x-canary": {"regex": ".*insider.*"}}},
             {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}]
    release = release_with_gate(lab, namespace, tmp_path, iterations=3, match=match, router=router)
    with held_at_promotion(lab, release) as process:
        found = routes(release)
        assert found["app-canary-match"] == {"weights": {"app-canary": 100}, "matches": True}, found
        weighted = [route for name, route in found.items() if name != "app-canary-match"]
        assert weighted == [{"weights": {"app-primary": 100, "app-canary": 0}, "matches": False}], found
        matched_to_canary = series(release, "lab_requests_total", destination_workload="app", matched="true")
        matched_to_primary = series(release, "lab_requests_total", destination_workload="app-primary", matched="true")
        # A scrape after the match route went in: from then on, matched requests reach the canary only.
        before = count(lab, matched_to_canary)
        wait_for(lambda: count(lab, matched_to_canary) > before, timeout=30, message="a scrape with matched requests")
        primary_then = count(lab, matched_to_primary)
        seen = count(lab, matched_to_canary)
        wait_for(lambda: count(lab, matched_to_canary) >= seen + 10, timeout=60, message="ten more matched requests")
        assert count(lab, matched_to_primary) == primary_then
        assert count(lab, series(release, "lab_requests_total", destination_workload="app", matched="false")) == 0
    output = promote(lab, release, process)
    assert "iteration 3/3" in output
    assert_route_as_before(release)
    messages = [body["metadata"]["eventMessage"] for body in hook_bodies(lab, namespace, "/gate/approve")]
    for expected in ("New revision detected! Scaling up app.%s" % namespace, "Advance app.%s canary iteration 1/3" % namespace,
                     "Halt app.%s advancement waiting for approval approve-promotion" % namespace):
        assert expected in messages, messages
    roll_back_a_bad_revision(release)


def test_blue_green_gives_users_nothing_of_the_canary_until_the_switch(lab, namespace, tmp_path):
    # Flagger's Istio blue/green guide: the load tester's hey is the only traffic the canary gets while it is analysed.
    load = {"name": "load-test", "url": lab.hooks_url + "/", "timeout": "5s",
            "metadata": {"type": "cmd", "cmd": "hey -z 1m -q 10 -c 2 http://app-canary.%s:9898/" % namespace}}
    release = release_with_gate(lab, namespace, tmp_path, webhooks=[load], iterations=3)
    with held_at_promotion(lab, release) as process:
        assert release.weights() == {"app-primary": 100, "app-canary": 0}
        to_canary = 'sum(istio_requests_total{reporter="source",destination_workload_namespace="%s",destination_workload="app",%s})'
        from_load_tester = to_canary % (namespace, 'source_workload="flagger-loadtester"')
        from_users = to_canary % (namespace, 'source_workload!="flagger-loadtester"')
        wait_for(lambda: count(lab, from_load_tester) >= 20, timeout=60, message="the load tester's requests")
        users_on_primary = 'sum(istio_requests_total{reporter="source",destination_workload="app-primary",destination_workload_namespace="%s"})' % namespace
        served = count(lab, users_on_primary)
        wait_for(lambda: count(lab, users_on_primary) >= served + 20, timeout=60, message="more user requests")
        assert count(lab, from_users) == 0
    output = promote(lab, release, process)
    assert "all traffic on the canary" in output
    messages = [body["metadata"]["eventMessage"] for body in hook_bodies(lab, namespace, "/gate/approve")]
    assert "Routing all traffic to canary" in messages, messages
    assert_safe(release)
    roll_back_a_bad_revision(release)


def test_blue_green_mirroring_copies_requests_to_the_canary_while_users_get_the_primary(lab, namespace, tmp_path):
    # Flagger's traffic mirroring: mirror with mirrorWeight during the iterations; the canary's answers are discarded.
    release = release_with_gate(lab, namespace, tmp_path, iterations=3, mirror=True, mirrorWeight=100)
    with held_at_promotion(lab, release) as process:
        route = release.route()["spec"]["http"][0]
        assert route["mirror"]["host"].startswith("app-canary") and route["mirrorPercentage"] == {"value": 100.0}
        mirrored = series(release, "lab_mirrored_requests_total", destination_workload="app")
        wait_for(lambda: count(lab, mirrored) >= 20, timeout=60, message="mirrored copies reaching the canary")
        answered_by_canary = 'sum(istio_requests_total{reporter="source",destination_workload="app",destination_workload_namespace="%s"})' % namespace
        assert count(lab, answered_by_canary) == 0
        assert count(lab, series(release, "lab_requests_total", destination_workload="app")) == 0
    output = promote(lab, release, process)
    assert "mirroring 100%" in output
    assert_route_as_before(release)
    roll_back_a_bad_revision(release)


@pytest.mark.parametrize("router", [ISTIO, GATEWAY_API])
def test_session_affinity_keeps_each_user_on_the_version_that_first_served_it(lab, namespace, tmp_path, router):
    # Flagger's session affinity: a cookie keeps users on the canary while the weights grow.
    release = release_with_gate(lab, namespace, tmp_path, stepWeight=20, maxWeight=60, router=router,
                                sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 21600})
    with held_at_promotion(lab, release) as process:
        found = routes(release)
        assert found["app-canary-sticky"]["weights"] == {"app-canary": 100}, found
        sticky_on_canary = series(release, "lab_session_requests_total", destination_workload="app", sticky="true")
        wait_for(lambda: count(lab, sticky_on_canary) >= 10, timeout=60, message="sticky users on the canary")
        assert count(lab, series(release, "lab_session_switches_total", sticky="true")) == 0
    promote(lab, release, process)
    assert_route_as_before(release)
    roll_back_a_bad_revision(release)


def test_rollback_playbook_removes_the_match_route_a_dead_run_left(lab, namespace, tmp_path):
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    release = release_with_gate(lab, namespace, tmp_path, iterations=1, match=match)
    with held_at_promotion(lab, release, canary_lease_ttl=2) as process:
        process.kill()
        process.communicate()
    assert len(release.route()["spec"]["http"]) == 2
    # The dead run's lease expires after its TTL; the rollback takes the lock then.
    attempts = []

    def rolled_back():
        attempts.append(run_playbook(ROLLBACK, {"canary_manifest": str(release.manifest_path),
                                                "canary_kubeconfig": lab.kubeconfig,
                                                "ansible_python_interpreter": sys.executable}, timeout=120))
        return attempts[-1] if attempts[-1].returncode == 0 else None

    try:
        result = wait_for(rolled_back, timeout=60, interval=1, message="playbooks/rollback.yml taking the lock")
    except AssertionError:
        raise AssertionError(attempts[-1].stdout[-3000:]) from None
    assert "phase Failed" in result.stdout, result.stdout[-2000:]
    assert release.weights() == {"app-primary": 100, "app-canary": 0}
    assert_route_as_before(release)
