"""The permission check a run makes when it takes the lock, against a real local HTTP server."""

from __future__ import annotations

import json
import pathlib

import yaml
from werkzeug.wrappers import Request, Response

from ansible_collections.progressive.delivery.plugins.module_utils.kube import access
from ansible_collections.progressive.delivery.plugins.module_utils.kube import client as kube
from tests.support.kube_api import json_response, status_body

RBAC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "rbac.yml"
REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
RULES_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"


def documented_rules() -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    documents = yaml.safe_load(RBAC.read_text(encoding="utf-8"))
    role = next(item for item in documents["items"] if item["kind"] == "ClusterRole")
    return [(rule["apiGroups"][0], tuple(rule["resources"]), tuple(rule["verbs"])) for rule in role["rules"]]


def test_the_checked_permissions_are_exactly_the_documented_cluster_role():
    assert [(p.group, p.resources, p.verbs) for p in access.REQUIRED_ACCESS] == documented_rules()


def reviewer(denied: set[tuple[str, str]], seen: list[dict]):
    def answer(request: Request) -> Response:
        review = json.loads(request.data)
        attributes = review["spec"]["resourceAttributes"]
        seen.append(attributes)
        allowed = (attributes["resource"], attributes["verb"]) not in denied
        return json_response(dict(review, status={"allowed": allowed}), 201)
    return answer


def client_for(httpserver) -> kube.KubeClient:
    return kube.client_from_auth(kube.resolve_auth({"host": httpserver.url_for(""), "api_key": "t"}, environ={}))


def rules_reviewer(rules: list[dict], asked: list[str]):
    def answer(request: Request) -> Response:
        review = json.loads(request.data)
        asked.append(review["spec"]["namespace"])
        return json_response(dict(review, status={"resourceRules": rules, "incomplete": False}), 201)
    return answer


def test_every_documented_verb_is_asked_in_the_namespace_and_denials_are_named(httpserver):
    seen: list[dict] = []
    # A server that does not list rules (an older or stricter one) is asked about every verb.
    httpserver.expect_request(RULES_PATH, method="POST").respond_with_json(
        status_body(403, "Forbidden", "selfsubjectrulesreviews is forbidden"), status=403)
    httpserver.expect_request(REVIEW_PATH, method="POST").respond_with_handler(
        reviewer({("events", "create"), ("leases", "update"), ("leases", "create")}, seen))
    missing = access.missing_access(client_for(httpserver), "prod")
    assert missing == ["create events", "create, update leases.coordination.k8s.io"]
    asked = {(a["group"], a["resource"], a["verb"]) for a in seen}
    assert asked == {(p.group, resource, verb) for p in access.REQUIRED_ACCESS for resource in p.resources
                     for verb in p.verbs}
    assert {a["namespace"] for a in seen} == {"prod"}


def test_nothing_is_missing_when_everything_is_allowed(httpserver):
    httpserver.expect_request(REVIEW_PATH, method="POST").respond_with_handler(reviewer(set(), []))
    assert access.checked_access(client_for(httpserver), "prod") == ([], None)


def test_an_api_server_that_cannot_answer_gives_a_warning_not_a_failure(httpserver):
    httpserver.expect_request(REVIEW_PATH, method="POST").respond_with_json(
        status_body(403, "Forbidden", "selfsubjectaccessreviews is forbidden"), status=403)
    missing, warning = access.checked_access(client_for(httpserver), "prod")
    assert missing == []
    assert "Could not check this run's permissions in namespace prod" in warning and "403" in warning


def test_the_message_names_every_gap_the_role_and_that_nothing_changed():
    message = access.access_message(["create events", "update leases.coordination.k8s.io"], "prod")
    assert "may not create events; update leases.coordination.k8s.io in namespace prod" in message
    assert "403 Forbidden" in message and "docs/rbac.yml" in message and "nothing was changed" in message


def test_the_documented_role_listed_by_one_rules_review_needs_no_other_question(httpserver):
    seen: list[dict] = []
    namespaces: list[str] = []
    rules = [{"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
             for group, resources, verbs in documented_rules()]
    httpserver.expect_request(RULES_PATH, method="POST").respond_with_handler(rules_reviewer(rules, namespaces))
    httpserver.expect_request(REVIEW_PATH, method="POST").respond_with_handler(reviewer(set(), seen))
    assert access.missing_access(client_for(httpserver), "prod") == []
    assert namespaces == ["prod"] and seen == []


def test_only_what_the_rules_do_not_show_is_asked_verb_by_verb(httpserver):
    seen: list[dict] = []
    rules = [
        # Wildcards allow everything they name.
        {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": ["*"], "resources": ["configmaps", "secrets", "services", "leases"], "verbs": ["get", "list", "create", "update", "patch"]},
        # Limited to named objects: not enough for a release, so asked again.
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"], "resourceNames": ["one"]},
        {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices", "destinationrules"], "verbs": ["get"]},
    ]
    httpserver.expect_request(RULES_PATH, method="POST").respond_with_handler(rules_reviewer(rules, []))
    httpserver.expect_request(REVIEW_PATH, method="POST").respond_with_handler(
        reviewer({("events", "patch"), ("horizontalpodautoscalers", "update")}, seen))
    missing = access.missing_access(client_for(httpserver), "prod")
    assert missing == ["patch events", "update horizontalpodautoscalers.autoscaling"]
    asked = {(a["resource"], a["verb"]) for a in seen}
    assert asked == ({("events", "create"), ("events", "patch")}
                     | {(r, v) for r in ("virtualservices", "destinationrules") for v in ("list", "create", "update", "patch")}
                     | {("horizontalpodautoscalers", v) for v in ("get", "create", "update")})
