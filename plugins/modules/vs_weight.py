#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vs_weight
short_description: Read and shift the traffic weights of an Istio VirtualService route
version_added: 0.1.0
author:
  - progressive.delivery maintainers (@progressive-delivery)
description:
  - Reads one HTTP route of an Istio C(VirtualService) and sets the weights of its destinations, the mirror, an
    A/B match route that sends matching requests to the canary, and session affinity (sticky canary) routes.
  - Only the selected route's destination weights, its C(mirror)/C(mirrorPercentage) (when O(mirror) is given) and
    the match route this module owns (when O(match) is given), and the sticky routes and C(Set-Cookie) entries it
    owns (when O(session_affinity) is given) change. Every other field of the object, including
    other routes, hosts, gateways, retries, timeouts, headers and destinations not named, is written back unchanged,
    so the VirtualService may be owned by the user.
  - Writes are optimistic. The object is read, edited and written with its C(metadata.resourceVersion); a
    C(409 Conflict) re-reads and retries up to O(max_retries) times with jittered back-off; after writing, the
    object is read again and the weights are verified. A change without conflicts costs one GET, one PUT and one
    verifying GET.
  - Uses O(api_version) when given. Otherwise it tries C(networking.istio.io/v1), then C(v1beta1), then C(v1alpha3),
    and uses the first one the cluster serves; each version not served costs one more request.
  - With none of O(weight), O(weights), O(mirror), O(match) and O(session_affinity) the module only reads and
    returns the current state.
extends_documentation_fragment:
  - progressive.delivery.k8s_auth
options:
  name:
    description:
      - Name of the VirtualService.
      - Also the base of the default destinations (C(<name>-primary), C(<name>-canary)) and of the match route name
        C(<name>-canary-match).
    type: str
    required: true
  namespace:
    description:
      - Namespace of the VirtualService. Short destination hosts are resolved in this namespace, so C(backend),
        C(backend.prod), C(backend.prod.svc) and C(backend.prod.svc.cluster.local) name the same service.
    type: str
    required: true
  route:
    description:
      - Name of the HTTP route to edit. An unnamed route can be given by its index in C(spec.http), for example V(0).
      - When omitted, the single route whose destinations include both O(primary) and O(canary) (or, with O(weights),
        every listed destination) is used; none or several such routes is an error that lists the routes found.
    type: str
  primary:
    description:
      - The primary (stable) destination.
    type: dict
    suboptions:
      host:
        description:
          - Destination host. Defaults to C(<name>-primary).
        type: str
      subset:
        description:
          - Destination subset. When omitted, a destination with any subset matches, as long as only one does.
        type: str
      port:
        description:
          - Destination port number. When omitted, any port matches, as long as only one destination does.
        type: int
  canary:
    description:
      - The canary destination.
    type: dict
    suboptions:
      host:
        description:
          - Destination host. Defaults to C(<name>-canary).
        type: str
      subset:
        description:
          - Destination subset. When omitted, a destination with any subset matches, as long as only one does.
        type: str
      port:
        description:
          - Destination port number. When omitted, any port matches, as long as only one destination does.
        type: int
  weight:
    description:
      - Percentage of the route's traffic for the canary, from 0 to 100. The primary gets the rest.
      - Other destinations of the route keep their weight; the primary gets 100 minus the canary and those.
      - Mutually exclusive with O(weights).
    type: int
  weights:
    description:
      - Explicit weights for some or all destinations of the route. Every listed destination must already be in the
        route. With the unlisted destinations' weights the route must total 100.
      - Mutually exclusive with O(weight).
    type: list
    elements: dict
    suboptions:
      host:
        description:
          - Destination host.
        type: str
        required: true
      subset:
        description:
          - Destination subset.
        type: str
      port:
        description:
          - Destination port number.
        type: int
      weight:
        description:
          - Weight from 0 to 100.
        type: int
        required: true
  mirror:
    description:
      - Set or clear the route's C(mirror) and C(mirrorPercentage) (traffic shadowing, as in blue/green mirroring).
      - Clearing removes a mirror only when it targets the configured destination; a mirror to any other destination
        belongs to the route's owner and stays.
    type: dict
    suboptions:
      enabled:
        description:
          - V(true) mirrors to the destination, V(false) removes that mirror.
        type: bool
        default: true
      percentage:
        description:
          - Percentage of requests mirrored, from 0 to 100.
        type: float
        default: 100.0
      host:
        description:
          - Mirror destination host. Defaults to the canary destination (host, subset and port).
        type: str
      subset:
        description:
          - Mirror destination subset, used with O(mirror.host).
        type: str
      port:
        description:
          - Mirror destination port number, used with O(mirror.host).
        type: int
  match:
    description:
      - Ensure or remove the A/B match route, an HTTP route named C(<name>-canary-match) placed right ahead of the
        selected route. It sends every matching request to the canary and carries the selected route's other
        settings (retries, timeout, headers, rewrite, ...). Its conditions are the selected route's own C(match)
        entries combined with each entry given here.
      - The route is recognised by its name only; this module creates, updates and removes it and never touches a
        route of another name.
    type: dict
    suboptions:
      state:
        description:
          - V(present) creates or updates the match route, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      headers:
        description:
          - 'Istio C(HTTPMatchRequest) entries, ORed, for example C({headers: {x-canary: {exact: insider}}}).'
          - The C(match) list of a Flagger Canary's analysis can be passed as it is.
        type: list
        elements: dict
      cookie:
        description:
          - Cookies that select the canary, each either a C(name=value) string (matched anywhere in the Cookie
            header) or an Istio C(HTTPMatchRequest).
        type: list
        elements: raw
  session_affinity:
    description:
      - Flagger's C(analysis.sessionAffinity) on this VirtualService. With V(present), responses from the canary
        destination of the selected route carry a C(Set-Cookie) header C(<cookie>; Max-Age=<max_age>), and a route named
        C(<name>-canary-sticky), ahead of the selected route, sends every request carrying that cookie to the canary,
        so a user who reached the canary once stays on it while the weights move.
      - With O(session_affinity.primary_cookie), the primary destination hands out its own cookie and a route named
        C(<name>-primary-sticky) keeps its holders on the primary until the cookie expires.
      - The owned routes stand right ahead of the selected route, behind the A/B match route (O(match)), in this
        order, match route, canary sticky route, primary sticky route. An explicit A/B condition therefore wins over
        a cookie, and a client holding both cookies stays on the canary.
      - Sticky routes copy the selected route's own C(match) conditions (combined with the cookie) and its other
        settings (retries, timeout, headers, rewrite, ...), as the match route does.
      - The routes are recognised by name. A route with one of these names that does not send everything to the
        primary or the canary is someone else's and is an error, never rewritten. A C(Set-Cookie) entry is
        recognised as ours by its cookie name; a destination that already adds a C(Set-Cookie) of another cookie in
        C(headers.response.add) is an error, because Istio keeps one value per header name there.
      - With V(absent), the C(Set-Cookie) entries and the primary sticky route are removed. The canary sticky
        route stays as an expiry route, unless O(session_affinity.expire=false). It sends holders of the release's
        canary cookie to the primary and answers them with C(Max-Age=-1), so their browsers drop it. Only those
        clients get the header, so everyone else's responses stay cacheable. The next release's V(present)
        replaces it; remove it with O(session_affinity.expire=false) once O(session_affinity.max_age) has passed.
    type: dict
    suboptions:
      state:
        description:
          - V(present) during a release, V(absent) after it (promotion or rollback).
        type: str
        choices: [present, absent]
        default: present
      cookie:
        description:
          - The canary cookie as C(name=value), for example C(flagger-cookie=podinfo-7f9c5d). Required with
            O(session_affinity.state=present).
          - The value must stay the same for the whole release (the role derives it from the canary's name and
            checksum); a new value makes earlier canary users lose their stickiness.
          - The name must be a cookie token (letters, digits and C(!#$%&'*+-.^_`|~)). The value may hold letters,
            digits and most punctuation, but no spaces, quotes, commas, semicolons or backslashes.
          - Not needed with V(absent). The cookie to expire is read from the canary sticky route, because that is
            the cookie clients hold.
        type: str
      max_age:
        description:
          - C(Max-Age) of the canary cookie in seconds (Flagger's C(sessionAffinity.maxAge)).
        type: int
        default: 86400
      primary_cookie:
        description:
          - The primary cookie as C(name=value) (Flagger's C(sessionAffinity.primaryCookieName)). Its name must
            differ from the canary cookie's.
          - Flagger changes the value at every step, so that users kept on the primary during one step are shared
            out by weight again in the next; pass a value derived from the step.
        type: str
      primary_max_age:
        description:
          - C(Max-Age) of the primary cookie in seconds; required with O(session_affinity.primary_cookie). Flagger
            uses the analysis interval, so primary stickiness lasts one step.
        type: int
      expire:
        description:
          - With V(absent), whether to keep the canary sticky route as an expiry route that makes holders of the
            canary cookie drop it (V(true)), or to remove every trace of session affinity (V(false)).
        type: bool
        default: true
  max_retries:
    description:
      - How many times a write refused with C(409 Conflict) is retried after re-reading the object.
    type: int
    default: 5
  api_version:
    description:
      - The API version of the VirtualService, used as given with no discovery request.
      - M(progressive.delivery.canary_step) records the version it found when it initialized the canary in its state
        (C(state.virtualService.apiVersion)); pass it on here.
      - When omitted, the newest version the cluster serves is found by trying each in turn.
    type: str
    choices: [networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3]
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result shows the weights, mirror, match route and session affinity a real run
      would leave.
  diff_mode:
    support: full
    description: Before and after of the selected route, of the match route and of the sticky routes.
notes:
  - The RBAC verbs needed are C(get) and, to change anything, C(update) on C(virtualservices.networking.istio.io) in
    O(namespace).
seealso:
  - name: Istio VirtualService reference
    description: Fields of HTTPRoute, HTTPRouteDestination and HTTPMatchRequest.
    link: https://istio.io/latest/docs/reference/config/networking/virtual-service/
"""

EXAMPLES = r"""
- name: Send 10 % of the traffic to the canary
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 10

- name: Shift traffic with the API version canary_step recorded, with no discovery request
  progressive.delivery.vs_weight:
    name: "{{ release.state.virtualService.name }}"
    namespace: prod
    route: "{{ release.state.virtualService.route | default(omit, true) }}"
    api_version: "{{ release.state.virtualService.apiVersion }}"
    weight: 20

- name: Read the current split of a named route of a user-owned VirtualService
  progressive.delivery.vs_weight:
    name: storefront
    namespace: shop
    route: api
    primary:
      host: backend-service-primary
    canary:
      host: backend-service-canary
  register: split

- name: Subset-based split, every destination explicit
  progressive.delivery.vs_weight:
    name: reviews
    namespace: bookinfo
    route: reviews
    weights:
      - host: reviews
        subset: v1
        weight: 70
      - host: reviews
        subset: v2
        weight: 30

- name: Mirror all traffic to the canary while the primary serves it
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 0
    mirror:
      enabled: true
      percentage: 100

- name: Route insiders to the canary (A/B)
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    match:
      state: present
      headers:
        - headers:
            x-canary:
              exact: insider
      cookie:
        - canary=always

- name: End the A/B test
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 0
    match:
      state: absent

- name: Shift traffic while users who reached the canary stay on it
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 20
    session_affinity:
      state: present
      cookie: "flagger-cookie={{ release_checksum }}"
      max_age: 21600

- name: Keep primary users on the primary for one step too
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 30
    session_affinity:
      cookie: "flagger-cookie={{ release_checksum }}"
      primary_cookie: "primary-flagger-cookie={{ release_checksum }}-{{ step_index }}"
      primary_max_age: 60

- name: After the release, send canary cookie holders to the primary and make them drop the cookie
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    weight: 0
    session_affinity:
      state: absent

- name: A day later, remove every trace of session affinity
  progressive.delivery.vs_weight:
    name: backend-service
    namespace: prod
    session_affinity:
      state: absent
      expire: false
"""

RETURN = r"""
route:
  description: The selected HTTP route, by name, or by index in C(spec.http) when it has no name.
  returned: success
  type: raw
  sample: api
previous_weights:
  description: Destinations of the route and their weights before the change, in route order.
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: Destination host as written in the VirtualService.
      type: str
    subset:
      description: Destination subset, or null.
      type: str
    port:
      description: Destination port number, or null.
      type: int
    weight:
      description: Effective weight (a lone destination without weight has 100, one of several has 0).
      type: int
  sample: [{host: backend-service-primary, subset: null, port: null, weight: 100},
           {host: backend-service-canary, subset: null, port: null, weight: 0}]
weights:
  description: Destinations of the route and their weights after the change (in check mode, as they would be).
  returned: success
  type: list
  elements: dict
  contains:
    host:
      description: Destination host as written in the VirtualService.
      type: str
    subset:
      description: Destination subset, or null.
      type: str
    port:
      description: Destination port number, or null.
      type: int
    weight:
      description: Effective weight.
      type: int
  sample: [{host: backend-service-primary, subset: null, port: null, weight: 90},
           {host: backend-service-canary, subset: null, port: null, weight: 10}]
canary_weight:
  description: Weight of the canary destination after the change, or null when the route does not hold it.
  returned: success
  type: int
  sample: 10
primary_weight:
  description: Weight of the primary destination after the change, or null when the route does not hold it.
  returned: success
  type: int
  sample: 90
mirror:
  description: The route's mirror after the change.
  returned: success
  type: dict
  contains:
    enabled:
      description: Whether the route mirrors traffic.
      type: bool
    host:
      description: Mirror host.
      type: str
    subset:
      description: Mirror subset.
      type: str
    port:
      description: Mirror port number.
      type: int
    percentage:
      description: Percentage of requests mirrored.
      type: float
  sample: {enabled: false, host: null, subset: null, port: null, percentage: null}
match:
  description: The A/B match route owned by this module after the change.
  returned: success
  type: dict
  contains:
    state:
      description: V(present) or V(absent).
      type: str
    route:
      description: Name of the match route (C(<name>-canary-match)).
      type: str
    index:
      description: Index of the match route in C(spec.http), or null.
      type: int
    match:
      description: The match route's C(match) conditions, or null.
      type: list
      elements: dict
  sample: {state: absent, route: backend-service-canary-match, index: null, match: null}
session_affinity:
  description: The session affinity found in the VirtualService after the change (in check mode, as it would be).
  returned: success
  type: dict
  contains:
    state:
      description:
        - V(present) when the canary sticky route sends cookie holders to the canary, V(expiring) when it sends them
          to the primary with C(Max-Age=-1), V(absent) when there is no canary sticky route.
      type: str
    canary_route:
      description: Name of the canary sticky route (C(<name>-canary-sticky)).
      type: str
    canary_route_index:
      description: Index of the canary sticky route in C(spec.http), or null.
      type: int
    primary_route:
      description: Name of the primary sticky route (C(<name>-primary-sticky)).
      type: str
    primary_route_index:
      description: Index of the primary sticky route in C(spec.http), or null.
      type: int
    cookie:
      description: The C(name=value) cookie the canary sticky route matches, or null.
      type: str
    primary_cookie:
      description: The C(name=value) cookie the primary sticky route matches, or null.
      type: str
    set_cookie:
      description: Our C(Set-Cookie) values on the selected route's destinations.
      type: dict
      contains:
        canary:
          description: The value on the canary destination, or null.
          type: str
        primary:
          description: The value on the primary destination (the primary cookie), or null.
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
  sample: ["weight of backend-service-primary: 100 -> 90", "weight of backend-service-canary: 0 -> 10"]
resource_version:
  description: C(metadata.resourceVersion) of the object as last read (after the write, when one was made).
  returned: success
  type: str
  sample: "48213"
api_version:
  description: The API version the VirtualService was read and written with.
  returned: success
  type: str
  sample: networking.istio.io/v1
attempts:
  description: Number of write attempts (1 when no conflict happened).
  returned: success
  type: int
  sample: 1
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.progressive.delivery.plugins.module_utils.errors import DeliveryError
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_api import ISTIO_API_VERSIONS
from ansible_collections.progressive.delivery.plugins.module_utils.routing.istio_routes import request_from_params
from ansible_collections.progressive.delivery.plugins.module_utils.kube.client import client_from_module, ensure_kubernetes
from ansible_collections.progressive.delivery.plugins.module_utils.kube.options import K8S_AUTH_ARG_SPEC
from ansible_collections.progressive.delivery.plugins.module_utils.routing.virtual_service import (
    VirtualServiceRouter,
    module_result,
)

DESTINATION_OPTIONS = dict(host=dict(type="str"), subset=dict(type="str"), port=dict(type="int"))


def argument_spec() -> dict:
    return dict(
        K8S_AUTH_ARG_SPEC,
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        route=dict(type="str"),
        primary=dict(type="dict", options=DESTINATION_OPTIONS),
        canary=dict(type="dict", options=DESTINATION_OPTIONS),
        weight=dict(type="int"),
        weights=dict(type="list", elements="dict", options=dict(
            host=dict(type="str", required=True), subset=dict(type="str"), port=dict(type="int"),
            weight=dict(type="int", required=True))),
        mirror=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True), percentage=dict(type="float", default=100.0),
            host=dict(type="str"), subset=dict(type="str"), port=dict(type="int"))),
        match=dict(type="dict", options=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            headers=dict(type="list", elements="dict"), cookie=dict(type="list", elements="raw"))),
        session_affinity=dict(type="dict", options=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            cookie=dict(type="str"), max_age=dict(type="int", default=86400),
            primary_cookie=dict(type="str"), primary_max_age=dict(type="int"),
            expire=dict(type="bool", default=True))),
        max_retries=dict(type="int", default=5),
        api_version=dict(type="str", choices=list(ISTIO_API_VERSIONS)),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("weight", "weights")])
    ensure_kubernetes(module)
    name, namespace = module.params["name"], module.params["namespace"]
    try:
        request = request_from_params(module.params)
    except DeliveryError as error:
        module.fail_json(msg="VirtualService %s/%s: %s" % (namespace, name, error.message))
    if module.params["max_retries"] < 0:
        module.fail_json(msg="max_retries must be 0 or more, got %d" % module.params["max_retries"])
    router = VirtualServiceRouter(client_from_module(module), name, namespace, api_version=module.params["api_version"])
    try:
        result = router.apply(request, check_mode=module.check_mode, max_retries=module.params["max_retries"])
    except DeliveryError as error:
        module.fail_json(msg=error.message, api_version=router.api_version, **error.result)
    module.exit_json(**module_result(result, name, namespace, diff=module._diff))


if __name__ == "__main__":
    main()
