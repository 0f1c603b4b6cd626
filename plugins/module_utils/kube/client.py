# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Kubernetes client factory every module of the collection uses.

Options and environment variables are the ones kubernetes.core users already
know, so ``module_defaults: group/progressive.delivery.kubernetes`` can carry the
same auth settings a playbook gives ``kubernetes.core.k8s``.  The client speaks
plain REST through ``kubernetes.client.ApiClient`` instead of the dynamic
client: one module call then costs exactly the requests it needs, with no
discovery round-trips.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any, Mapping

try:
    import kubernetes.client
    import kubernetes.config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

try:
    import urllib3

    HAS_URLLIB3 = True
except ImportError:
    HAS_URLLIB3 = False

from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError, error_from_status
from ansible_collections.progressive.delivery.plugins.module_utils.kube.options import K8S_AUTH_ARG_SPEC

# Same variable names as kubernetes.core, so AWX credentials and CI settings
# written for it work unchanged.
AUTH_ENV_VARS: dict[str, str] = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "username": "K8S_AUTH_USERNAME",
    "password": "K8S_AUTH_PASSWORD",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
    "proxy": "K8S_AUTH_PROXY",
    "no_proxy": "K8S_AUTH_NO_PROXY",
    "persist_config": "K8S_AUTH_PERSIST_CONFIG",
    "impersonate_user": "K8S_AUTH_IMPERSONATE_USER",
    "impersonate_groups": "K8S_AUTH_IMPERSONATE_GROUPS",
}

BOOLEAN_AUTH_KEYS = ("validate_certs", "persist_config")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_REQUEST_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds: a hung API server must not hang a release


def _env_bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on", "y")


def resolve_auth(params: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Task options win; unset ones fall back to their ``K8S_AUTH_*`` variable."""
    environ = os.environ if environ is None else environ
    auth: dict[str, Any] = {}
    for key in K8S_AUTH_ARG_SPEC:
        value = params.get(key)
        if value is None and key in AUTH_ENV_VARS and environ.get(AUTH_ENV_VARS[key]):
            raw = environ[AUTH_ENV_VARS[key]]
            if key in BOOLEAN_AUTH_KEYS:
                value = _env_bool(raw)
            elif key == "impersonate_groups":
                value = [group.strip() for group in raw.split(",") if group.strip()]
            else:
                value = raw
        auth[key] = value
    return auth


def incluster_available(environ: Mapping[str, str] | None = None, service_account_dir: str = SERVICE_ACCOUNT_DIR) -> bool:
    """True when running in a pod with a mounted service account (AWX container groups)."""
    environ = os.environ if environ is None else environ
    return bool(
        environ.get("KUBERNETES_SERVICE_HOST")
        and environ.get("KUBERNETES_SERVICE_PORT")
        and os.path.isfile(os.path.join(service_account_dir, "token"))
    )


def config_source(auth: Mapping[str, Any], in_cluster: bool) -> str:
    """Where the base configuration comes from: ``explicit``, ``kubeconfig`` or ``incluster``.

    Mirrors kubernetes.core: a host with credentials needs no file; a named
    kubeconfig or context always loads the file; with nothing given a pod uses
    its service account and anything else the default kubeconfig.
    """
    if auth.get("kubeconfig") or auth.get("context"):
        return "kubeconfig"
    if auth.get("host") and (auth.get("api_key") or auth.get("username") or auth.get("client_cert")):
        return "explicit"
    if in_cluster:
        return "incluster"
    return "kubeconfig"


def build_configuration(auth: Mapping[str, Any], in_cluster: bool | None = None,
                        service_account_dir: str = SERVICE_ACCOUNT_DIR) -> "kubernetes.client.Configuration":
    """Build a ``kubernetes.client.Configuration`` from resolved auth settings."""
    if in_cluster is None:
        in_cluster = incluster_available(service_account_dir=service_account_dir)
    configuration = kubernetes.client.Configuration()
    source = config_source(auth, in_cluster)
    if source == "incluster":
        loader = kubernetes.config.incluster_config.InClusterConfigLoader(
            token_filename=os.path.join(service_account_dir, "token"),
            cert_filename=os.path.join(service_account_dir, "ca.crt"),
        )
        loader.load_and_set(configuration)
    elif source == "kubeconfig":
        kubeconfig = auth.get("kubeconfig")
        persist = bool(auth.get("persist_config"))
        if isinstance(kubeconfig, dict):
            kubernetes.config.load_kube_config_from_dict(
                config_dict=kubeconfig, context=auth.get("context"),
                client_configuration=configuration, persist_config=False)
        else:
            kubernetes.config.load_kube_config(
                config_file=os.path.expanduser(kubeconfig) if kubeconfig else None,
                context=auth.get("context"), client_configuration=configuration,
                persist_config=persist)

    _apply_overrides(configuration, auth)
    original_hook = configuration.refresh_api_key_hook
    if original_hook is not None:
        # The kubeconfig loader re-applies the file's host and token on every
        # request; task options must still win afterwards.
        def refresh_then_override(client_configuration):
            original_hook(client_configuration)
            _apply_overrides(client_configuration, auth)

        configuration.refresh_api_key_hook = refresh_then_override
    # A flaky connection is retried by the callers that know whether a retry is
    # safe; urllib3's silent retries would only multiply the wait.
    configuration.retries = False
    return configuration


def _apply_overrides(configuration: "kubernetes.client.Configuration", auth: Mapping[str, Any]) -> None:
    """Explicit connection options override whatever the kubeconfig or service account said."""
    if auth.get("host"):
        configuration.host = auth["host"]
    if auth.get("api_key"):
        configuration.api_key = {"authorization": "Bearer " + auth["api_key"]}
        configuration.api_key_prefix = {}
    if auth.get("username"):
        configuration.username = auth["username"]
    if auth.get("password"):
        configuration.password = auth["password"]
    if auth.get("ca_cert"):
        configuration.ssl_ca_cert = auth["ca_cert"]
    if auth.get("client_cert"):
        configuration.cert_file = auth["client_cert"]
    if auth.get("client_key"):
        configuration.key_file = auth["client_key"]
    if auth.get("validate_certs") is not None:
        configuration.verify_ssl = bool(auth["validate_certs"])
    if auth.get("proxy"):
        configuration.proxy = auth["proxy"]
    if auth.get("no_proxy"):
        configuration.no_proxy = auth["no_proxy"]
    proxy_headers = auth.get("proxy_headers") or {}
    if proxy_headers and HAS_URLLIB3:
        headers = urllib3.util.make_headers(
            proxy_basic_auth=proxy_headers.get("proxy_basic_auth"),
            basic_auth=proxy_headers.get("basic_auth"),
            user_agent=proxy_headers.get("user_agent"),
        )
        configuration.proxy_headers = headers
    if auth.get("username") and auth.get("password") and not auth.get("api_key"):
        configuration.api_key = {"authorization": configuration.get_basic_auth_token()}


def impersonation_headers(auth: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    if auth.get("impersonate_user"):
        headers["Impersonate-User"] = auth["impersonate_user"]
    return headers


def _api_prefix(api_version: str) -> str:
    return "/api/" + api_version if "/" not in api_version else "/apis/" + api_version


def resource_path(api_version: str, plural: str, name: str | None = None, namespace: str | None = None) -> str:
    """REST path of a collection or an object."""
    path = _api_prefix(api_version)
    if namespace:
        path += "/namespaces/" + namespace
    path += "/" + plural
    if name:
        path += "/" + name
    return path


PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


class KubeClient:
    """Thin REST client over ``kubernetes.client.ApiClient`` returning plain dicts."""

    def __init__(self, api_client: "kubernetes.client.ApiClient", auth: Mapping[str, Any] | None = None,
                 request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT) -> None:
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.request_count = 0
        self._extra_headers = impersonation_headers(auth or {})

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None,
                content_type: str = "application/json") -> Any:
        """Send one request; raise :class:`KubeApiError` for any HTTP or transport failure."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        headers.update(self._extra_headers)
        query_params = [(key, value) for key, value in (query or {}).items() if value is not None]
        self.request_count += 1
        try:
            if hasattr(self.api_client, "param_serialize"):
                return self._send(method, path, query_params, headers, body)
            return self.api_client.call_api(
                path, method, header_params=headers, query_params=query_params, body=body,
                response_type="object", auth_settings=["BearerToken"], _return_http_data_only=True,
                _preload_content=True, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if not exc.status:
                # The client reports TLS failures as an ApiException with status 0.
                raise KubeApiError(status=None, reason="ConnectionError",
                                   message=_transport_message(Exception(exc.reason or exc.body or ""), self.host),
                                   method=method, path=path) from None
            raise error_from_status(exc.status, exc.reason, exc.body, method=method, path=path) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # urllib3, ssl and socket errors all mean "the API could not be reached".
            raise KubeApiError(status=None, reason="ConnectionError", message=_transport_message(exc, self.host),
                               method=method, path=path) from None

    def _send(self, method: str, path: str, query_params: list, headers: dict, body: Any) -> Any:
        """Request through the client generation that splits serialising from sending (kubernetes >= 35)."""
        serialized = self.api_client.param_serialize(
            method=method, resource_path=path, query_params=query_params, header_params=headers, body=body,
            auth_settings=["BearerToken"])
        response = self.api_client.call_api(*serialized, _request_timeout=self.request_timeout)
        response.read()
        if not 200 <= response.status <= 299:
            raise error_from_status(response.status, response.reason, response.data, method=method, path=path)
        if not response.data:
            return None
        return json.loads(response.data)

    def get(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict:
        return self.request("GET", resource_path(api_version, plural, name, namespace))

    def get_or_none(self, api_version: str, plural: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.get(api_version, plural, name, namespace)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, api_version: str, plural: str, body: dict, namespace: str | None = None,
               dry_run: bool = False) -> dict:
        return self.request("POST", resource_path(api_version, plural, namespace=namespace), body=body,
                            query={"dryRun": "All" if dry_run else None})

    def replace(self, api_version: str, plural: str, name: str, body: dict, namespace: str | None = None,
                dry_run: bool = False) -> dict:
        return self.request("PUT", resource_path(api_version, plural, name, namespace), body=body,
                            query={"dryRun": "All" if dry_run else None})

    def patch(self, api_version: str, plural: str, name: str, patch: Any, namespace: str | None = None,
              patch_type: str = "merge", dry_run: bool = False) -> dict:
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError("patch_type must be one of %s" % ", ".join(sorted(PATCH_CONTENT_TYPES)))
        return self.request("PATCH", resource_path(api_version, plural, name, namespace), body=patch,
                            query={"dryRun": "All" if dry_run else None},
                            content_type=PATCH_CONTENT_TYPES[patch_type])

    def served_versions(self, group: str) -> list[str]:
        try:
            result = self.request("GET", "/apis/" + group)
        except KubeApiError as exc:
            if exc.status == 404:
                return []
            raise
        return [entry.get("version") for entry in (result or {}).get("versions") or [] if entry.get("version")]


def _transport_message(exc: Exception, host: str) -> str:
    text = str(exc)
    hint = "check the host/kubeconfig, that the API server is running and reachable, and any proxy settings"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        hint = ("the server's TLS certificate is not trusted: give its CA with ca_cert (or the kubeconfig's "
                "certificate-authority); validate_certs=false only for throw-away clusters")
    elif "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        hint = "the API server did not answer in time: check its health and the network path"
    reason = text.splitlines()[0] if text else type(exc).__name__
    if len(reason) > 300:
        reason = reason[:300] + "..."
    return "could not reach the Kubernetes API at %s (%s): %s" % (host, reason, hint)


def auth_from_module(module: Any) -> dict[str, Any]:
    return resolve_auth(module.params)


def ensure_kubernetes(module: Any) -> None:
    if not HAS_KUBERNETES:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)


def client_from_auth(auth: Mapping[str, Any]) -> KubeClient:
    """Build a client; raise :class:`KubeApiError` (status None) when no configuration can be found."""
    try:
        configuration = build_configuration(auth)
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        raise KubeApiError(
            status=None, reason="ConfigurationError",
            message=("no usable Kubernetes configuration: %s. Give kubeconfig (path or dict) and optionally "
                     "context, or host with api_key, or run inside a pod with a service account" % exc)) from None
    return KubeClient(_api_client(configuration, auth.get("impersonate_groups") or []), auth)


def _api_client(configuration: "kubernetes.client.Configuration", groups: list[str]) -> "kubernetes.client.ApiClient":
    if not groups:
        return kubernetes.client.ApiClient(configuration)

    def with_groups(headers: Mapping[str, str] | None) -> "urllib3.HTTPHeaderDict":
        merged = urllib3.HTTPHeaderDict(headers or {})
        for group in groups:
            merged.add("Impersonate-Group", group)
        return merged

    # The API server wants one Impersonate-Group header per group; the generated
    # client folds headers into a plain dict, so the repeats go in at the last step
    # before the request leaves (the hook differs between client generations).
    if hasattr(kubernetes.client.ApiClient, "param_serialize"):
        class GroupImpersonatingApiClient(kubernetes.client.ApiClient):
            def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
                return super().call_api(method, url, with_groups(header_params), body, post_params, _request_timeout)
    else:
        class GroupImpersonatingApiClient(kubernetes.client.ApiClient):  # type: ignore[no-redef]
            def request(self, method, url, query_params=None, headers=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg
                return super().request(method, url, query_params, with_groups(headers), *args, **kwargs)

    return GroupImpersonatingApiClient(configuration)


def client_from_module(module: Any) -> KubeClient:
    """The client for a module's task; fails the task with a readable message on configuration errors."""
    ensure_kubernetes(module)
    try:
        return client_from_auth(auth_from_module(module))
    except KubeApiError as exc:
        module.fail_json(msg=exc.message)
        raise  # unreachable in Ansible; keeps type checkers honest
