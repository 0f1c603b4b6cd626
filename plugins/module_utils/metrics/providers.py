# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Prometheus answers each metric, and with which credentials.

Flagger's rules, kept so a manifest means the same here:

- a MetricTemplate whose ``spec.provider.address`` is set is answered there, with the credentials of the Secret its
  ``spec.provider.secretRef`` names (in the template's namespace): key ``token`` (a bearer token) wins, otherwise
  both ``username`` and ``password`` (basic authentication);
- ``spec.metricsServer`` of the Canary answers the builtin metrics and inline ``query`` metrics, never a template;
- everything else goes to the connection given to the task (``prometheus_*`` options, ``PROMETHEUS_*`` variables).

Flagger rejects a template without an address; here it is answered by the task's connection, which is the
Prometheus the rest of the collection already uses. The connection's credentials are only ever sent to its own URL:
another address gets the template's Secret or nothing, so a token meant for one server never reaches another.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import Gate
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.options import PROMETHEUS_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    PrometheusClient,
    client_from_params,
    resolve_connection,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import (
    MetricSpec,
    RenderContext,
    TemplateProvider,
    resolve_metric,
)
from ansible_collections.progressive.delivery.plugins.module_utils.redaction import redact_url

# Options of the task's connection that describe how to reach *a* server, not who the caller is: they still apply
# when a metric is sent to another address (a CA bundle for an internal CA, the timeout).
_TRANSPORT_OPTIONS = ("prometheus_ca_cert", "prometheus_validate_certs", "prometheus_timeout")


class ProviderError(DeliveryError):
    """A metric's Prometheus cannot be reached as configured: bad address, unreadable or incomplete Secret."""


def same_server(first: str | None, second: str | None) -> bool:
    return bool(first) and bool(second) and first.rstrip("/") == second.rstrip("/")


def credentials_from_secret(secret: Mapping[str, Any], where: str) -> dict[str, str]:
    """Connection options from a Secret's ``data``: ``token`` first, else ``username`` and ``password``.

    Messages name the Secret and its keys, never a value.
    """
    data = secret.get("data") or {}
    decoded: dict[str, str] = {}
    for key in ("token", "username", "password"):
        if key not in data:
            continue
        try:
            decoded[key] = base64.b64decode(data[key] or "", validate=True).decode("utf-8")
        except (binascii.Error, ValueError, TypeError):
            raise ProviderError("%s: key %r is not base64-encoded UTF-8 text; re-create the Secret with "
                                "kubectl create secret generic --from-literal" % (where, key)) from None
    if "token" in decoded:
        # A token read from a file usually ends with a newline, which no HTTP header may carry.
        return {"prometheus_token": decoded["token"].strip()}
    missing = [key for key in ("username", "password") if key not in decoded]
    if missing:
        found = ", ".join(sorted(data)) or "none"
        raise ProviderError("%s has no %s: a Prometheus Secret holds 'token' (bearer) or both 'username' and 'password' "
                            "(basic auth); keys found: %s" % (where, " or ".join(repr(k) for k in missing), found))
    return {"prometheus_username": decoded["username"], "prometheus_password": decoded["password"]}


def read_secret_credentials(kube: Any, name: str, namespace: str, metric: str, template: str) -> dict[str, str]:
    where = "Secret %s/%s (spec.provider.secretRef of MetricTemplate %s, metric '%s')" % (namespace, name, template, metric)
    try:
        secret = kube.get("v1", "secrets", name, namespace)
    except KubeApiError as exc:
        raise ProviderError("metric '%s': %s" % (metric, exc.explain("get", "Secret", name, namespace))) from None
    return credentials_from_secret(secret or {}, where)


class ClientPool:
    """One client per distinct connection, however many metrics and queries use it."""

    def __init__(self, factory: Callable[[Mapping[str, Any]], PrometheusClient] = client_from_params):
        self.factory = factory
        self._clients: dict[tuple, PrometheusClient] = {}

    def get(self, params: Mapping[str, Any]) -> PrometheusClient:
        key = tuple(sorted((k, _hashable(v)) for k, v in params.items() if v is not None))
        if key not in self._clients:
            self._clients[key] = self.factory(params)
        return self._clients[key]

    def __len__(self) -> int:
        return len(self._clients)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    return value


class ProviderResolver:
    """Decides, per metric, the connection options of the Prometheus that answers it."""

    def __init__(self, connection: Mapping[str, Any], namespace: str, metrics_server: str | None = None,
                 kube: Any = None, environ: Mapping[str, str] | None = None):
        # Only the connection options: a module passes all its parameters.
        self.connection = resolve_connection({k: v for k, v in connection.items() if k in PROMETHEUS_ARG_SPEC}, environ)
        self.namespace = namespace
        self.metrics_server = (metrics_server or "").strip() or None
        self.kube = kube

    def _elsewhere(self, url: str) -> dict[str, Any]:
        transport = {k: self.connection[k] for k in _TRANSPORT_OPTIONS if self.connection.get(k) is not None}
        return dict(transport, prometheus_url=url)

    def connection_for(self, spec: MetricSpec) -> dict[str, Any]:
        if spec.provider is None:
            if self.metrics_server and not same_server(self.metrics_server, self.connection.get("prometheus_url")):
                _check_url(self.metrics_server, "spec.metricsServer of the Canary")
                return self._elsewhere(self.metrics_server)
            return dict(self.connection)
        return self._template_connection(spec, spec.provider)

    def _template_connection(self, spec: MetricSpec, provider: TemplateProvider) -> dict[str, Any]:
        namespace = provider.namespace or self.namespace
        template = provider.template if "/" in provider.template else "%s/%s" % (namespace, provider.template)
        if not provider.address:
            if provider.secret_name:
                raise ProviderError(
                    "metric '%s': MetricTemplate %s names Secret %s in spec.provider.secretRef but no spec.provider.address; "
                    "the credentials would be sent nowhere Flagger would send them: set spec.provider.address to the "
                    "Prometheus they belong to, or remove secretRef to use the task's Prometheus connection"
                    % (spec.name, template, provider.secret_name))
            return dict(self.connection)
        _check_url(provider.address, "spec.provider.address of MetricTemplate %s (metric '%s')" % (template, spec.name))
        if same_server(provider.address, self.connection.get("prometheus_url")):
            params = dict(self.connection)
            if provider.secret_name and self.kube is not None:
                for option in ("prometheus_token", "prometheus_username", "prometheus_password"):
                    params.pop(option, None)
                params.update(read_secret_credentials(self.kube, provider.secret_name, namespace, spec.name, template))
        else:
            params = self._elsewhere(provider.address)
            if provider.secret_name:
                if self.kube is None:
                    raise ProviderError(
                        "metric '%s': MetricTemplate %s reads its credentials from Secret %s/%s (spec.provider.secretRef), "
                        "and this task does not read the cluster: set prometheus_url to %s with prometheus_token or "
                        "prometheus_username/prometheus_password, or run the analysis with "
                        "progressive.delivery.canary_analysis, which reads the Secret"
                        % (spec.name, template, namespace, provider.secret_name, redact_url(provider.address)))
                params.update(read_secret_credentials(self.kube, provider.secret_name, namespace, spec.name, template))
        if provider.insecure_skip_verify:
            params["prometheus_validate_certs"] = False
            params.pop("prometheus_ca_cert", None)
        return params


def _check_url(url: str, what: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ProviderError("%s is %r, not an http(s) URL such as http://prometheus.monitoring:9090" % (what, redact_url(url)))


def gate_for(specs: list[MetricSpec], context: RenderContext, connection: Mapping[str, Any], kube: Any = None,
             metrics_server: str | None = None, pool: ClientPool | None = None) -> Gate:
    """A Gate whose every metric is answered by the Prometheus its definition names (see the module docstring)."""
    pool = pool if pool is not None else ClientPool()
    resolver = ProviderResolver(connection, context.namespace, metrics_server, kube)
    clients = {spec.name: pool.get(resolver.connection_for(spec)) for spec in specs}
    # The default client only answers what no metric claims; with metrics, it is the first metric's own.
    default = clients[specs[0].name] if specs else None
    return Gate(default, specs, context, clients=clients)


def build_gate(plan: Mapping[str, Any], connection: Mapping[str, Any], kube: Any) -> Gate:
    """The gate of a release plan: its metrics, each on its Prometheus; ``connection`` holds the prometheus_* options."""
    specs = [resolve_metric(metric) for metric in plan.get("metrics") or []]
    context = RenderContext(plan["namespace"], plan["target"], plan.get("service_name"), plan["name"])
    return gate_for(specs, context, connection, kube, plan.get("metrics_server"))
