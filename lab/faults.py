"""Fault injection for the emulated API server: errors and delays for a share of matching requests."""
from __future__ import annotations

import json
import random
import re
import threading
import uuid
from dataclasses import dataclass, field


@dataclass
class Fault:
    id: str
    method: str
    path_regex: str
    status: int | None
    delay: float
    ratio: float
    count: int | None
    matched: int = 0
    _pattern: re.Pattern = field(repr=False, default=None)  # type: ignore[assignment]

    def as_dict(self) -> dict:
        return {
            "id": self.id, "method": self.method, "path_regex": self.path_regex, "status": self.status,
            "delay": self.delay, "ratio": self.ratio, "count": self.count, "matched": self.matched,
        }


@dataclass
class FaultDecision:
    """What to do to one request: sleep `delay` seconds, then answer `status` (None: handle it normally)."""

    delay: float = 0.0
    status: int | None = None
    fault_ids: list[str] = field(default_factory=list)


class FaultInjector:
    """Faults match on HTTP method ("*" for any) and a regular expression searched in the URL path."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def add(self, method: str, path_regex: str, status: int | None = None, delay: float = 0.0,
            ratio: float = 1.0, count: int | None = None) -> str:
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError(f"status must be an HTTP status code between 100 and 599, got {status!r}")
        if not 0.0 <= float(ratio) <= 1.0:
            raise ValueError(f"ratio must be between 0 and 1, got {ratio!r}")
        if float(delay) < 0:
            raise ValueError(f"delay must not be negative, got {delay!r}")
        if count is not None and int(count) < 1:
            raise ValueError(f"count must be at least 1 when given, got {count!r}")
        if status is None and not delay:
            raise ValueError("a fault needs a status, a delay, or both")
        fault = Fault(
            id=uuid.uuid4().hex[:12], method=(method or "*").upper(), path_regex=path_regex,
            status=int(status) if status is not None else None, delay=float(delay), ratio=float(ratio),
            count=int(count) if count is not None else None, _pattern=re.compile(path_regex),
        )
        with self._lock:
            self._faults.append(fault)
        return fault.id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults = []

    def list(self) -> list[dict]:
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def decide(self, method: str, path: str) -> FaultDecision:
        """Match a request against the faults; every matching fault with a count left is consumed once."""
        decision = FaultDecision()
        with self._lock:
            if not self._faults:
                return decision
            for fault in self._faults:
                if fault.method not in ("*", method.upper()) or not fault._pattern.search(path):
                    continue
                if fault.count is not None and fault.matched >= fault.count:
                    continue
                if fault.ratio < 1.0 and self._rng.random() >= fault.ratio:
                    continue
                fault.matched += 1
                decision.fault_ids.append(fault.id)
                decision.delay += fault.delay
                if decision.status is None and fault.status is not None:
                    decision.status = fault.status
        return decision


def faults_endpoint(faults: FaultInjector, method: str, body: bytes) -> tuple[int, dict]:
    """The lab's /lab/v1/faults endpoint: (HTTP status, JSON answer); errors are Kubernetes Status objects."""
    from lab.kube.status import status_body  # pylint: disable=import-outside-toplevel
    if method == "GET":
        return 200, {"faults": faults.list()}
    if method == "DELETE":
        # With {"id": ...} only that fault goes, so tests that share the lab never lift each other's faults.
        try:
            fault_id = json.loads(body or b"{}").get("id")
        except (ValueError, AttributeError) as error:
            return 400, status_body(400, "BadRequest", f"invalid fault removal: {error}")
        if fault_id is None:
            faults.clear()
        elif not faults.remove(fault_id):
            return 404, status_body(404, "NotFound", f"no fault {fault_id}")
        return 200, {"faults": faults.list()}
    if method != "POST":
        return 405, status_body(405, "MethodNotAllowed", f"{method} is not allowed on the faults endpoint")
    try:
        spec = json.loads(body or b"{}")
        fault_id = faults.add(spec.get("method", "*"), spec["path_regex"], status=spec.get("status"),
                              delay=spec.get("delay", 0.0), ratio=spec.get("ratio", 1.0), count=spec.get("count"))
    except (ValueError, KeyError, TypeError) as error:
        return 400, status_body(400, "BadRequest", f"invalid fault: {error}")
    return 201, {"id": fault_id}
