"""Kubernetes Status objects and the error type that carries one to the HTTP layer."""
from __future__ import annotations

from lab.kube.resources import ResourceType

REASON_BY_CODE = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict:
        return status_body(self.code, self.reason, self.message, self.details, failure=True)


def status_body(code: int, reason: str, message: str, details: dict | None = None, failure: bool = True) -> dict:
    body: dict = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                  "status": "Failure" if failure else "Success"}
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def success(rtype: ResourceType, name: str, uid: str | None = None) -> dict:
    # The API server puts the resource (not the kind) into details.kind here.
    details = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _details(rtype: ResourceType | None, name: str | None) -> dict:
    details: dict = {}
    if name:
        details["name"] = name
    if rtype is not None:
        if rtype.group:
            details["group"] = rtype.group
        details["kind"] = rtype.plural
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', _details(rtype, name))


def conflict(rtype: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {why}',
                    _details(rtype, name))


def unknown_path() -> ApiError:
    # A path no served resource matches (an unknown group, version or resource) names no object: details is empty,
    # which is how clients tell it from a missing object.
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def forbidden(user: str, verb: str, rtype: ResourceType, name: str | None, namespace: str | None,
              subresource: str | None = None) -> ApiError:
    resource = f"{rtype.plural}/{subresource}" if subresource else rtype.plural
    subject = f'{rtype.qualified} "{name}"' if name else rtype.qualified
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{rtype.group}"{scope}')
    return ApiError(403, "Forbidden", message, _details(rtype, name))


class FieldError:
    """One cause of a 422 Invalid, in the API server's wording."""

    REASONS = {
        "Required": ("FieldValueRequired", "Required value"),
        "Invalid": ("FieldValueInvalid", "Invalid value"),
        "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
        "Forbidden": ("FieldValueForbidden", "Forbidden"),
        "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    }

    def __init__(self, error_type: str, field: str, detail: str = "", value: object = None,
                 show_value: bool = True) -> None:
        self.reason, label = self.REASONS[error_type]
        self.field = field
        parts = [label]
        if error_type in ("Invalid", "NotSupported", "Duplicate") and show_value:
            parts[0] = f"{label}: {_go_repr(value)}"
        if detail:
            parts.append(detail)
        self.message = ": ".join(parts)

    def cause(self) -> dict:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _go_repr(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{val}" for key, val in sorted(value.items())) + "]"
    return str(value)


def invalid(rtype: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    summary = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(error) for error in errors) + "]"
    details = {"name": name, "kind": rtype.kind, "causes": [error.cause() for error in errors]}
    if rtype.group:
        details = {"name": name, "group": rtype.group, "kind": rtype.kind, "causes": details["causes"]}
    return ApiError(422, "Invalid", f'{rtype.qualified_kind} "{name}" is invalid: {summary}', details)


def injected_fault(code: int, details: dict | None) -> dict:
    """The Status an injected fault answers with: what a real API server sends with that code."""
    if code == 409:
        return status_body(409, "Conflict", "Operation cannot be fulfilled on the requested object: the object "
                           "has been modified; please apply your changes to the latest version and try again", details)
    if code == 500:
        return status_body(500, "InternalError", "Internal error occurred: injected fault",
                           {"causes": [{"message": "injected fault"}]})
    return status_body(code, REASON_BY_CODE.get(code, "Unknown" if code >= 400 else ""),
                       f"injected fault answering {code}", details)
