#!/usr/bin/env bash
# Builds the web dashboard: installs the locked npm packages (npm ci) and
# writes web/dist with vite. web/dist is committed, so that `go build` and
# `go run ./cmd/ostask serve --sim` need no node; CI runs this script and
# fails if web/dist differs from what it builds.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null 2>&1; then
  echo "build-web.sh: npm is not installed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build -- --logLevel warn
