"""``python -m city_registry serve --port 5001``: run the reference city registry."""

from __future__ import annotations

import argparse
import logging
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
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s city_registry %(levelname)s %(message)s")
    # SIGTERM ends serve_forever cleanly (the demo runner stops us with it).
    signal.signal(signal.SIGTERM, _interrupt)
    serve(args.host, args.port, args.database_url or settings.city_registry_database_url,
          args.key or settings.require_city_registry_key(), args.enable_faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
