#!/bin/sh
# Runs once, after init-db.sql, when the data directory is created: the
# services log in as lurus with the password from the lurus-secrets Secret.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
	-v pw="$LURUS_DB_PASSWORD" \
	-c "ALTER ROLE lurus WITH LOGIN PASSWORD :'pw'"
