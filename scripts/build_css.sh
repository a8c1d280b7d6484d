#!/usr/bin/env bash
# Build the Tailwind CSS bundle: static/src/app.css -> static/css/app.css (minified).
# Usage: scripts/build_css.sh [extra tailwindcss args, e.g. --watch]
# Works from any cwd.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

TAILWIND="frontend/node_modules/.bin/tailwindcss"
INPUT="static/src/app.css"
OUTPUT="static/css/app.css"

if [[ ! -x "$TAILWIND" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "build_css: npm not found and $TAILWIND is missing" >&2
    exit 1
  fi
  echo "build_css: frontend/node_modules missing, running npm ci --prefix frontend" >&2
  npm ci --prefix frontend --no-audit --no-fund
fi

# app.css does `@import "tailwindcss"`; node_modules lives in frontend/, not next
# to the CSS file, so point Tailwind's resolver at it.
export NODE_PATH="$REPO_ROOT/frontend/node_modules${NODE_PATH:+:$NODE_PATH}"

mkdir -p "$(dirname "$OUTPUT")"
"$TAILWIND" --input "$INPUT" --output "$OUTPUT" --minify "$@"

if [[ -f "$OUTPUT" ]]; then
  echo "build_css: wrote $OUTPUT ($(wc -c <"$OUTPUT" | tr -d ' ') bytes)" >&2
fi
