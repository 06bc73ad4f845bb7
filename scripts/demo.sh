#!/usr/bin/env bash
# README's first command: set everything up on a fresh machine, then stream the sample recording
# through a real local Kafka + Redis + worker and print the live transcript.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/stream-app demo "$@"
