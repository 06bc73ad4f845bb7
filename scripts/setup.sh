#!/usr/bin/env bash
# Set up a fresh Debian machine for stream-app: system packages, the virtualenv, the Python packages.
# Idempotent: what is already there is kept. Used by scripts/demo.sh and .ci/run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\n==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || missing+=("$1"); }

need_cmd redis-server redis-server
need_cmd espeak-ng espeak-ng
need_cmd sox sox
need_pkg libsox-fmt-all
need_cmd ffmpeg ffmpeg
need_cmd mvn maven
need_cmd taskset util-linux
# promtool (checks and unit-tests deploy/prometheus/alerts.yml in tests/unit/deploy) ships only in the
# server package; the server itself is not wanted (see below).
need_cmd promtool prometheus
need_cmd openssl openssl  # the secure local stack's certificates (stream-app local up --secure, its tests)
# the caption page's browser test (tests/e2e/test_captions_browser.py): Debian's chromium, driven headless
# through chromedriver; no browser is downloaded
need_cmd chromium chromium
need_cmd chromedriver chromium-driver
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    # Under systemd, Debian starts the Prometheus server it just installed (on :9090, where
    # `docker compose up` puts its own); only promtool was wanted. Without systemd nothing started.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now prometheus.service || true
    fi
fi

python3 - <<'PY'
import sys
if not (3, 11) <= sys.version_info[:2] < (3, 13):
    sys.exit(f"stream-app needs Python 3.11 or 3.12, found {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
    log "python3 -m venv .venv"
    python3 -m venv .venv
fi
log "pip install -c constraints.txt -e .[dev,models]"
.venv/bin/pip install -q --upgrade pip
# constraints.txt: the exact versions the tests and the benchmark figures were run on
.venv/bin/pip install -q -c constraints.txt -e ".[dev,models]"
