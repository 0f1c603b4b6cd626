# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flagger's ``AlertProvider`` (flagger.app/v1beta1): given with the Canary, or read from the cluster, and its Secret.

An alert's provider is looked for among the manifests the role was given (``canary_alert_providers``), then in the
cluster, as Flagger's informer finds it. ``spec.secretRef`` names a Secret in the provider's namespace whose keys
``address``, ``proxy``, ``token`` and ``username`` win over the spec's fields; the Secret is always read from the
cluster, at the moment an alert is sent, so no secret value passes through the plan or the role's variables.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.plan.documents import DocumentError, load_documents

FLAGGER_GROUP = "flagger.app"
PROVIDER_API_VERSION = "flagger.app/v1beta1"
PROVIDER_PLURAL = "alertproviders"
PROVIDER_KIND = "AlertProvider"
DEFAULT_USERNAME = "flagger"
DEFAULT_CHANNEL = "general"


class AlertProviderError(DeliveryError):
    """A provider cannot be found, read or used; the message names it and never shows its address."""


@dataclass(frozen=True)
class Provider:
    """A provider ready to post to. ``address``, ``proxy`` and ``token`` are secrets: never show them."""

    name: str
    namespace: str
    type: str
    address: str
    channel: str = DEFAULT_CHANNEL
    username: str = DEFAULT_USERNAME
    proxy: str | None = None
    token: str | None = None

    @property
    def label(self) -> str:
        return "AlertProvider %s/%s (%s)" % (self.namespace, self.name, self.type)


def parse_manifests(items: Iterable[Any]) -> list[dict[str, Any]]:
    """The AlertProvider documents among ``items``: dicts, or YAML texts of one or more documents (a file's content)."""
    documents: list[Any] = []
    for item in items or ():
        try:
            # The text may hold an address with a token: the error names the problem's place, never the text.
            documents.extend(load_documents(item, "an AlertProvider manifest") if isinstance(item, str) else [item])
        except DocumentError as exc:
            raise AlertProviderError(exc.message) from None
    return [doc for doc in documents if isinstance(doc, Mapping) and doc.get("kind", PROVIDER_KIND) == PROVIDER_KIND
            and isinstance(doc.get("metadata"), Mapping)]


def find_given(manifests: Iterable[Mapping[str, Any]], name: str, namespace: str) -> Mapping[str, Any] | None:
    """The given manifest of that name; one without a namespace serves every namespace, as given MetricTemplates do."""
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        if metadata.get("name") == name and metadata.get("namespace") in (None, "", namespace):
            return manifest
    return None


def read_from_cluster(kube: Any, name: str, namespace: str) -> Mapping[str, Any]:
    try:
        versions = kube.served_versions(FLAGGER_GROUP)
    except KubeApiError as exc:
        raise AlertProviderError("AlertProvider %s/%s: %s" % (
            namespace, name, exc.explain("list", "API versions of", FLAGGER_GROUP))) from None
    if PROVIDER_API_VERSION.split("/")[1] not in versions:
        raise AlertProviderError(
            "AlertProvider %s/%s was not given in canary_alert_providers and the cluster does not serve %s (Flagger's "
            "alertproviders.flagger.app CRD is not installed): pass it in canary_alert_providers"
            % (namespace, name, PROVIDER_API_VERSION))
    try:
        found = kube.get_or_none(PROVIDER_API_VERSION, PROVIDER_PLURAL, name, namespace)
    except KubeApiError as exc:
        raise AlertProviderError(exc.explain("get", PROVIDER_KIND, name, namespace)) from None
    if found is None:
        raise AlertProviderError("AlertProvider %s/%s was not given in canary_alert_providers and is not in the "
                                 "cluster: create it, fix the alert's providerRef, or pass it in canary_alert_providers"
                                 % (namespace, name))
    return found


def secret_values(kube: Any, secret_name: str, namespace: str, provider: str) -> dict[str, str]:
    """The Secret's keys, decoded; an error names the Secret, never its content."""
    try:
        secret = kube.get_or_none("v1", "secrets", secret_name, namespace)
    except KubeApiError as exc:
        raise AlertProviderError("%s: %s" % (provider, exc.explain("get", "Secret", secret_name, namespace))) from None
    if secret is None:
        raise AlertProviderError("%s: its secretRef Secret %s/%s does not exist" % (provider, namespace, secret_name))
    values: dict[str, str] = {}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(encoded).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, TypeError):
            raise AlertProviderError("%s: key %r of Secret %s/%s is not base64-encoded UTF-8 text"
                                     % (provider, key, namespace, secret_name)) from None
    for key, value in (secret.get("stringData") or {}).items():
        values[key] = str(value).strip()
    return values


def resolve(manifest: Mapping[str, Any], name: str, namespace: str, kube: Any) -> Provider:
    """The provider with its Secret applied, as Flagger does: the Secret's address, proxy, token and username win."""
    spec = manifest.get("spec") if isinstance(manifest.get("spec"), Mapping) else {}
    provider_type = str(spec.get("type") or "")
    label = "AlertProvider %s/%s" % (namespace, name)
    if not provider_type:
        raise AlertProviderError("%s has no spec.type (slack, msteams, discord, rocket, gchat or generic)" % label)
    address = str(spec.get("address") or "")
    proxy = str(spec.get("proxy") or "") or None
    username = str(spec.get("username") or "") or DEFAULT_USERNAME
    token = None
    secret_ref = spec.get("secretRef") if isinstance(spec.get("secretRef"), Mapping) else None
    if secret_ref and secret_ref.get("name"):
        if kube is None:
            raise AlertProviderError("%s: its secretRef Secret %s/%s can only be read from the cluster, and no "
                                     "Kubernetes connection was given" % (label, namespace, secret_ref["name"]))
        values = secret_values(kube, str(secret_ref["name"]), namespace, label)
        if not values.get("address") and not address:
            raise AlertProviderError("%s: Secret %s/%s has no 'address' key and the provider no spec.address"
                                     % (label, namespace, secret_ref["name"]))
        address = values.get("address") or address
        proxy = values.get("proxy") or proxy
        token = values.get("token") or None
        username = values.get("username") or username
    if not address:
        raise AlertProviderError("%s has no address: set spec.address or spec.secretRef to a Secret with an "
                                 "'address' key" % label)
    if not address.startswith(("http://", "https://")):
        raise AlertProviderError("%s: its address is not an http:// or https:// URL" % label)
    return Provider(name=name, namespace=namespace, type=provider_type, address=address,
                    channel=str(spec.get("channel") or "") or DEFAULT_CHANNEL, username=username, proxy=proxy,
                    token=token)


def find_provider(given: Iterable[Mapping[str, Any]], name: str, namespace: str, kube: Any) -> Provider:
    manifest = find_given(given, name, namespace)
    if manifest is None:
        if kube is None:
            raise AlertProviderError("AlertProvider %s/%s was not given in canary_alert_providers" % (namespace, name))
        manifest = read_from_cluster(kube, name, namespace)
    return resolve(manifest, name, namespace, kube)
