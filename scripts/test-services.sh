#!/usr/bin/env bash
# Find or start what the tests need, then print `export` lines for them.
#   PostgreSQL: $DATABASE_URL if set; else the local server on 127.0.0.1:5432 (started with the
#               machine's command if it is installed but stopped); else a throwaway cluster from the
#               installed binaries; else install postgresql (as root) or say which package to install.
#   Redis:      $REDIS_URL if set; else 127.0.0.1:6379 (started if stopped); else install redis-server.
#   Chromium:   /usr/bin/chromium and CJK fonts for the browser tests (installed as root if missing).
#   soffice:    LibreOffice Writer and poppler-utils for the report layout test (installed as root).
#   promtool:   from Debian's prometheus package, for the alert-rule checks (installed as root).
set -euo pipefail
log() { echo "[test-services] $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  if ! is_root; then
    log "missing: $*. Install them with: sudo apt-get install -y $*"; exit 1
  fi
  log "installing $* with apt-get"
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/tmp/gaogang-apt.log 2>&1 || true; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/tmp/gaogang-apt.log 2>&1 || { tail -20 /tmp/gaogang-apt.log >&2; exit 1; }
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- PostgreSQL
if [ -n "${DATABASE_URL:-}" ] && [[ "$DATABASE_URL" == postgres* ]]; then
  pg_url="$DATABASE_URL"
else
  if ! port_open 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1 \
       && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      apt_install postgresql
    fi
    if ls /etc/postgresql/*/main >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
      log "starting the machine's PostgreSQL cluster"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start >&2 || true
    fi
    for _ in $(seq 1 30); do port_open 5432 && break; sleep 0.5; done
  fi
  if port_open 5432; then
    pg_url="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_test"
  else
    # Throwaway cluster from the installed binaries on port 55432.
    bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)")
    dir="${TMPDIR:-/tmp}/gaogang-pg"
    if ! port_open 55432; then
      log "starting a throwaway PostgreSQL in $dir"
      rm -rf "$dir"; mkdir -p "$dir"
      runas=()
      if is_root; then chown -R postgres: "$dir" 2>/dev/null && runas=(runuser -u postgres --); fi
      "${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
      "${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -o "-p 55432 -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >&2
    fi
    pg_url="postgresql+psycopg://postgres@127.0.0.1:55432/gaogang_test"
  fi
fi

# ---- Redis
if [ -n "${REDIS_URL:-}" ]; then
  redis_url="$REDIS_URL"
else
  if ! port_open 6379; then
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    log "starting redis-server on 127.0.0.1:6379"
    mkdir -p /tmp/gaogang-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/gaogang-redis --logfile /tmp/gaogang-redis/redis.log >&2
    for _ in $(seq 1 30); do port_open 6379 && break; sleep 0.2; done
  fi
  redis_url="redis://127.0.0.1:6379/0"
fi

# ---- Browser for tests/browser
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null; then
  apt_install chromium fonts-noto-cjk
fi

# ---- LibreOffice (DOCX -> PDF) and poppler (pdfinfo, pdftoppm) for the annual report's layout test;
# the serif CJK face of the report is in fonts-noto-cjk. Without recommends this takes well under a minute.
if ! command -v soffice >/dev/null 2>&1 || ! command -v pdfinfo >/dev/null 2>&1 \
   || ! fc-list 2>/dev/null | grep -i "Noto Serif CJK SC" >/dev/null; then
  apt_install --no-install-recommends libreoffice-writer-nogui poppler-utils fonts-noto-cjk
fi

# ---- promtool for the alert-rule checks (deploy/prometheus); Debian ships it with prometheus
if ! command -v promtool >/dev/null 2>&1; then
  apt_install --no-install-recommends prometheus
fi

echo "export TEST_DATABASE_URL='$pg_url'"
echo "export TEST_REDIS_URL='$redis_url'"
