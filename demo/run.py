"""`make run`: migrate, then run the processes until interrupted.

Two layouts. With the embedded defaults (no DATABASE_URL/REDIS_URL) it loads the Gaogang demo once
and runs the web app, the reference city registry and one Celery worker with beat (`-B`). With both
DATABASE_URL and REDIS_URL set it starts the production layout written in the Procfile: gunicorn,
``--workers`` Celery workers without ``-B``, exactly one beat, the reference registry; no demo data
is loaded (docs/deployment.md). A PostgreSQL database that does not exist is created when the role
may; otherwise one line says what to run, and nothing else starts.

The three run under demo.supervise.Supervisor: when one dies it is named with its exit code, the
others keep running, and it is restarted with a backoff (1 s doubling to 30 s; given up after 5
failures in a row within 10 s of starting)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa

from core.config import PROJECT_ROOT, Settings, instance_secret
from core.db import make_engine
from demo.supervise import Supervisor

BIN = Path(sys.executable).parent


def _run(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=PROJECT_ROOT, env=env, check=True)  # noqa: S603


def _demo_registry_key(instance_dir: Path) -> str:
    """The demo's own shared key for its local registry, generated once (never a published one)."""
    return instance_secret(instance_dir, "city_registry_key", 32)


def ensure_database(url: str) -> str | None:
    """Make sure the PostgreSQL database named by ``url`` exists: create it when the role may.

    Returns None when the database is there (or was just created), else one line for the operator
    saying what to run; the caller stops there instead of letting alembic fail with a traceback.
    The check goes through a maintenance database (postgres, else template1) because a failed
    connection to a missing database carries no SQLSTATE to tell it from other failures."""
    target = sa.engine.make_url(url)
    host, port = target.host or "localhost", target.port or 5432
    name, role = target.database or "", target.username or "(current user)"
    for maintenance in ("postgres", "template1"):
        admin = make_engine(target.set(database=maintenance).render_as_string(hide_password=False),
                            isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
                if found.first():
                    return None
                try:
                    conn.exec_driver_sql(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(name)}")
                except sa.exc.ProgrammingError:  # insufficient_privilege: the role lacks CREATEDB
                    return (f"database {name!r} does not exist on {host}:{port} and role {role!r} may not "
                            f"create it: run `createdb -h {host} -p {port} -U <a role with CREATEDB> "
                            f"-O {role} {name}`, then make run again")
            print(f"==> created database {name} on {host}:{port} (owner {role})", flush=True)
            return None
        except sa.exc.OperationalError:  # this maintenance database is out of reach: try the next
            continue
        finally:
            admin.dispose()
    # No maintenance database for this role: the target itself decides.
    engine = make_engine(url)
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        return f"cannot connect to PostgreSQL at {host}:{port} as {role!r}: {first}"
    finally:
        engine.dispose()


def procfile_programs(path: Path, workers: int) -> list[tuple[str, list[str]]]:
    """The Procfile's processes as (name, argv): each runs through /bin/sh (so ${VAR:-default}
    expands as with honcho or foreman) and `exec`s, so the supervisor's SIGTERM reaches the real
    process. The ``worker`` line is started ``workers`` times (worker.1, worker.2, ...), each with
    its own PROCESS_INDEX so Celery node names stay unique; every other line exactly once."""
    programs: list[tuple[str, list[str]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not name or not command:
            raise SystemExit(f"{path}: cannot read the line {raw!r} (expected `name: command`)")
        copies = workers if name == "worker" else 1
        for index in range(1, copies + 1):
            label = f"{name}.{index}" if name == "worker" else name
            script = f"PROCESS_INDEX={index}; export PROCESS_INDEX; exec {command}"
            programs.append((label, ["/bin/sh", "-c", script]))
    return programs


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1,
                        help="Celery worker processes in the production layout (default 1)")
    parser.add_argument("--procfile", type=Path, default=PROJECT_ROOT / "Procfile")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be between 1 and 64")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    settings = Settings.from_env()
    # Both services named: the production layout on real services; otherwise the embedded demo.
    production = bool(settings.redis_url) and not settings.is_sqlite
    port = os.environ.get("PORT", "5000")
    registry_port = os.environ.get("CITY_REGISTRY_PORT", "5001")
    env = dict(os.environ)
    env.setdefault("CITY_REGISTRY_URL", f"http://127.0.0.1:{registry_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    if not production:
        # The platform refuses to start without CITY_REGISTRY_KEY; the demo runs its own registry.
        env.setdefault("CITY_REGISTRY_KEY", _demo_registry_key(settings.instance_dir))
    elif not settings.city_registry_key:
        print("CITY_REGISTRY_KEY is not set: the production layout needs the key agreed with the city "
              "registry (export CITY_REGISTRY_KEY=...)", flush=True)
        return 2
    settings.instance_dir.mkdir(parents=True, exist_ok=True)

    if not settings.is_sqlite:
        problem = ensure_database(settings.database_url)
        if problem:
            print(problem, flush=True)
            return 2
    print("==> migrating the database", settings.database_url.split("@")[-1], flush=True)
    if production:
        env["FLASK_APP"] = "wsgi:app"
        _run([str(BIN / "alembic"), "upgrade", "heads"], env)
        return _supervise(_production_env(env, settings, port, registry_port),
                          procfile_programs(args.procfile, args.workers), port, settings, demo=False)

    # The demo app adds `flask demo ...`; the platform's own app (wsgi:app) has no demo command.
    env["FLASK_APP"] = "demo.app:create_app"
    _run([str(BIN / "alembic"), "upgrade", "heads"], env)
    print("==> loading the Gaogang demo (reused if already loaded)", flush=True)
    _run([str(BIN / "flask"), "demo", "load"], env)

    commands = [
        ("city registry", [str(BIN / "python"), "-m", "city_registry", "serve", "--port", registry_port]),
        (
            "worker",
            [
                str(BIN / "celery"), "-A", "celery_app", "worker", "-B", "-Q", "default,sync", "-c", "1",
                "--loglevel", "INFO", "-s", str(settings.instance_dir / "celerybeat-schedule"),
            ],
        ),
        (
            "web",
            [
                str(BIN / "gunicorn"), "-c", "python:webapp.gunicorn_conf", "-w", "2", "--threads", "4",
                "-b", f"127.0.0.1:{port}",
                "--access-logfile", "-", *_gunicorn_extra(settings.instance_dir), "wsgi:app",
            ],
        ),
    ]
    return _supervise(env, commands, port, settings, demo=True)


def _production_env(env: dict[str, str], settings: Settings, port: str, registry_port: str) -> dict[str, str]:
    out = dict(env)
    # The Procfile names bare commands: ours, from this interpreter's environment.
    out["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    out.update(PORT=port, CITY_REGISTRY_PORT=registry_port, INSTANCE_DIR=str(settings.instance_dir))
    extra = _gunicorn_extra(settings.instance_dir)
    if extra:  # gunicorn reads extra command-line settings from GUNICORN_CMD_ARGS
        out["GUNICORN_CMD_ARGS"] = " ".join([env.get("GUNICORN_CMD_ARGS", ""), shlex.join(extra)]).strip()
    return out


def _supervise(env: dict[str, str], commands: list[tuple[str, list[str]]], port: str, settings: Settings,
               *, demo: bool) -> int:
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
    if not demo:
        print(f"\n高港区政务服务平台 is running (production layout: {', '.join(n for n, _ in commands)}):")
        print(f"  web         http://127.0.0.1:{port}/   health: /healthz")
        print("Press Ctrl+C to stop.\n", flush=True)
        return supervisor.run()
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
