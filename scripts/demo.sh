#!/bin/sh
# The demo: SQLite, one process, no Redis, sample data, served with working live updates.
set -eu
cd "$(dirname "$0")/.."
scripts/venv.sh requirements.txt
unset DATABASE_URL REDIS_URL
export DEBUG=1
port=${PORT:-8000}
.venv/bin/python manage.py migrate --noinput -v 0
logins=$(.venv/bin/python manage.py create_sample_data)
cat <<MSG

  Course live is running at http://127.0.0.1:$port/
  Log in with one of these (role username password):

$(echo "$logins" | sed 's/^/    /')

  Press Ctrl+C to stop.

MSG
exec .venv/bin/python -m uvicorn lms.asgi:application --host 127.0.0.1 --port "$port" \
  --timeout-graceful-shutdown 3 --log-level warning
