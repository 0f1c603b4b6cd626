"""kube.py: option precedence, environment fallbacks, in-cluster detection and error messages.

The client talks HTTP to a real local server; nothing inside the kubernetes library is mocked.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import threading

import pytest
import yaml

from ansible_collections.progressive.delivery.plugins.module_utils.kube import client as kube
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError, error_from_status
from tests.support.kube_api import status_body


def write_kubeconfig(path, server: str, token: str, context: str = "lab", extra_contexts: dict | None = None) -> str:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
    }
    for name, (ctx_server, ctx_token) in (extra_contexts or {}).items():
        config["clusters"].append({"name": name, "cluster": {"server": ctx_server}})
        config["users"].append({"name": name, "user": {"token": ctx_token}})
        config["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})
    path.write_text(yaml.safe_dump(config))
    return str(path)


def client(auth: dict) -> kube.KubeClient:
    return kube.client_from_auth(kube.resolve_auth(auth, environ={}))


# ---------------------------------------------------------------- precedence and env

def test_task_options_win_over_environment():
    auth = kube.resolve_auth({"host": "https://task:6443"}, environ={"K8S_AUTH_HOST": "https://env:6443",
                                                                     "K8S_AUTH_API_KEY": "env-token"})
    assert auth["host"] == "https://task:6443"
    assert auth["api_key"] == "env-token"


@pytest.mark.parametrize("raw,expected", [("false", False), ("no", False), ("0", False), ("true", True), ("yes", True)])
def test_boolean_environment_values(raw, expected):
    assert kube.resolve_auth({}, environ={"K8S_AUTH_VERIFY_SSL": raw})["validate_certs"] is expected


def test_impersonate_groups_from_environment_are_split():
    auth = kube.resolve_auth({}, environ={"K8S_AUTH_IMPERSONATE_GROUPS": "ops, release ,"})
    assert auth["impersonate_groups"] == ["ops", "release"]


@pytest.mark.parametrize("auth,in_cluster,expected", [
    ({}, True, "incluster"),
    ({}, False, "kubeconfig"),
    ({"kubeconfig": "/k"}, True, "kubeconfig"),
    ({"context": "x"}, True, "kubeconfig"),
    ({"host": "https://h", "api_key": "t"}, True, "explicit"),
    ({"host": "https://h"}, False, "kubeconfig"),
])
def test_config_source(auth, in_cluster, expected):
    assert kube.config_source(auth, in_cluster) == expected


def test_incluster_needs_env_and_token(tmp_path):
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert not kube.incluster_available(env, service_account_dir=str(tmp_path))
    (tmp_path / "token").write_text("sa-token")
    assert kube.incluster_available(env, service_account_dir=str(tmp_path))
    assert not kube.incluster_available({}, service_account_dir=str(tmp_path))


@pytest.mark.parametrize("name,reason", [("a", "Unauthorized"), ("b", "Forbidden")])
def test_resource_paths(name, reason):
    assert kube.resource_path("v1", "services", name, "prod") == "/api/v1/namespaces/prod/services/" + name
    assert kube.resource_path("apps/v1", "deployments", name, "prod") == "/apis/apps/v1/namespaces/prod/deployments/" + name
    assert kube.resource_path("v1", "namespaces", name) == "/api/v1/namespaces/" + name
    assert reason  # both parametrisations exercise distinct names


# ---------------------------------------------------------------- real HTTP

def test_kubeconfig_file_token_reaches_the_server(httpserver, tmp_path):
    httpserver.expect_request("/api/v1/namespaces/prod/services/web", headers={"Authorization": "Bearer file-token"}) \
        .respond_with_json({"kind": "Service", "metadata": {"name": "web"}})
    path = write_kubeconfig(tmp_path / "config", httpserver.url_for("/").rstrip("/"), "file-token")
    result = client({"kubeconfig": path}).get("v1", "services", "web", "prod")
    assert result["metadata"]["name"] == "web"


def test_kubeconfig_dict_and_named_context(httpserver, tmp_path):
    base = httpserver.url_for("/").rstrip("/")
    httpserver.expect_request("/version", headers={"Authorization": "Bearer other-token"}).respond_with_json({"major": "1"})
    config = yaml.safe_load(open(write_kubeconfig(tmp_path / "c", "http://127.0.0.1:1", "unused",
                                                  extra_contexts={"other": (base, "other-token")})))
    kube_client = client({"kubeconfig": config, "context": "other"})
    assert kube_client.request("GET", "/version") == {"major": "1"}


def test_explicit_host_and_api_key_override_kubeconfig(httpserver, tmp_path):
    httpserver.expect_request("/version", headers={"Authorization": "Bearer task-token"}).respond_with_json({"ok": True})
    path = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:1", "file-token")
    kube_client = client({"kubeconfig": path, "host": httpserver.url_for("/").rstrip("/"), "api_key": "task-token"})
    assert kube_client.request("GET", "/version") == {"ok": True}


def test_environment_kubeconfig_is_used(httpserver, tmp_path):
    httpserver.expect_request("/version", headers={"Authorization": "Bearer env-file"}).respond_with_json({"env": 1})
    path = write_kubeconfig(tmp_path / "config", httpserver.url_for("/").rstrip("/"), "env-file")
    auth = kube.resolve_auth({}, environ={"K8S_AUTH_KUBECONFIG": path})
    assert kube.client_from_auth(auth).request("GET", "/version") == {"env": 1}


def self_signed(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return key, cert


def test_in_cluster_service_account(httpserver, tmp_path, monkeypatch):
    _, cert = self_signed(tmp_path)
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text(cert.read_text())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    configuration = kube.build_configuration({}, in_cluster=True, service_account_dir=str(tmp_path))
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")
    # The service account token reaches a server; the host is pointed at the plain-HTTP test server.
    httpserver.expect_request("/version", headers={"Authorization": "bearer sa-token"}).respond_with_json({"pod": 1})
    configuration = kube.build_configuration({"host": httpserver.url_for("/").rstrip("/")}, in_cluster=True,
                                             service_account_dir=str(tmp_path))
    kube_client = kube.KubeClient(kube.kubernetes.client.ApiClient(configuration))
    assert kube_client.request("GET", "/version") == {"pod": 1}


def test_impersonation_headers_sent_once_per_group():
    # A WSGI server folds repeated headers into one, which would hide the bug
    # this test is for, so a plain http.server reads the raw header lines.
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            seen["user"] = self.headers.get("Impersonate-User")
            seen["groups"] = self.headers.get_all("Impersonate-Group")
            payload = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        client({"host": "http://127.0.0.1:%d" % server.server_port, "api_key": "t", "impersonate_user": "alice",
                "impersonate_groups": ["ops", "release"]}).request("GET", "/version")
    finally:
        thread.join(timeout=10)
        server.server_close()
    assert seen == {"user": "alice", "groups": ["ops", "release"]}


def test_patch_content_types_and_dry_run(httpserver):
    httpserver.expect_request("/apis/apps/v1/namespaces/p/deployments/d", method="PATCH",
                              headers={"Content-Type": "application/merge-patch+json"},
                              query_string="dryRun=All", json={"spec": {"replicas": 0}}).respond_with_json({"ok": 1})
    httpserver.expect_request("/apis/apps/v1/namespaces/p/deployments/d", method="PATCH",
                              headers={"Content-Type": "application/json-patch+json"},
                              json=[{"op": "replace", "path": "/spec/replicas", "value": 1}]).respond_with_json({"ok": 2})
    kube_client = client({"host": httpserver.url_for("/").rstrip("/"), "api_key": "t"})
    assert kube_client.patch("apps/v1", "deployments", "d", {"spec": {"replicas": 0}}, "p", dry_run=True) == {"ok": 1}
    assert kube_client.patch("apps/v1", "deployments", "d", [{"op": "replace", "path": "/spec/replicas", "value": 1}],
                             "p", patch_type="json") == {"ok": 2}
    assert kube_client.request_count == 2


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("code,reason,expected", [
    (401, "Unauthorized", "credentials were rejected"),
    (403, "Forbidden", "grant the 'update' verb on virtualservices.networking.istio.io in namespace prod"),
    (404, "NotFound", "check the name and namespace"),
    (409, "Conflict", "another writer changed the object"),
    (422, "Invalid", "spec.http[0].route: weights must sum to 100"),
])
def test_api_errors_become_sentences(httpserver, code, reason, expected):
    body = status_body(code, reason, "virtualservices \"web\" says %s" % reason, name="web",
                       causes=[{"field": "spec.http[0].route", "message": "weights must sum to 100"}] if code == 422 else [])
    httpserver.expect_request("/apis/networking.istio.io/v1/namespaces/prod/virtualservices/web", method="PUT") \
        .respond_with_json(body, status=code)
    kube_client = client({"host": httpserver.url_for("/").rstrip("/"), "api_key": "t"})
    with pytest.raises(KubeApiError) as caught:
        kube_client.replace("networking.istio.io/v1", "virtualservices", "web", {"metadata": {"name": "web"}}, "prod")
    error = caught.value
    assert (error.status, error.reason) == (code, reason)
    message = error.explain("update", "VirtualService", "web", "prod")
    assert message.startswith("Could not update VirtualService prod/web: HTTP %d %s" % (code, reason))
    assert expected in message
    assert "Traceback" not in message


@pytest.mark.parametrize("method, path, verb, resource", [
    ("POST", "/apis/coordination.k8s.io/v1/namespaces/prod/leases", "create", "leases.coordination.k8s.io"),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/prod/leases/app-canary-lock", "update", "leases.coordination.k8s.io"),
    ("GET", "/api/v1/namespaces/prod/configmaps", "list", "configmaps"),
    ("GET", "/api/v1/namespaces/prod/configmaps/app", "get", "configmaps"),
    ("DELETE", "/apis/apps/v1/namespaces/prod/deployments/app-primary", "delete", "deployments.apps"),
    ("GET", "/apis/networking.istio.io", "get", None),
])
def test_a_forbidden_request_names_the_rbac_verb_and_resource_it_needs(method, path, verb, resource):
    error = KubeApiError(403, "Forbidden", "forbidden", method=method, path=path)
    assert (error.rbac_verb(), error.rbac_resource()) == (verb, resource)
    # What the collection meant ("acquire" the lock) is not an RBAC verb: the hint names the request's.
    hint = error.hint("acquire", "Lease", "prod")
    assert "grant the '%s' verb on %s in namespace prod" % (verb, resource or "Lease") in hint


def test_get_or_none_treats_404_as_absent(httpserver):
    httpserver.expect_request("/api/v1/namespaces/p/configmaps/x").respond_with_json(
        status_body(404, "NotFound", 'configmaps "x" not found'), status=404)
    kube_client = client({"host": httpserver.url_for("/").rstrip("/"), "api_key": "t"})
    assert kube_client.get_or_none("v1", "configmaps", "x", "p") is None


def test_non_status_error_body_is_bounded(httpserver):
    httpserver.expect_request("/version").respond_with_data("<html>" + "x" * 5000 + "</html>", status=502,
                                                            content_type="text/html")
    with pytest.raises(KubeApiError) as caught:
        client({"host": httpserver.url_for("/").rstrip("/"), "api_key": "t"}).request("GET", "/version")
    assert caught.value.status == 502
    assert len(caught.value.message) < 400


def test_connection_refused_is_a_readable_error():
    with pytest.raises(KubeApiError) as caught:
        client({"host": "http://127.0.0.1:9", "api_key": "t"}).request("GET", "/version")
    error = caught.value
    assert error.status is None
    assert "could not reach the Kubernetes API at http://127.0.0.1:9" in error.message
    assert "Could not get Deployment prod/web: could not reach" in error.explain("get", "Deployment", "web", "prod")


def test_missing_configuration_is_a_readable_error(tmp_path):
    with pytest.raises(KubeApiError) as caught:
        client({"kubeconfig": str(tmp_path / "missing")})
    assert "no usable Kubernetes configuration" in caught.value.message


def test_error_from_status_prefers_status_code_and_reason():
    error = error_from_status(500, "Internal Server Error", json.dumps(status_body(409, "AlreadyExists", "exists")))
    assert (error.status, error.reason) == (409, "AlreadyExists")
    assert "already exists: delete it" in error.explain("create", "Service", "web", "prod")


def test_untrusted_certificate_names_ca_cert(tmp_path):
    """TLS against a server whose CA is not given: the message says which option fixes it."""
    import ssl

    key, cert = self_signed(tmp_path)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        with pytest.raises(KubeApiError) as caught:
            client({"host": "https://127.0.0.1:%d" % server.server_port, "api_key": "t"}).request("GET", "/version")
    finally:
        thread.join(timeout=10)
        server.server_close()
    assert caught.value.status is None
    assert "give its CA with ca_cert" in caught.value.message
