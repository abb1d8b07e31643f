"""``python -m city_registry serve --port 5001``: run the reference city registry.

``python -m city_registry verify-sums``: the periodic full check of the day sums the digest tree reads
(run it weekly from cron or a systemd timer beside the district's ``reconcile --verify``); exit 1 when a
day had drifted (it is repaired, and listed so the operator can find out why).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from city_registry.server import serve
from city_registry.store import RegistryStore
from core.config import Settings


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m city_registry", description="参考市级证照库")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="启动证照库的 HTTP 接口")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=5001)
    run.add_argument("--database-url",
                     help="数据库地址；默认取 CITY_REGISTRY_DATABASE_URL，否则 instance/city_registry.db")
    run.add_argument("--key", help="与区级平台共用的 HMAC 密钥；默认取 CITY_REGISTRY_KEY")
    run.add_argument("--enable-faults", action="store_true", help="开放 /_faults 与 /_reset（仅供测试）")
    run.add_argument("--workers", type=int, default=1,
                     help="进程数；大于 1 时以 gunicorn 运行（此时请使用 PostgreSQL）")
    check = sub.add_parser("verify-sums", help="按记录重新核算每日汇总，修复并列出不一致的日期")
    check.add_argument("--database-url",
                       help="数据库地址；默认取 CITY_REGISTRY_DATABASE_URL，否则 instance/city_registry.db")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s city_registry %(levelname)s %(message)s")
    url = args.database_url or settings.city_registry_database_url
    if args.command == "verify-sums":
        return _verify_sums(url)
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


def _verify_sums(url: str) -> int:
    """One aggregate over every record (minutes at 30M): a check for a quiet hour, not for each request."""
    store = RegistryStore(url)
    try:
        drift = store.verify_sums()
    finally:
        store.engine.dispose()
    for day in drift:
        print(f"已修复 {day['issuer_code']} {day['day']}：汇总记为 {day['kept'][0]} 条，"
              f"实有 {day['actual'][0]} 条")
    print(f"每日汇总核对完毕：{len(drift)} 天不一致，已修复" if drift else "每日汇总核对完毕：无不一致")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
