# -*- coding: utf-8 -*-
# Copyright: progressive.delivery contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Kubernetes connection options, the same names and environment variables as kubernetes.core.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig content as a dictionary.
      - Falls back to E(K8S_AUTH_KUBECONFIG). When no connection option is given at all, the module uses the pod's
        service account inside a cluster (AWX/AAP container groups) and otherwise C(~/.kube/config).
    type: raw
  context:
    description:
      - The kubeconfig context to use. Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the Kubernetes API server. Falls back to E(K8S_AUTH_HOST).
      - With O(api_key) (or O(username)/O(password), or a client certificate) no kubeconfig is read.
    type: str
  api_key:
    description:
      - Bearer token for the API server. Falls back to E(K8S_AUTH_API_KEY).
    type: str
  username:
    description:
      - Username for basic authentication. Falls back to E(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for basic authentication. Falls back to E(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Falls back to E(K8S_AUTH_VERIFY_SSL).
      - When unset, the kubeconfig's setting applies, and certificates are verified by default.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA bundle that signs the API server's certificate. Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate for mutual TLS. Falls back to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the client certificate's key. Falls back to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - HTTP proxy URL for API requests. Falls back to E(K8S_AUTH_PROXY).
    type: str
  no_proxy:
    description:
      - Comma-separated hosts that bypass O(proxy). Falls back to E(K8S_AUTH_NO_PROXY).
    type: str
  proxy_headers:
    description:
      - Headers sent to the proxy.
    type: dict
    suboptions:
      proxy_basic_auth:
        description:
          - C(user:password) for the proxy.
        type: str
      basic_auth:
        description:
          - C(user:password) basic authentication header.
        type: str
      user_agent:
        description:
          - User agent string.
        type: str
  persist_config:
    description:
      - Whether refreshed kubeconfig tokens are written back to the kubeconfig file. Falls back to E(K8S_AUTH_PERSIST_CONFIG).
    type: bool
  impersonate_user:
    description:
      - User to impersonate. Falls back to E(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to impersonate. Falls back to E(K8S_AUTH_IMPERSONATE_GROUPS) (comma-separated).
    type: list
    elements: str
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - Options can be set once for every module of the collection that talks to Kubernetes with
    C(module_defaults) on C(group/progressive.delivery.kubernetes).
"""
