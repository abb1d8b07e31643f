"""``python -m city_registry serve --port 5001``: run the reference city registry."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from city_registry.server import serve
from core.config import Settings


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m city_registry", description="参考市级证照库")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve the registry's HTTP API")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=5001)
    run.add_argument("--database-url",
                     help="default: CITY_REGISTRY_DATABASE_URL or instance/city_registry.db")
    run.add_argument("--key", help="shared HMAC key; default: CITY_REGISTRY_KEY")
    run.add_argument("--enable-faults", action="store_true", help="expose /_faults and /_reset (tests only)")
    run.add_argument("--workers", type=int, default=1,
                     help="processes; more than 1 runs the WSGI app under gunicorn (use PostgreSQL then)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s city_registry %(levelname)s %(message)s")
    url = args.database_url or settings.city_registry_database_url
    key = args.key or settings.require_city_registry_key()
    if args.workers > 1:
        # Several processes share nothing but the database: the WSGI front under gunicorn. exec, so the
        # process manager's signals reach gunicorn's master directly.
        os.environ.update({"CITY_REGISTRY_DATABASE_URL": url, "CITY_REGISTRY_KEY": key,
                           "CITY_REGISTRY_FAULTS": "1" if args.enable_faults else "0"})
        print(f"city registry: gunicorn with {args.workers} processes on http://{args.host}:{args.port}",
              flush=True)
        command = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "--threads", "4",
                   "-b", f"{args.host}:{args.port}", "--log-level", "warning",
                   "city_registry.wsgi:create_app()"]
        os.execv(sys.executable, command)  # noqa: S606 - fixed argv, no shell
    # SIGTERM ends serve_forever cleanly (the demo runner stops us with it).
    signal.signal(signal.SIGTERM, _interrupt)
    serve(args.host, args.port, url, key, args.enable_faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
