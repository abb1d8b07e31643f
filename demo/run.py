"""`make run`: migrate, load the Gaogang demo once, then run the web app, the reference city
registry and a Celery worker (with beat) on the embedded defaults until interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import PROJECT_ROOT, Settings

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=PROJECT_ROOT, env=env, check=True)  # noqa: S603


def main() -> int:
    settings = Settings.from_env()
    port = os.environ.get("PORT", "5000")
    registry_port = os.environ.get("CITY_REGISTRY_PORT", "5001")
    env = dict(os.environ)
    env.setdefault("CITY_REGISTRY_URL", f"http://127.0.0.1:{registry_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    env["FLASK_APP"] = "wsgi:app"
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    print("==> migrating the database", settings.database_url.split("@")[-1], flush=True)
    _run([str(BIN / "alembic"), "upgrade", "heads"], env)
    print("==> loading the Gaogang demo (reused if already loaded)", flush=True)
    _run([str(BIN / "flask"), "demo", "load"], env)

    procs: list[subprocess.Popen[bytes]] = []
    commands = [
        ("city registry", [str(BIN / "python"), "-m", "city_registry", "serve", "--port", registry_port]),
        ("worker", [str(BIN / "celery"), "-A", "celery_app", "worker", "-B", "-Q", "default,sync",
                    "-c", "1", "--loglevel", "INFO",
                    "-s", str(settings.instance_dir / "celerybeat-schedule")]),
        ("web", [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "-",
                 "wsgi:app"]),
    ]
    if not (PROJECT_ROOT / "city_registry" / "__main__.py").exists():
        commands = commands[1:]
    for name, cmd in commands:
        print(f"==> starting {name}", flush=True)
        procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env))  # noqa: S603

    creds_path = settings.instance_dir / "demo_credentials.json"
    print("\n高港区政务服务平台 is running:")
    print(f"  portal      http://127.0.0.1:{port}/")
    print(f"  staff login http://127.0.0.1:{port}/login")
    print(f"  API docs    http://127.0.0.1:{port}/api/docs")
    if creds_path.exists():
        creds = json.loads(creds_path.read_text())
        print(f"  demo logins (also in {creds_path}):")
        for user in creds.get("users", []):
            print(f"    {user['role']:<18} {user['username']:<16} {user['password']}")
    print("Press Ctrl+C to stop.\n", flush=True)

    def _stop(*_args: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        _stop()
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
