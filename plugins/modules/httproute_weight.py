#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: httproute_weight
short_description: Read and shift the traffic weights of a Kubernetes Gateway API HTTPRoute rule
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - Reads one rule of a Gateway API C(HTTPRoute) and sets the weights of its primary and canary C(backendRefs), a
    C(RequestMirror) filter to the canary, an A/B rule that sends matching requests to the canary, and session
    affinity (sticky canary) rules. This is M(progressive.delivery.vs_weight) for clusters routed by the Gateway API
    instead of an Istio VirtualService.
  - Only the selected rule's primary and canary weights, its C(RequestMirror) filter to the canary (when O(mirror) is
    given), the rules this module owns (C(<name>-canary-match), C(<name>-canary-sticky), C(<name>-primary-sticky))
    and the C(Set-Cookie) entries it adds to the primary and canary C(backendRefs) change. parentRefs, hostnames,
    other rules, filters, timeouts and other backendRefs are written back unchanged, so the HTTPRoute may be owned by
    the user.
  - Writes are optimistic. The object is read, edited and written with its C(metadata.resourceVersion); a
    C(409 Conflict) re-reads and retries up to O(max_retries) times with jittered back-off; after writing, the
    object is read again and verified. A change without conflicts costs one GET, one PUT and one verifying GET.
  - Uses O(api_version) when given. Otherwise it tries C(gateway.networking.k8s.io/v1), then C(v1beta1), and uses
    the first one the cluster serves.
  - With none of O(weight), O(mirror), O(match) and O(session_affinity) the module only reads and returns the
    current state.
  - The Gateway API picks the most specific match among all rules (exact path, longest prefix, method, most
    headers, most query parameters) and uses rule order only for ties. The rules this module owns carry the
    selected rule's matches plus their own conditions, so they win over it; they are kept ahead of it, A/B first.
extends_documentation_fragment:
  - progressive.delivery.k8s_auth
options:
  name:
    description:
      - Name of the HTTPRoute.
      - Also the base of the default backends (C(<name>-primary), C(<name>-canary)) and of the names of the rules
        this module owns.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the HTTPRoute. Only backendRefs to Services in this namespace are recognised.
    type: str
    required: true
  rule:
    description:
      - Name of the rule to edit (C(spec.rules[].name), Gateway API v1.2 and later). An unnamed rule can be given by
        its index in C(spec.rules), for example V(0).
      - When omitted, the single rule whose backendRefs include both O(primary) and O(canary) is used; none or
        several such rules is an error that lists the rules found.
    type: str
  primary:
    description:
      - The primary (stable) Service backend.
    type: dict
    suboptions:
      name:
        description:
          - Service name. Defaults to C(<name>-primary).
        type: str
      port:
        description:
          - Service port. When omitted, a backendRef with any port matches, as long as only one does.
        type: int
  canary:
    description:
      - The canary Service backend.
    type: dict
    suboptions:
      name:
        description:
          - Service name. Defaults to C(<name>-canary).
        type: str
      port:
        description:
          - Service port. When omitted, a backendRef with any port matches, as long as only one does.
        type: int
  weight:
    description:
      - Weight of the canary, from 0 to 100. The primary gets 100 minus the canary's weight minus the weights of the
        rule's other backendRefs, which keep theirs; a weight that does not fit is refused.
      - A backendRef without a weight counts as 1, the Gateway API default.
    type: int
  mirror:
    description:
      - Add or remove a C(RequestMirror) filter on the selected rule that mirrors requests to the canary (blue/green
        mirroring). Mirrors to other backends belong to the rule's owner and stay.
    type: dict
    suboptions:
      enabled:
        description:
          - V(true) adds or updates the mirror, V(false) removes it.
        type: bool
        default: true
      percentage:
        description:
          - Percentage of requests mirrored, from 0 to 100. V(100) is written without C(percent), which every
            Gateway API version understands; a whole number below 100 as C(percent) and any other value as
            C(fraction) (both Gateway API v1.2 and later).
        type: float
        default: 100.0
  match:
    description:
      - Ensure or remove the A/B rule C(<name>-canary-match), which sends every matching request to the canary and
        carries the selected rule's filters and timeouts. Its matches are the selected rule's own matches combined
        with each condition given here.
    type: dict
    suboptions:
      state:
        description:
          - V(present) creates or updates the A/B rule, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      headers:
        description:
          - Istio C(HTTPMatchRequest) entries, as in Flagger's C(analysis.match) (ORed), converted to
            C(HTTPRouteMatch). C(headers) and C(queryParams) with C(exact), C(regex) or C(prefix) (as an anchored
            regular expression), C(uri) (C(exact) to C(Exact), C(prefix) to C(PathPrefix), C(regex) to
            C(RegularExpression)) and C(method) with C(exact) are supported.
          - Fields an HTTPRoute cannot express (C(sourceLabels), C(sourceNamespace), C(gateways), C(port),
            C(authority), C(scheme), C(ignoreUriCase), C(withoutHeaders)) are refused with the reason.
          - A C(PathPrefix) matches whole path segments (C(/api) matches C(/api/v1), not C(/apis)), unlike Istio's
            string prefix.
        type: list
        elements: dict
      cookie:
        description:
          - Cookies as C(name=value) strings; a request carrying one goes to the canary.
        type: list
        elements: raw
  session_affinity:
    description:
      - Keep users who reached the canary on it while the weights move (Flagger's C(analysis.sessionAffinity)).
      - The canary backendRef of the selected rule answers with C(Set-Cookie) (a C(ResponseHeaderModifier) filter)
        and the rule C(<name>-canary-sticky) sends requests carrying that cookie to the canary. With
        O(session_affinity.primary_cookie) the primary does the same with C(<name>-primary-sticky).
    type: dict
    suboptions:
      state:
        description:
          - V(present) during a release, V(absent) after it.
        type: str
        choices: [present, absent]
        default: present
      cookie:
        description:
          - The canary cookie as C(name=value). Required with V(present); the value must stay the same for the whole
            release. Not needed with V(absent), where the cookie to expire is read from the canary sticky rule.
        type: str
      max_age:
        description:
          - C(Max-Age) of the canary cookie in seconds.
        type: int
        default: 86400
      primary_cookie:
        description:
          - The primary cookie as C(name=value); its name must differ from the canary cookie's.
        type: str
      primary_max_age:
        description:
          - C(Max-Age) of the primary cookie in seconds; required with O(session_affinity.primary_cookie).
        type: int
      expire:
        description:
          - With V(absent), whether to keep the canary sticky rule as an expiry rule that sends holders of the canary
            cookie to the primary and makes them drop it (V(true)), or to remove every trace of session affinity
            (V(false)).
        type: bool
        default: true
  max_retries:
    description:
      - How many times a write refused with C(409 Conflict) is retried after re-reading the object.
    type: int
    default: 5
  api_version:
    description:
      - The API version of the HTTPRoute, used as given with no discovery request; pass on the RV(api_version) an
        earlier call returned.
      - When omitted, the newest version the cluster serves is found by trying each in turn.
    type: str
    choices: [gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1]
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result shows the weights, mirror, A/B rule and session affinity a real run
      would leave.
  diff_mode:
    support: full
    description: Before and after of the selected rule, of the A/B rule and of the sticky rules.
notes:
  - The RBAC verbs needed are C(get) and, to change anything, C(update) on C(httproutes.gateway.networking.k8s.io) in
    O(namespace).
  - Regular expressions (A/B C(prefix) and C(regex), cookies) use the C(RegularExpression) match type, whose support
    and dialect are implementation-specific in the Gateway API; check that your gateway supports it.
seealso:
  - module: progressive.delivery.vs_weight
  - name: Gateway API HTTPRoute reference
    description: Fields of HTTPRouteRule, HTTPBackendRef, HTTPRouteMatch and HTTPRouteFilter.
    link: https://gateway-api.sigs.k8s.io/reference/spec/#httproute
"""

EXAMPLES = r"""
- name: Send 10 % of the traffic to the canary
  progressive.delivery.httproute_weight:
    name: backend-service
    namespace: prod
    weight: 10

- name: Shift a named rule of a user-owned HTTPRoute, with the API version found before
  progressive.delivery.httproute_weight:
    name: storefront
    namespace: shop
    rule: api
    primary:
      name: backend-service-primary
      port: 80
    canary:
      name: backend-service-canary
      port: 80
    api_version: gateway.networking.k8s.io/v1
    weight: 20

- name: Mirror half of the traffic to the canary while the primary serves it
  progressive.delivery.httproute_weight:
    name: backend-service
    namespace: prod
    weight: 0
    mirror:
      percentage: 50

- name: Route insiders to the canary (A/B)
  progressive.delivery.httproute_weight:
    name: backend-service
    namespace: prod
    match:
      headers:
        - headers:
            x-canary:
              exact: insider
      cookie:
        - canary=always

- name: Shift traffic while users who reached the canary stay on it
  progressive.delivery.httproute_weight:
    name: backend-service
    namespace: prod
    weight: 20
    session_affinity:
      cookie: "flagger-cookie={{ release_checksum }}"
      max_age: 21600

- name: After the release, end the A/B test and expire the canary cookie
  progressive.delivery.httproute_weight:
    name: backend-service
    namespace: prod
    weight: 0
    match:
      state: absent
    session_affinity:
      state: absent
"""

RETURN = r"""
route:
  description: The selected rule, by name, or by index in C(spec.rules) when it has no name.
  returned: success
  type: raw
  sample: api
previous_weights:
  description: BackendRefs of the rule and their weights before the change, in rule order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Backend name.
      type: str
    port:
      description: Backend port, or null.
      type: int
    weight:
      description: Effective weight (1 when the backendRef has none, the Gateway API default).
      type: int
  sample: [{name: backend-service-primary, port: 80, weight: 100}, {name: backend-service-canary, port: 80, weight: 0}]
weights:
  description: BackendRefs of the rule and their weights after the change (in check mode, as they would be).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Backend name.
      type: str
    port:
      description: Backend port, or null.
      type: int
    weight:
      description: Effective weight.
      type: int
  sample: [{name: backend-service-primary, port: 80, weight: 90}, {name: backend-service-canary, port: 80, weight: 10}]
canary_weight:
  description: Weight of the canary backendRef after the change, or null when the rule does not hold it.
  returned: success
  type: int
  sample: 10
primary_weight:
  description: Weight of the primary backendRef after the change, or null when the rule does not hold it.
  returned: success
  type: int
  sample: 90
mirror:
  description: The rule's mirror to the canary after the change.
  returned: success
  type: dict
  contains:
    enabled:
      description: Whether the rule mirrors requests to the canary.
      type: bool
    name:
      description: Mirror backend name.
      type: str
    port:
      description: Mirror backend port.
      type: int
    percentage:
      description: Percentage of requests mirrored.
      type: float
  sample: {enabled: false, name: null, port: null, percentage: null}
match:
  description: The A/B rule owned by this module after the change.
  returned: success
  type: dict
  contains:
    state:
      description: V(present) or V(absent).
      type: str
    route:
      description: Name of the A/B rule (C(<name>-canary-match)).
      type: str
    index:
      description: Index of the A/B rule in C(spec.rules), or null.
      type: int
    match:
      description: The A/B rule's C(matches), or null.
      type: list
      elements: dict
  sample: {state: absent, route: backend-service-canary-match, index: null, match: null}
session_affinity:
  description: The session affinity found in the HTTPRoute after the change (in check mode, as it would be).
  returned: success
  type: dict
  contains:
    state:
      description:
        - V(present) when the canary sticky rule sends cookie holders to the canary, V(expiring) when it sends them to
          the primary with C(Max-Age=-1), V(absent) when there is no canary sticky rule.
      type: str
    canary_route:
      description: Name of the canary sticky rule (C(<name>-canary-sticky)).
      type: str
    canary_route_index:
      description: Index of the canary sticky rule in C(spec.rules), or null.
      type: int
    primary_route:
      description: Name of the primary sticky rule (C(<name>-primary-sticky)).
      type: str
    primary_route_index:
      description: Index of the primary sticky rule in C(spec.rules), or null.
      type: int
    cookie:
      description: The C(name=value) cookie the canary sticky rule matches, or null.
      type: str
    primary_cookie:
      description: The C(name=value) cookie the primary sticky rule matches, or null.
      type: str
    set_cookie:
      description: Our C(Set-Cookie) values on the selected rule's backendRefs.
      type: dict
      contains:
        canary:
          description: The value on the canary backendRef, or null.
          type: str
        primary:
          description: The value on the primary backendRef, or null.
          type: str
  sample: {state: present, canary_route: backend-service-canary-sticky, canary_route_index: 0,
           primary_route: backend-service-primary-sticky, primary_route_index: null,
           cookie: flagger-cookie=7f9c5d, primary_cookie: null,
           set_cookie: {canary: "flagger-cookie=7f9c5d; Max-Age=21600", primary: null}}
changes:
  description: One line per change made (in check mode, per change that would be made). Empty when unchanged.
  returned: success
  type: list
  elements: str
  sample: ["weight of backend-service-primary port 80: 100 -> 90", "weight of backend-service-canary port 80: 0 -> 10"]
resource_version:
  description: C(metadata.resourceVersion) of the object as last read (after the write, when one was made).
  returned: success
  type: str
  sample: "48213"
api_version:
  description: The API version the HTTPRoute was read and written with.
  returned: success
  type: str
  sample: gateway.networking.k8s.io/v1
attempts:
  description: Number of write attempts (1 when no conflict happened).
  returned: success
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_module, ensure_kubernetes
from ansible_collections.progressive.delivery.plugins.module_utils.kube.options import K8S_AUTH_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.routing.gateway_api import GATEWAY_API_VERSIONS
from ansible_collections.progressive.delivery.plugins.module_utils.routing.http_route import (
    HTTPRouteRouter,
    httproute_request_from_params,
    module_result,
)

BACKEND_OPTIONS = dict(name=dict(type="str"), port=dict(type="int"))


def argument_spec() -> dict:
    return dict(
        K8S_AUTH_ARG_SPEC,
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        rule=dict(type="str"),
        primary=dict(type="dict", options=BACKEND_OPTIONS),
        canary=dict(type="dict", options=BACKEND_OPTIONS),
        weight=dict(type="int"),
        mirror=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True), percentage=dict(type="float", default=100.0))),
        match=dict(type="dict", options=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            headers=dict(type="list", elements="dict"), cookie=dict(type="list", elements="raw"))),
        session_affinity=dict(type="dict", options=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            cookie=dict(type="str"), max_age=dict(type="int", default=86400),
            primary_cookie=dict(type="str"), primary_max_age=dict(type="int"),
            expire=dict(type="bool", default=True))),
        max_retries=dict(type="int", default=5),
        api_version=dict(type="str", choices=list(GATEWAY_API_VERSIONS)),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    ensure_kubernetes(module)
    name, namespace = module.params["name"], module.params["namespace"]
    try:
        request = httproute_request_from_params(module.params)
    except DeliveryError as error:
        module.fail_json(msg="HTTPRoute %s/%s: %s" % (namespace, name, error.message))
    if module.params["max_retries"] < 0:
        module.fail_json(msg="max_retries must be 0 or more, got %d" % module.params["max_retries"])
    router = HTTPRouteRouter(client_from_module(module), name, namespace, api_version=module.params["api_version"])
    try:
        result = router.apply(request, check_mode=module.check_mode, max_retries=module.params["max_retries"])
    except DeliveryError as error:
        module.fail_json(msg=error.message, api_version=router.api_version, **error.result)
    module.exit_json(**module_result(result, name, namespace, diff=module._diff))


if __name__ == "__main__":
    main()
