"""The lab's HTTP servers answer every method in one place."""
from __future__ import annotations


class EveryMethod:
    """A BaseHTTPRequestHandler mix-in: GET, POST, PUT, PATCH and DELETE all go to ``self._serve(method)``."""

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")
