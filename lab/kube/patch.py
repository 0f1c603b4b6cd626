"""The three PATCH flavours of the Kubernetes API: JSON merge, JSON patch and strategic merge."""
from __future__ import annotations

import copy
from typing import Any, Callable


class PatchError(ValueError):
    """A patch that cannot be applied. `malformed` patches are 400 BadRequest, the others 422 Invalid."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


# ------------------------------------------------------------ RFC 7386 merge
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ------------------------------------------------------------ RFC 6902 JSON patch
def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": must start with "/"', malformed=True)
    return [_unescape(token) for token in path[1:].split("/")]


def _index(container: list, token: str, path: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"Unable to access invalid index: {token} (path {path})")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"Unable to access invalid index: {index} (path {path})")
    return index


def _parent(document: Any, tokens: list[str], path: str) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: \"{path}\": missing value")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return node


def _get(document: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return document
    parent = _parent(document, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, allow_end=False)]
    raise PatchError(f"doc is missing path: \"{path}\": missing value")


def _add(document: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(document, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return document


def _remove(document: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("unable to remove the whole document")
    parent = _parent(document, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return document, parent.pop(last)
    if isinstance(parent, list):
        return document, parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"doc is missing path: \"{path}\": missing value")


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", malformed=True)
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise PatchError(f"unexpected kind of operation: {operation!r}", malformed=True)
        op = operation["op"]
        if "path" not in operation:
            raise PatchError(f"operation {op!r} is missing the path", malformed=True)
        path = operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"missing value for operation {op!r} at {path}", malformed=True)
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation["value"]))
        elif op == "remove":
            document, _ = _remove(document, path)
        elif op == "replace":
            _get(document, path)  # replace requires the target to exist
            document, _ = _remove(document, path) if _pointer(path) else (document, None)
            document = _add(document, path, copy.deepcopy(operation["value"]))
        elif op in ("move", "copy"):
            if "from" not in operation:
                raise PatchError(f"missing from for operation {op!r}", malformed=True)
            if op == "move":
                document, value = _remove(document, operation["from"])
            else:
                value = copy.deepcopy(_get(document, operation["from"]))
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}", malformed=True)
    return document


# ------------------------------------------------------------ strategic merge
MergeKeyLookup = Callable[[tuple[str, ...]], "str | None"]

# Merge keys of built-in list fields, by field name; "ports" depends on where it is.
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "hostAliases": "ip", "conditions": "type", "ownerReferences": "uid", "readinessGates": "conditionType",
    "resourceClaims": "name", "topologySpreadConstraints": "topologyKey",
}


def builtin_merge_key(path: tuple[str, ...], resource: str = "") -> str | None:
    """Merge key for the list at `path` (field names only, list indices omitted) in a built-in kind."""
    if not path:
        return None
    field = path[-1]
    if field == "ports":
        if resource == "services" and path == ("spec", "ports"):
            return "port"
        return "containerPort"
    if field == "conditions" and path[:1] == ("status",):
        return "type"
    if field == "conditions":
        return None
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any, merge_key: MergeKeyLookup, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain_keys = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
            continue
        child_path = path + (key,)
        if isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, merge_key(child_path), merge_key, child_path)
        elif isinstance(value, list):
            result[key] = _merge_list([], value, merge_key(child_path), merge_key, child_path)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, merge_key, child_path)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain_keys, list):
        result = {key: value for key, value in result.items() if key in retain_keys}
    return result


def _merge_list(current: list, patch: list, key: str | None, merge_key: MergeKeyLookup,
                path: tuple[str, ...]) -> list:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(item) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "replace")]
    if key is None:
        # Lists without a merge key are replaced as a whole, as in a JSON merge patch.
        return [_strip_directives(item) for item in patch
                if not (isinstance(item, dict) and item.get("$patch") == "delete")]
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"merging an object in {'.'.join(path)}: expected a map with merge key {key!r}, "
                             f"found {item!r}")
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}", malformed=True)
        position = next((index for index, existing in enumerate(result)
                         if isinstance(existing, dict) and existing.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append(_strip_directives(item))
        else:
            result[position] = strategic_merge_patch(result[position], item, merge_key, path)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _strip_directives(item) for key, item in value.items() if not key.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return copy.deepcopy(value)
