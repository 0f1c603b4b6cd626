"""Every error a task can end with derives from DeliveryError, which carries the message and the task's result."""

from __future__ import annotations

import pytest

from ansible_collections.progressive.delivery.plugins.module_utils.durations import DurationError
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.errors import KubeApiError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.optimistic import ConflictRetriesExhausted
from ansible_collections.progressive.delivery.plugins.module_utils.kube.store import CanaryFailure
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.gate import GateConfigError
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.prometheus import (
    PrometheusConfigError,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
)
from ansible_collections.progressive.delivery.plugins.module_utils.metrics.templates import MetricDefinitionError, TemplateError
from ansible_collections.progressive.delivery.plugins.module_utils.plan.manifest import CanarySpecError
from ansible_collections.progressive.delivery.plugins.module_utils.release.lease import LockHeld
from ansible_collections.progressive.delivery.plugins.module_utils.release.workload import WorkloadError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_objects import ServiceSpecError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import RouteError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import RouterError
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import WebhookInputError


@pytest.mark.parametrize("error_class", [
    CanaryFailure, ConflictRetriesExhausted, DurationError, GateConfigError, LockHeld, MetricDefinitionError,
    PrometheusConfigError, PrometheusError, PrometheusQueryError, PrometheusUnavailable, RouteError, RouterError,
    ServiceSpecError, TemplateError, WebhookInputError, WorkloadError, CanarySpecError,
])
def test_every_task_error_is_a_delivery_error(error_class):
    assert issubclass(error_class, DeliveryError)


@pytest.mark.parametrize("error_class", [
    DurationError, MetricDefinitionError, RouteError, ServiceSpecError, TemplateError, WebhookInputError, CanarySpecError,
])
def test_errors_about_bad_values_stay_value_errors(error_class):
    assert issubclass(error_class, ValueError)


def test_message_and_result_for_fail_json():
    error = CanaryFailure("Cannot promote canary prod/web: no release", {"phase": "Failed"})
    assert (error.message, error.result, str(error)) == ("Cannot promote canary prod/web: no release",
                                                         {"phase": "Failed"}, "Cannot promote canary prod/web: no release")
    assert RouterError("VirtualService prod/web not found").result == {}
    assert CanarySpecError(["spec.service.port: is required"]).message == \
        "Canary manifest rejected: spec.service.port: is required"
    assert PrometheusQueryError("bad query", "up{").message == "bad query"


def test_api_errors_are_explained_before_they_reach_a_task():
    assert not issubclass(KubeApiError, DeliveryError)
    exhausted = ConflictRetriesExhausted(3, KubeApiError(409, "Conflict", "modified"))
    assert exhausted.message == "3 writes in a row were refused with HTTP 409 Conflict" and exhausted.attempts == 3
