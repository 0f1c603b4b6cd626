"""Request handling of the emulated API server, independent of HTTP plumbing."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs

import yaml

from lab import store as store_module
from lab.kube import discovery, patch as patching, status as st, validation
from lab.kube.auth import User
from lab.kube.resources import DEFAULT_SERVED, ResourceType, ServedVersions
from lab.kube.routing import DiscoveryRoute, ResourceRoute, UnknownPath, route
from lab.kube.selectors import (SelectorError, fields_match, labels_match, parse_field_selector,
                                parse_label_selector, selector_from_match_labels)
from lab.store import Store

JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = ""
    body: bytes = b""
    user: User | None = None

    @classmethod
    def build(cls, method: str, target: str, content_type: str = "", body: bytes = b"",
              user: User | None = None) -> "Request":
        path, _, query = target.partition("?")
        return cls(method.upper(), path, parse_qs(query, keep_blank_values=True),
                   content_type.split(";")[0].strip().lower(), body, user)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    code: int
    body: dict | str
    # For watches: called with a function that writes one event; returns when the watch ends.
    stream: Callable[[Callable[[dict], bool]], None] | None = None


def _decode(request: Request) -> object:
    if not request.body:
        raise st.bad_request("the body of the request was empty")
    try:
        if request.content_type in YAML_TYPES:
            return yaml.safe_load(request.body)
        return json.loads(request.body)
    except (ValueError, yaml.YAMLError) as error:
        raise st.bad_request(f"the body of the request could not be decoded: {error}") from None


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(NAME_SUFFIX_ALPHABET) for _ in range(5))


class KubeAPI:
    def __init__(self, store: Store, server_address: str = "127.0.0.1:6443",
                 served: ServedVersions = DEFAULT_SERVED) -> None:
        self.store = store
        self.server_address = server_address
        self.served = served
        self.allocator = validation.ClusterIPAllocator()

    # ------------------------------------------------------------ entry point
    def handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except st.ApiError as error:
            return Response(error.code, error.body())
        except validation.DecodeError as error:
            return Response(400, st.bad_request(str(error)).body())

    def _dispatch(self, request: Request) -> Response:
        try:
            target = route(request.path, self.served)
        except UnknownPath:
            return Response(404, st.unknown_path().body())
        if isinstance(target, DiscoveryRoute):
            return self._discovery(request, target)
        return self._resource(request, target)

    def _discovery(self, request: Request, target: DiscoveryRoute) -> Response:
        if request.method != "GET":
            raise st.method_not_allowed("the server does not allow this method on the requested resource")
        if target.document == "health":
            return Response(200, "ok")
        if target.document == "version":
            return Response(200, dict(discovery.VERSION_INFO))
        if target.document == "api":
            return Response(200, discovery.api_versions(self.server_address))
        if target.document == "apis":
            return Response(200, discovery.api_group_list(self.served))
        if target.document == "group":
            return Response(200, discovery.api_group(target.group, self.served) or {})
        return Response(200, discovery.resource_list(target.group, target.version, self.served) or {})

    # ---------------------------------------------------------------- routing
    def _resource(self, request: Request, target: ResourceRoute) -> Response:
        rtype = target.rtype
        method = request.method
        dry_run = self._dry_run(request)
        verb = self._verb(method, target)
        if verb is None:
            raise st.method_not_allowed("the server does not allow this method on the requested resource")
        user = request.user
        if verb in ("create", "update", "patch", "delete", "deletecollection"):
            if user is not None and not user.can_write:
                raise st.forbidden(user.name, verb, rtype, target.name, target.namespace, target.subresource)
            if not rtype.writable:
                raise st.method_not_allowed(
                    f"{rtype.plural} are derived from deployments by the lab's workload controller and cannot be "
                    f"written; change the deployment instead")
        if target.subresource == "scale":
            return self._scale(request, target, verb, dry_run)
        if target.subresource == "status":
            return self._status(request, target, verb, dry_run)
        handler = {
            "list": self._list, "watch": self._watch, "create": self._create, "deletecollection": self._delete_collection,
            "get": self._get, "update": self._update, "patch": self._patch, "delete": self._delete,
        }[verb]
        return handler(request, target, dry_run)

    @staticmethod
    def _verb(method: str, target: ResourceRoute) -> str | None:
        if target.name is None:
            return {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(method)
        if target.subresource is not None:
            return {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method)
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)

    @staticmethod
    def _dry_run(request: Request) -> bool:
        values = request.query.get("dryRun") or []
        for value in values:
            if value != "All":
                raise st.bad_request(f'Invalid value: "{value}": supported values: "All"')
        return bool(values)

    # ------------------------------------------------------------ presenting
    @staticmethod
    def present(rtype: ResourceType, obj: dict, version: str) -> dict:
        """The stored object as served at `version`: apiVersion and kind first, as the API server writes them."""
        shown = {"apiVersion": rtype.api_version(version), "kind": rtype.kind}
        shown.update({key: value for key, value in obj.items() if key not in ("apiVersion", "kind")})
        return shown

    def _namespace_must_exist(self, target: ResourceRoute) -> None:
        if target.rtype.namespaced and self.store.get("namespaces", None, target.namespace or "") is None:
            raise st.namespace_not_found(target.namespace or "")

    def _check_identity(self, rtype: ResourceType, target: ResourceRoute, obj: object, name_from_url: bool) -> dict:
        if not isinstance(obj, dict):
            raise st.bad_request(f"the body of the request must be a JSON object describing a {rtype.kind}")
        api_version = obj.get("apiVersion")
        if api_version and api_version != target.api_version:
            raise st.bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                                 f"version ({target.api_version})")
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise st.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise validation.DecodeError(f"json: cannot unmarshal {type(meta).__name__} into Go struct field "
                                         f"{rtype.kind}.metadata of type v1.ObjectMeta")
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != target.namespace:
                raise st.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                     "request")
            meta["namespace"] = target.namespace
        else:
            meta.pop("namespace", None)
        if name_from_url and meta.get("name") != target.name:
            raise st.bad_request(f"the name of the object ({meta.get('name', '')}) does not match the name on the "
                                 f"URL ({target.name})")
        obj["apiVersion"] = rtype.storage_api_version
        obj["kind"] = rtype.kind
        return obj

    def _prepare(self, rtype: ResourceType, obj: dict, existing: dict | None) -> dict:
        return validation.prepare(rtype, obj, existing, self.allocator)

    # ----------------------------------------------------------------- verbs
    def _get(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        obj = self.store.get(target.rtype.plural, target.namespace, target.name or "")
        if obj is None:
            raise st.not_found(target.rtype, target.name or "")
        return Response(200, self.present(target.rtype, obj, target.version))

    def _selected(self, request: Request, target: ResourceRoute) -> tuple[list[dict], int]:
        try:
            label_requirements = parse_label_selector(request.param("labelSelector"))
            field_requirements = parse_field_selector(request.param("fieldSelector"), target.rtype.plural)
        except SelectorError as error:
            raise st.bad_request(str(error)) from None
        items, revision = self.store.list_with_revision(target.rtype.plural, target.namespace)
        chosen = [obj for obj in items
                  if labels_match(label_requirements, obj["metadata"].get("labels"))
                  and fields_match(field_requirements, obj)]
        return chosen, revision

    def _list(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        if request.param("watch") in ("true", "1"):
            return self._watch(request, target, dry_run)
        items, revision = self._selected(request, target)
        rtype = target.rtype
        if rtype.builtin:
            # Items of built-in lists carry no apiVersion/kind; the list's own fields say it.
            shown = [{key: value for key, value in obj.items() if key not in ("apiVersion", "kind")} for obj in items]
        else:
            shown = [self.present(rtype, obj, target.version) for obj in items]
        return Response(200, {"kind": f"{rtype.kind}List", "apiVersion": target.api_version,
                              "metadata": {"resourceVersion": str(revision)}, "items": shown})

    def _watch(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        try:
            label_requirements = parse_label_selector(request.param("labelSelector"))
            field_requirements = parse_field_selector(request.param("fieldSelector"), target.rtype.plural)
        except SelectorError as error:
            raise st.bad_request(str(error)) from None
        timeout = float(request.param("timeoutSeconds") or 1800)
        since_param = request.param("resourceVersion")
        rtype = target.rtype

        def selected(obj: dict) -> bool:
            meta = obj["metadata"]
            if target.namespace is not None and meta.get("namespace") != target.namespace:
                return False
            if target.name is not None and meta.get("name") != target.name:
                return False
            return labels_match(label_requirements, meta.get("labels")) and fields_match(field_requirements, obj)

        def stream(send: Callable[[dict], bool]) -> None:
            deadline = time.monotonic() + timeout
            if since_param and since_param != "0":
                since = int(since_param)
                _changes, complete = self.store.changes_since(since)
                if not complete:
                    send({"type": "ERROR", "object": st.ApiError(
                        410, "Expired", f"too old resource version: {since} ({self.store.revision})").body()})
                    return
            else:
                items, since = self.store.list_with_revision(rtype.plural, target.namespace)
                for obj in items:
                    if selected(obj) and not send({"type": "ADDED", "object": self.present(rtype, obj, target.version)}):
                        return
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.store.wait_for_change(since, min(remaining, 5.0))
                changes, _complete = self.store.changes_since(since)
                for change in changes:
                    since = change.revision
                    if change.resource == rtype.plural and selected(change.object):
                        event = {"type": change.type, "object": self.present(rtype, change.object, target.version)}
                        if not send(event):
                            return
                if not changes and not send({}):
                    return

        return Response(200, {}, stream=stream)

    def _create(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        rtype = target.rtype
        obj = self._check_identity(rtype, target, self._body(request), name_from_url=False)
        return self._create_object(rtype, target, obj, dry_run)

    def _create_object(self, rtype: ResourceType, target: ResourceRoute, obj: dict, dry_run: bool) -> Response:
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generated_name(meta["generateName"])
        for server_owned in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            meta.pop(server_owned, None)
        if rtype.status_subresource and rtype.plural not in ("namespaces",):
            obj.pop("status", None)
        self._namespace_must_exist(ResourceRoute(rtype, target.version, meta.get("namespace"), meta.get("name")))
        self._prepare(rtype, obj, None)
        if rtype.plural == "deployments":
            obj.setdefault("status", {})
        try:
            created = self.store.create(rtype.plural, obj, dry_run=dry_run)
        except store_module.AlreadyExists:
            raise st.already_exists(rtype, meta["name"]) from None
        return Response(201, self.present(rtype, created, target.version))

    def _body(self, request: Request) -> object:
        if request.content_type not in JSON_TYPES + YAML_TYPES:
            raise st.unsupported_media_type(
                f"the body of the request was in an unknown format ({request.content_type}) - accepted media types "
                "include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
        return _decode(request)

    def _update(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        rtype = target.rtype
        obj = self._check_identity(rtype, target, self._body(request), name_from_url=True)
        existing = self.store.get(rtype.plural, target.namespace, target.name or "")
        if existing is None:
            if rtype.create_on_update:
                return self._create_object(rtype, target, obj, dry_run)
            raise st.not_found(rtype, target.name or "")
        expected = obj["metadata"].get("resourceVersion")
        if expected and expected != existing["metadata"].get("resourceVersion"):
            raise st.conflict(rtype, target.name or "")
        self._prepare(rtype, obj, existing)
        try:
            updated = self.store.update(rtype.plural, obj, expected_resource_version=expected, dry_run=dry_run,
                                        keep_status=rtype.status_subresource)
        except store_module.NotFound:
            raise st.not_found(rtype, target.name or "") from None
        except store_module.Conflict:
            raise st.conflict(rtype, target.name or "") from None
        return Response(200, self.present(rtype, updated, target.version))

    # ----------------------------------------------------------------- patch
    def _patch_function(self, request: Request, rtype: ResourceType, target_resource: str) -> Callable[[dict], dict]:
        content_type = request.content_type
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([STRATEGIC_PATCH] if rtype.builtin else [])
        if content_type == APPLY_PATCH:
            raise st.unsupported_media_type("server-side apply (application/apply-patch+yaml) is not emulated by "
                                            "the lab API server; use a merge, JSON or strategic merge patch")
        if content_type not in accepted:
            raise st.unsupported_media_type(f"the body of the request was in an unknown format - accepted media "
                                            f"types include: {', '.join(accepted)}")
        document = _decode(request)

        def apply(current: dict) -> dict:
            try:
                if content_type == JSON_PATCH:
                    result = patching.json_patch(current, document)
                elif content_type == MERGE_PATCH:
                    if not isinstance(document, dict):
                        raise patching.PatchError("the merge patch must be a JSON object", malformed=True)
                    result = patching.merge_patch(current, document)
                else:
                    if not isinstance(document, dict):
                        raise patching.PatchError("the strategic merge patch must be a JSON object", malformed=True)
                    result = patching.strategic_merge_patch(
                        current, document, lambda path: patching.builtin_merge_key(path, target_resource))
            except patching.PatchError as error:
                if error.malformed:
                    raise st.bad_request(str(error)) from None
                raise st.ApiError(422, "Invalid", str(error)) from None
            if not isinstance(result, dict):
                raise st.bad_request("the patched document is not a JSON object")
            return result
        return apply

    def _patch(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        rtype = target.rtype
        apply = self._patch_function(request, rtype, rtype.plural)

        def mutation(current: dict) -> dict:
            served = self.present(rtype, current, target.version)
            patched = self._check_identity(rtype, target, apply(served), name_from_url=True)
            if rtype.status_subresource:
                if "status" in current:
                    patched["status"] = current["status"]
                else:
                    patched.pop("status", None)
            for immutable in ("uid", "creationTimestamp"):
                if immutable in current["metadata"]:
                    patched["metadata"][immutable] = current["metadata"][immutable]
            return self._prepare(rtype, patched, current)

        return Response(200, self.present(rtype, self._mutate(rtype, target, mutation, dry_run), target.version))

    def _mutate(self, rtype: ResourceType, target: ResourceRoute, mutation: Callable[[dict], dict],
                dry_run: bool) -> dict:
        try:
            return self.store.mutate(rtype.plural, target.namespace, target.name or "", mutation, dry_run=dry_run)
        except store_module.NotFound:
            raise st.not_found(rtype, target.name or "") from None
        except store_module.Conflict:
            raise st.conflict(rtype, target.name or "") from None

    # ---------------------------------------------------------------- delete
    def _delete(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        rtype = target.rtype
        options = {}
        if request.body:
            options = _decode(request)
            if not isinstance(options, dict):
                raise st.bad_request("the body of a delete request must be a DeleteOptions object")
            if "dryRun" in options:
                dry_run = dry_run or bool(options.get("dryRun"))
        preconditions = options.get("preconditions") or {}
        name = target.name or ""
        try:
            deleted = self.store.delete(rtype.plural, target.namespace, name,
                                        expected_resource_version=preconditions.get("resourceVersion"),
                                        expected_uid=preconditions.get("uid"), dry_run=dry_run,
                                        force=rtype.plural == "namespaces")
        except store_module.NotFound:
            raise st.not_found(rtype, name) from None
        except store_module.Conflict as error:
            if preconditions.get("uid") and "UID" in str(error):
                raise st.conflict(rtype, name, str(error)) from None
            current = (self.store.get(rtype.plural, target.namespace, name) or {}).get("metadata", {})
            raise st.conflict(rtype, name, f"Precondition failed: ResourceVersion in precondition: "
                                           f"{preconditions.get('resourceVersion')}, ResourceVersion in object meta: "
                                           f"{current.get('resourceVersion')}") from None
        if rtype.plural == "namespaces":
            if not dry_run:
                self.store.delete_namespace_contents(name)
            deleted.setdefault("status", {})["phase"] = "Terminating"
            deleted["metadata"]["deletionTimestamp"] = store_module.now_rfc3339()
            return Response(200, self.present(rtype, deleted, target.version))
        # An object its finalizers keep alive is answered as it now is, marked with deletionTimestamp, whatever the
        # resource; otherwise the resource's storage decides between the deleted object and a Status Success.
        pending = bool(deleted["metadata"].get("finalizers"))
        if pending or rtype.returns_deleted_object:
            return Response(200, self.present(rtype, deleted, target.version))
        return Response(200, st.success(rtype, name, deleted["metadata"].get("uid")))

    def _delete_collection(self, request: Request, target: ResourceRoute, dry_run: bool) -> Response:
        rtype = target.rtype
        items, _revision = self._selected(request, target)
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            try:
                deleted.append(self.store.delete(rtype.plural, meta.get("namespace"), meta["name"], dry_run=dry_run))
            except store_module.NotFound:
                continue
        shown = [self.present(rtype, obj, target.version) for obj in deleted]
        return Response(200, {"kind": f"{rtype.kind}List", "apiVersion": target.api_version,
                              "metadata": {"resourceVersion": str(self.store.revision)}, "items": shown})

    # ----------------------------------------------------------- subresources
    def _status(self, request: Request, target: ResourceRoute, verb: str, dry_run: bool) -> Response:
        rtype = target.rtype
        if verb == "get":
            return self._get(request, target, dry_run)
        if verb == "update":
            body = self._check_identity(rtype, target, self._body(request), name_from_url=True)
            expected = body["metadata"].get("resourceVersion")

            def mutation(current: dict) -> dict:
                current["status"] = body.get("status") or {}
                if expected:
                    current["metadata"]["resourceVersion"] = expected
                return current
        else:
            apply = self._patch_function(request, rtype, rtype.plural)

            def mutation(current: dict) -> dict:
                patched = apply(self.present(rtype, current, target.version))
                expected_version = (patched.get("metadata") or {}).get("resourceVersion")
                current["status"] = patched.get("status") or {}
                if expected_version:
                    current["metadata"]["resourceVersion"] = expected_version
                return current
        return Response(200, self.present(rtype, self._mutate(rtype, target, mutation, dry_run), target.version))

    @staticmethod
    def scale_of(deployment: dict) -> dict:
        meta = deployment["metadata"]
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        scale_status: dict = {"replicas": status.get("replicas", 0)}
        match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
        if match_labels:
            scale_status["selector"] = selector_from_match_labels(match_labels)
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if key in meta},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": scale_status,
        }

    def _scale(self, request: Request, target: ResourceRoute, verb: str, dry_run: bool) -> Response:
        rtype = target.rtype
        name = target.name or ""
        if verb == "get":
            deployment = self.store.get(rtype.plural, target.namespace, name)
            if deployment is None:
                raise st.not_found(rtype, name)
            return Response(200, self.scale_of(deployment))
        if verb == "update":
            body = self._body(request)
            if not isinstance(body, dict):
                raise st.bad_request("the body of the request must be a Scale object")
            if body.get("kind") not in (None, "Scale"):
                raise st.bad_request(f"the kind in the data ({body.get('kind')}) does not match the expected kind "
                                     "(Scale)")

            def new_scale(current_scale: dict) -> dict:
                return body
        else:
            apply = self._patch_function(request, rtype, "scale")

            def new_scale(current_scale: dict) -> dict:
                return apply(current_scale)

        def mutation(current: dict) -> dict:
            scale = new_scale(self.scale_of(current))
            meta = scale.get("metadata") or {}
            if meta.get("name") not in (None, name):
                raise st.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                     f"URL ({name})")
            replicas = (scale.get("spec") or {}).get("replicas", 0)
            if isinstance(replicas, bool) or not isinstance(replicas, int):
                raise validation.DecodeError("json: cannot unmarshal value into Go struct field ScaleSpec.spec.replicas "
                                             "of type int32")
            if replicas < 0:
                scale_type = ResourceType("autoscaling", ("v1",), "scale", "scale", "Scale")
                raise st.invalid(scale_type, name, [st.FieldError("Invalid", "spec.replicas",
                                                                  "must be greater than or equal to 0", replicas)])
            current.setdefault("spec", {})["replicas"] = replicas
            if meta.get("resourceVersion"):
                current["metadata"]["resourceVersion"] = meta["resourceVersion"]
            return current

        return Response(200, self.scale_of(self._mutate(rtype, target, mutation, dry_run)))
