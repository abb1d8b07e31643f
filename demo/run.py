"""`make run`: migrate, load the Gaogang demo once, then run the web app, the reference city
registry and a Celery worker (with beat) on the embedded defaults until interrupted.

The three run under demo.supervise.Supervisor: when one dies it is named with its exit code, the
others keep running, and it is restarted with a backoff (1 s doubling to 30 s; given up after 5
failures in a row within 10 s of starting)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

from core.config import PROJECT_ROOT, Settings
from demo.supervise import Supervisor

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=PROJECT_ROOT, env=env, check=True)  # noqa: S603


def _demo_registry_key(instance_dir: Path) -> str:
    """The demo's own shared key for its local registry, generated once (never a published one)."""
    path = instance_dir / "city_registry_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def main() -> int:
    settings = Settings.from_env()
    port = os.environ.get("PORT", "5000")
    registry_port = os.environ.get("CITY_REGISTRY_PORT", "5001")
    env = dict(os.environ)
    env.setdefault("CITY_REGISTRY_URL", f"http://127.0.0.1:{registry_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # The platform refuses to start without CITY_REGISTRY_KEY; the demo runs its own registry.
    env.setdefault("CITY_REGISTRY_KEY", _demo_registry_key(settings.instance_dir))
    # The demo app adds `flask demo ...`; the platform's own app (wsgi:app) has no demo command.
    env["FLASK_APP"] = "demo.app:create_app"
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    print("==> migrating the database", settings.database_url.split("@")[-1], flush=True)
    _run([str(BIN / "alembic"), "upgrade", "heads"], env)
    print("==> loading the Gaogang demo (reused if already loaded)", flush=True)
    _run([str(BIN / "flask"), "demo", "load"], env)

    commands = [
        ("city registry", [str(BIN / "python"), "-m", "city_registry", "serve", "--port", registry_port]),
        (
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "celery_app",
                "worker",
                "-B",
                "-Q",
                "default,sync",
                "-c",
                "1",
                "--loglevel",
                "INFO",
                "-s",
                str(settings.instance_dir / "celerybeat-schedule"),
            ],
        ),
        (
            "web",
            [
                str(BIN / "gunicorn"),
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                *_gunicorn_extra(settings.instance_dir),
                "wsgi:app",
            ],
        ),
    ]
    if not (PROJECT_ROOT / "city_registry" / "__main__.py").exists():
        commands = commands[1:]
    supervisor = Supervisor(commands, cwd=PROJECT_ROOT, env=env)
    # Started from a non-interactive shell, SIGINT may arrive ignored; Ctrl+C must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    supervisor.start()

    try:
        _wait_until_up(f"http://127.0.0.1:{port}/healthz", supervisor)
    except KeyboardInterrupt:
        supervisor.stop()
        return 0
    creds_path = settings.instance_dir / "demo_credentials.json"
    print("\n高港区政务服务平台 is running:")
    print(f"  portal      http://127.0.0.1:{port}/")
    print(f"  staff login http://127.0.0.1:{port}/login")
    print(f"  staff pages http://127.0.0.1:{port}/staff/entries/  (admin: /admin/)")
    print(f"  API docs    http://127.0.0.1:{port}/api/docs")
    if creds_path.exists():
        creds = json.loads(creds_path.read_text())
        print(f"  demo logins (also in {creds_path}):")
        for user in creds.get("users", []):
            print(f"    {user['role']:<18} {user['username']:<16} {user['password']}")
        print("  one API token per login is in that file (Authorization: Bearer <token>)")
    print("Press Ctrl+C to stop.\n", flush=True)

    return supervisor.run()


def _gunicorn_extra(instance_dir: Path) -> list[str]:
    """gunicorn 24+ opens a control socket in ~/.gunicorn; keep it per instance so demos don't collide."""
    try:
        major = int(metadata.version("gunicorn").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return []
    return ["--control-socket", str(instance_dir / "gunicorn.ctl")] if major >= 24 else []


def _wait_until_up(url: str, supervisor: Supervisor, timeout: float = 30.0) -> None:
    """Wait for the web app's health check, supervising meanwhile (a crash at start is restarted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not supervisor.all_gave_up:
        supervisor.poll()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own local URL)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    print(f"warning: {url} did not answer within {timeout:.0f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
