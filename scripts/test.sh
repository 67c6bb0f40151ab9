#!/bin/sh
# Every test, browser tests included: on the embedded default (SQLite, no Redis), then again
# on PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
scripts/venv.sh requirements-dev.txt

database_url=${DATABASE_URL:-}
redis_url=${REDIS_URL:-}
status=0

echo "== Tests on the embedded default (SQLite, one process, no Redis)"
env -u DATABASE_URL -u REDIS_URL .venv/bin/python -m pytest "$@" || status=$?

if [ -n "$database_url" ] && [ -n "$redis_url" ]; then
  echo "== Tests on PostgreSQL + Redis"
  DATABASE_URL=$database_url REDIS_URL=$redis_url .venv/bin/python -m pytest "$@" || status=$?
else
  echo "== Skipped the PostgreSQL + Redis pass: set DATABASE_URL and REDIS_URL to run it."
fi
exit $status
