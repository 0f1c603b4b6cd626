"""The HTTPS front of the emulated API server: TLS, tokens, fault injection and the lab's admin endpoint."""
from __future__ import annotations

import json
import pathlib
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.faults import FaultInjector, faults_endpoint
from lab.http_methods import EveryMethod
from lab.kube import kubeconfig, status as st, tls
from lab.kube.api import KubeAPI, Request, Response
from lab.kube.auth import ADMIN_USER, TokenAuthenticator
from lab.kube.resources import ISTIO_VERSIONS, ServedVersions
from lab.kube.routing import ResourceRoute, UnknownPath, route
from lab.seed import seed_system
from lab.store import Store

PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
FAULTS_PATH = "/lab/v1/faults"
ISTIO_VERSIONS_PATH = "/lab/v1/istio-versions"


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, context: ssl.SSLContext, owner: "KubeAPIServer") -> None:
        self.tls_context = context
        self.owner = owner
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, tuple]:
        connection, address = self.socket.accept()
        # The handshake happens in the handler thread, so one slow client cannot stall accept().
        wrapped = self.tls_context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: object, client_address: object) -> None:
        # Connection-level failures are expected (clients going away); request errors become Status objects.
        pass


class _Handler(EveryMethod, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _TLSServer
    server_version = "lab-kube-apiserver"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # pylint: disable=redefined-builtin
        pass

    def handle(self) -> None:
        try:
            self.connection.do_handshake()  # type: ignore[attr-defined]
            super().handle()
        except (OSError, ssl.SSLError):
            # Clients that drop the connection or fail the handshake are not the server's problem.
            self.close_connection = True

    # ------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, body: dict | str) -> None:
        if isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(body, separators=(",", ":")).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, response: Response) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(event: dict) -> bool:
            # An empty event is a liveness probe of the connection, written as an empty line.
            line = (json.dumps(event, separators=(",", ":")) + "\n").encode() if event else b"\n"
            try:
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
                return True
            except (OSError, ssl.SSLError):
                return False

        assert response.stream is not None
        response.stream(send)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        self.close_connection = True

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        body = self._read_body()
        path = self.path.split("?", 1)[0]
        if not path.startswith("/lab/"):
            decision = owner.faults.decide(method, path)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.status is not None:
                self._send_json(decision.status, _fault_status(decision.status, path, owner.served))
                return
        user = owner.authenticator.authenticate(self.headers.get("Authorization"))
        if user is None and path not in PUBLIC_PATHS:
            self._send_json(401, st.unauthorized().body())
            return
        if path.startswith("/lab/"):
            self._serve_lab(method, path, body, user.name if user else "")
            return
        request = Request.build(method, self.path, self.headers.get("Content-Type") or "", body, user)
        response = owner.api.handle(request)
        if response.stream is not None:
            self._send_stream(response)
        else:
            self._send_json(response.code, response.body)

    def _serve_lab(self, method: str, path: str, body: bytes, user: str) -> None:
        endpoints = {FAULTS_PATH: self._serve_faults, ISTIO_VERSIONS_PATH: self._serve_istio_versions}
        endpoint = endpoints.get(path.rstrip("/"))
        if endpoint is None:
            self._send_json(404, st.unknown_path().body())
            return
        if user != ADMIN_USER:
            self._send_json(403, st.status_body(403, "Forbidden", f'User "{user}" cannot manage the lab'))
            return
        endpoint(method, body)

    def _serve_faults(self, method: str, body: bytes) -> None:
        self._send_json(*faults_endpoint(self.server.owner.faults, method, body))

    def _serve_istio_versions(self, method: str, body: bytes) -> None:
        owner = self.server.owner
        if method == "GET":
            self._send_json(200, {"versions": list(owner.istio_versions)})
        elif method == "PUT":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict) or "versions" not in spec:
                    raise ValueError('the body must be {"versions": [...]}')
                versions = owner.set_istio_versions(spec["versions"])
            except ValueError as error:
                self._send_json(400, st.status_body(400, "BadRequest", f"invalid Istio versions: {error}"))
                return
            self._send_json(200, {"versions": list(versions)})
        else:
            self._send_json(405, st.status_body(405, "MethodNotAllowed",
                                                f"{method} is not allowed on {ISTIO_VERSIONS_PATH}"))


def _fault_status(code: int, path: str, served: ServedVersions) -> dict:
    return st.injected_fault(code, _details_from_path(path, served) or None)


def _details_from_path(path: str, served: ServedVersions) -> dict:
    try:
        target = route(path, served)
    except UnknownPath:
        return {}
    if isinstance(target, ResourceRoute):
        details = {"kind": target.rtype.plural}
        if target.rtype.group:
            details["group"] = target.rtype.group
        if target.name:
            details["name"] = target.name
        return details
    return {}


class KubeAPIServer:
    def __init__(self, store: Store, state_dir: pathlib.Path, host: str = "127.0.0.1", port: int = 0,
                 faults: FaultInjector | None = None, token: str | None = None,
                 readonly_token: str | None = None, istio_versions: tuple[str, ...] = ISTIO_VERSIONS) -> None:
        self.store = store
        self.state_dir = pathlib.Path(state_dir)
        self.host = host
        self.port = port
        self.faults = faults or FaultInjector()
        self.authenticator = TokenAuthenticator(token, readonly_token)
        # Narrowing Istio's versions to ("v1beta1",) makes the lab look like an Istio older than 1.22.
        self.served = ServedVersions(istio_versions)
        self.api = KubeAPI(store, served=self.served)
        self.ca_cert_path = self.state_dir / "pki" / "ca.crt"
        self.kubeconfig_path = self.state_dir / "kubeconfig"
        self.readonly_kubeconfig_path = self.state_dir / "kubeconfig-readonly"
        self.url = ""
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str:
        return self.authenticator.admin_token

    @property
    def readonly_token(self) -> str:
        return self.authenticator.readonly_token

    @property
    def istio_versions(self) -> tuple[str, ...]:
        return self.served.istio

    def set_istio_versions(self, versions: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Serve networking.istio.io at these versions (preferred first) from now on; raises ValueError."""
        return self.served.set_istio(versions)

    def start(self) -> None:
        seed_system(self.store)
        ca_path, cert_path, key_path = tls.generate(self.state_dir / "pki", (self.host, "localhost"))
        self.ca_cert_path = ca_path
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        self._server = _TLSServer((self.host, self.port), _Handler, context, self)
        self.port = self._server.server_address[1]
        self.url = f"https://{self.host}:{self.port}"
        self.api.server_address = f"{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="lab-kube-apiserver", daemon=True)
        self._thread.start()
        kubeconfig.write(self.kubeconfig_path, self.url, ca_path, self.token, "lab-admin")
        kubeconfig.write(self.readonly_kubeconfig_path, self.url, ca_path, self.readonly_token, "lab-readonly")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
