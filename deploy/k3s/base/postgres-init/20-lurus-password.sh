#!/bin/sh
# Runs once, after 10-init-db.sql, when the data directory is created: the
# services log in as lurus with the password from the lurus-secrets Secret.
#
# psql interpolates :'pw' (as a quoted literal) only in input it reads from
# stdin or -f, never in -c, so the statement comes on stdin. The heredoc is
# quoted: the shell leaves it alone and the password never passes through a
# shell or SQL string of ours. deploy/postgres_init_test.go runs this file
# against a real server.
set -eu
if [ -z "${LURUS_DB_PASSWORD:-}" ]; then
	echo "20-lurus-password.sh: LURUS_DB_PASSWORD is empty; the lurus role would keep its default password" >&2
	exit 1
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname postgres \
	-v pw="$LURUS_DB_PASSWORD" <<'SQL'
ALTER ROLE lurus WITH LOGIN PASSWORD :'pw';
SQL
