"""A local server replaying recorded Azure Retail Prices API pages (for `prices refresh`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from queries.cost import retail

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "retail"
PAGES = [json.loads((FIXTURES / f"page-{i}.json").read_text()) for i in (1, 2, 3)]


class RetailServer:
    """Serves page N for `$skip=(N-1)*1000`; can answer 429 with Retry-After first."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.throttle: dict[int, int] = {}  # page index -> how many 429s before the page
        self.retry_after = "3"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._http.server_port}/api/retail/prices"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(query)
                page = int(query.get("$skip", ["0"])[0]) // 1000
                if server.throttle.get(page, 0) > 0:
                    server.throttle[page] -= 1
                    self._send(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": server.retry_after})
                    return
                body = dict(PAGES[page])
                if body["NextPageLink"]:
                    body["NextPageLink"] = body["NextPageLink"].replace(retail.RETAIL_PRICES_URL, server.url)
                self._send(200, body, {})

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> RetailServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
