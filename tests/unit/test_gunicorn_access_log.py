"""gunicorn's access line keeps no query string nor Referer (they can carry names and ID numbers)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger

from webapp import gunicorn_conf


def test_the_access_line_has_the_path_without_its_query_and_no_referer() -> None:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", gunicorn_conf.access_log_format)
    logger = Logger(cfg)
    request = SimpleNamespace(
        method="GET", path="/search", query="q=%E5%8D%A2%E8%8A%B3", uri="/search?q=%E5%8D%A2%E8%8A%B3",
        version=(1, 1), headers=[],
    )
    response = SimpleNamespace(status="200 OK", sent=10, response_length=10, headers=[])
    environ = {
        "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": request.uri, "PATH_INFO": "/search",
        "QUERY_STRING": request.query, "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": "http://x/licences/lookup?holder_code=321202197805150155",
    }
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
    line = gunicorn_conf.access_log_format % atoms
    assert "GET /search HTTP/1.1" in line
    assert "%E5" not in line
    assert "321202" not in line
