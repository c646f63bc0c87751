#!/usr/bin/env bash
# Local infrastructure for Lurus Switch: PostgreSQL, Redis, NATS (JetStream)
# and ClickHouse on the loopback addresses named in the environment (dev.env
# gives the defaults).
#
#   scripts/stack.sh up [name...]     reuse what answers, start what does not
#   scripts/stack.sh down [name...]   stop only what this script started
#   scripts/stack.sh status           one line per server
#   scripts/stack.sh install [name...]  install the server and client programs
#                                     (from the distribution's packages) without
#                                     starting anything: the fault suite runs
#                                     its own private servers from them
#   scripts/stack.sh config clickhouse DIR
#                                     write DIR/config.xml for a ClickHouse with
#                                     every path under DIR and the ports of
#                                     LURUS_CLICKHOUSE_ADDR (the fault suite's)
#
# A server that already answers at its address is reused and never touched.
# Otherwise the script installs it from the distribution's packages when it is
# missing and starts it with data, logs and pid under $LURUS_STACK_DIR/<name>/
# (default .data/<name>/), leaving .data/<name>/started-by-stack behind; `down`
# stops exactly the servers that have that marker.
#
# Environment: LURUS_PG_URL, LURUS_REDIS_ADDR, LURUS_NATS_URL,
# LURUS_CLICKHOUSE_ADDR (native protocol), LURUS_CLICKHOUSE_HTTP_PORT
# (default 8123 for native port 9000, else native port - 877, so 19000 gets
# 18123), LURUS_STACK_DIR, LURUS_STACK_WAIT (seconds to wait for a server,
# default 60).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVERS=(postgres redis nats clickhouse)
STACK_DIR="${LURUS_STACK_DIR:-$ROOT/.data}"
[[ "$STACK_DIR" = /* ]] || STACK_DIR="$ROOT/$STACK_DIR"
WAIT="${LURUS_STACK_WAIT:-60}"

# ---------------------------------------------------------------- addresses

# split_hostport ADDR DEFAULT_PORT sets HOST and PORT.
split_hostport() {
	local addr="$1"
	addr="${addr#*://}"
	addr="${addr%%/*}"
	addr="${addr##*@}"
	if [[ "$addr" =~ ^\[(.*)\]:([0-9]+)$ || "$addr" =~ ^([^:]+):([0-9]+)$ ]]; then
		HOST="${BASH_REMATCH[1]}"
		PORT="${BASH_REMATCH[2]}"
	else
		HOST="${addr:-127.0.0.1}"
		PORT="$2"
	fi
}

# addr_of NAME sets HOST and PORT (and PG_USER for postgres) from the env.
addr_of() {
	case "$1" in
	postgres)
		local url="${LURUS_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
		split_hostport "$url" 5432
		PG_USER=postgres
		if [[ "$url" =~ ^[a-z]+://([^:@/]+)(:[^@/]*)?@ ]]; then
			PG_USER="${BASH_REMATCH[1]}"
		fi
		;;
	redis) split_hostport "${LURUS_REDIS_ADDR:-127.0.0.1:6379}" 6379 ;;
	nats) split_hostport "${LURUS_NATS_URL:-nats://127.0.0.1:4222}" 4222 ;;
	clickhouse) split_hostport "${LURUS_CLICKHOUSE_ADDR:-127.0.0.1:9000}" 9000 ;;
	*) die "unknown server: $1 (known: ${SERVERS[*]})" ;;
	esac
}

# clickhouse_http_port prints the HTTP port that belongs to native port $PORT.
clickhouse_http_port() {
	if [[ -n "${LURUS_CLICKHOUSE_HTTP_PORT:-}" ]]; then
		echo "$LURUS_CLICKHOUSE_HTTP_PORT"
	elif [[ "$PORT" == 9000 ]]; then
		echo 8123
	elif ((PORT - 877 > 1024)); then
		echo $((PORT - 877))
	else
		echo $((PORT + 1))
	fi
}

is_loopback() {
	[[ "$1" == localhost || "$1" == ::1 || "$1" =~ ^127\. ]]
}

# bind_host maps a loopback name to an address a server can bind.
bind_host() {
	if [[ "$1" == localhost ]]; then echo 127.0.0.1; else echo "$1"; fi
}

# ------------------------------------------------------------------- probes
# probe_NAME succeeds when the server answers at HOST:PORT.

probe_postgres() {
	command -v pg_isready >/dev/null 2>&1 || return 1
	pg_isready -q -h "$HOST" -p "$PORT" -t 3 </dev/null
}

probe_redis() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		[[ "$line" == +PONG* ]]' _ "$HOST" "$PORT" 2>/dev/null
}

# nats_info prints the INFO line a NATS server sends on connect.
nats_info() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		IFS= read -r -t 2 line <&3 || exit 1
		printf "%s\n" "$line"' _ "$HOST" "$PORT" 2>/dev/null
}

probe_nats() {
	local info
	info="$(nats_info)" || return 1
	[[ "$info" == INFO* ]]
}

nats_jetstream() {
	local info
	info="$(nats_info)" || return 1
	[[ "$info" == *'"jetstream":true'* ]]
}

# ClickHouse answers when the native client gets a result; without the client
# the HTTP interface's /ping is asked instead.
probe_clickhouse() {
	if command -v clickhouse-client >/dev/null 2>&1; then
		timeout 5 clickhouse-client --host "$HOST" --port "$PORT" --connect_timeout 2 \
			--query 'SELECT 1' </dev/null >/dev/null 2>&1
	else
		curl -fsS -m 3 "http://$HOST:$(clickhouse_http_port)/ping" 2>/dev/null | grep -q '^Ok'
	fi
}

# ----------------------------------------------------------- installation
# install_NAME makes sure the client used by probe_NAME and the server exist.

install_postgres() {
	ensure_cmd psql postgresql-client
	ensure_cmd pg_isready postgresql-client
	[[ -n "$(pg_bindir)" ]] || apt_install postgresql
	[[ -n "$(pg_bindir)" ]] || die "PostgreSQL server binaries not found after installing postgresql"
}

install_redis() { ensure_cmd redis-server redis-server; }
install_nats() { ensure_cmd nats-server nats-server; }

install_clickhouse() {
	ensure_cmd clickhouse-server clickhouse-server
	ensure_cmd clickhouse-client clickhouse-client
}

# pg_bindir prints the directory holding initdb and pg_ctl (Debian keeps them
# off PATH, under /usr/lib/postgresql/<version>/bin).
pg_bindir() {
	local dirs
	if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v pg_ctl)")"
		return
	fi
	shopt -s nullglob
	dirs=(/usr/lib/postgresql/*/bin/pg_ctl)
	shopt -u nullglob
	((${#dirs[@]})) || return 0
	printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1 | xargs dirname
}

# ---------------------------------------------------------------- starting
# start_NAME DIR starts the server in DIR and sets PID and LOG.

# PostgreSQL refuses to run as root, so as root it runs as the postgres user.
as_pg_user() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start_postgres() {
	local dir="$1" bindir data host
	bindir="$(pg_bindir)"
	data="$dir/data"
	LOG="$dir/postgres.log"
	host="$(bind_host "$HOST")"
	if [[ "$(id -u)" -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "postgres: no 'postgres' system user to run the server as"
		chown postgres:postgres "$dir"
		runuser -u postgres -- test -w "$dir" ||
			die "postgres: the postgres user cannot write $dir (is a parent directory private?); set LURUS_STACK_DIR to a path it can reach"
	fi
	if [[ ! -s "$data/PG_VERSION" ]]; then
		say "postgres: initdb into ${data#"$ROOT"/} (superuser $PG_USER, trust auth on loopback)"
		(cd "$dir" && as_pg_user "$bindir/initdb" -D "$data" -U "$PG_USER" -A trust -E UTF8 --locale=C) \
			>"$dir/initdb.log" 2>&1 || {
			log_tail "$dir/initdb.log"
			die "postgres: initdb failed"
		}
	fi
	# No Unix socket: clients use TCP, and a socket path under a deep checkout
	# could exceed the 107-byte limit.
	(cd "$dir" && as_pg_user "$bindir/pg_ctl" -D "$data" -l "$LOG" -w -t "$WAIT" \
		-o "-c listen_addresses=$host -p $PORT -c unix_socket_directories=''" start) \
		>"$dir/pg_ctl.log" 2>&1 9>&- || {
		log_tail "$dir/pg_ctl.log" 10
		log_tail "$LOG"
		die "postgres: pg_ctl start failed"
	}
	PID="$(head -n 1 "$data/postmaster.pid")"
}

# spawn LOG CMD... starts CMD in its own session (so it outlives this script
# and ignores the terminal's Ctrl-C) and sets PID.
spawn() {
	local log="$1"
	shift
	setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
	PID=$!
}

start_redis() {
	local dir="$1"
	LOG="$dir/redis.log"
	spawn "$LOG" redis-server --bind "$(bind_host "$HOST")" --port "$PORT" --dir "$dir" \
		--pidfile "$dir/redis.pid" --logfile "$LOG" --daemonize no
}

start_nats() {
	local dir="$1"
	LOG="$dir/nats.log"
	spawn "$LOG" nats-server -a "$(bind_host "$HOST")" -p "$PORT" -js -sd "$dir/jetstream" \
		-P "$dir/nats.pid" -l "$LOG"
}

# clickhouse_config DIR writes DIR/config.xml: Debian's stock config with
# every path moved under DIR, the ports from the environment, one loopback
# listen address and no interserver (replication) port.
clickhouse_config() {
	local dir="$1" stock=/etc/clickhouse-server/config.xml http d
	[[ -f "$stock" ]] || die "clickhouse: $stock not found (package clickhouse-server)"
	http="$(clickhouse_http_port)"
	for d in data tmp user_files format_schemas log; do mkdir -p "$dir/$d"; done
	cp /etc/clickhouse-server/users.xml "$dir/users.xml"
	# sed replacement text: escape \, & and the | delimiter.
	local e="${dir//\\/\\\\}"
	e="${e//&/\\&}"
	e="${e//|/\\|}"
	sed -E \
		-e "s|<tmp_path>[^<]*</tmp_path>|<tmp_path>$e/tmp/</tmp_path>|" \
		-e "s|<user_files_path>[^<]*</user_files_path>|<user_files_path>$e/user_files/</user_files_path>|" \
		-e "s|<format_schema_path>[^<]*</format_schema_path>|<format_schema_path>$e/format_schemas/</format_schema_path>|" \
		-e "s|<path>/var/lib/clickhouse/?</path>|<path>$e/data/</path>|" \
		-e "s|/var/log/clickhouse-server/|$e/log/|g" \
		-e "s|<tcp_port>[0-9]+</tcp_port>|<tcp_port>$PORT</tcp_port>|" \
		-e "s|<http_port>[0-9]+</http_port>|<http_port>$http</http_port>|" \
		-e '/^[[:space:]]*<interserver_http_port>/d' \
		-e '/^[[:space:]]*<listen_host>.*<\/listen_host>[[:space:]]*$/d' \
		-e "s|^([[:space:]]*)(<tcp_port>.*)$|\1\2\n\1<listen_host>$(bind_host "$HOST")</listen_host>|" \
		"$stock" >"$dir/config.xml"
	if grep -qE '/var/(lib|log)/clickhouse' "$dir/config.xml"; then
		die "clickhouse: $dir/config.xml still points at /var/lib or /var/log; the stock config has changed, update clickhouse_config in $0"
	fi
}

# ClickHouse 18.16 runs as root without complaint and starts in well under a
# second on an empty data dir. It writes --pid-file only with --daemon, so it
# runs in the foreground under setsid and the pid file is written here.
start_clickhouse() {
	local dir="$1"
	clickhouse_config "$dir"
	LOG="$dir/log/clickhouse-server.err.log"
	spawn "$dir/stdout.log" clickhouse-server --config-file="$dir/config.xml"
	echo "$PID" >"$dir/clickhouse.pid"
}

# ---------------------------------------------------------------- stopping

stop_postgres() {
	local dir="$1" pid="$2" bindir
	bindir="$(pg_bindir)"
	if [[ -n "$bindir" && -s "$dir/data/postmaster.pid" ]] &&
		(cd "$dir" && as_pg_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop) >>"$dir/pg_ctl.log" 2>&1; then
		return 0
	fi
	stop_pid "$pid" postgres 60
}

stop_default() { stop_pid "$2" "$3" 60; }

# ------------------------------------------------------------------ markers
# A marker holds key=value lines: addr, pid, proc (a word of the server's
# command line, to recognise the pid), started (UTC time).

marker_of() { echo "$STACK_DIR/$1/started-by-stack"; }

marker_get() {
	sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1
}

proc_word() {
	case "$1" in
	postgres) echo postgres ;;
	redis) echo redis-server ;;
	nats) echo nats-server ;;
	clickhouse) echo clickhouse-server ;;
	esac
}

# marker_live NAME succeeds when NAME has a marker whose process still runs.
marker_live() {
	local m
	m="$(marker_of "$1")"
	[[ -f "$m" ]] && pid_runs "$(marker_get "$m" pid)" "$(marker_get "$m" proc)"
}

# --------------------------------------------------------------- commands

# wait_ready NAME waits until probe_NAME succeeds while PID lives.
wait_ready() {
	local name="$1" deadline=$((SECONDS + WAIT))
	while ((SECONDS < deadline)); do
		"probe_$name" && return 0
		if ! pid_alive "$PID"; then
			"probe_$name" && return 0
			log_tail "$LOG"
			die "$name: the server exited during startup (log: $LOG)"
		fi
		sleep 0.5
	done
	log_tail "$LOG"
	die "$name: no answer at $HOST:$PORT after ${WAIT}s (pid $PID, log: $LOG)"
}

check_reused() {
	if [[ "$1" == nats ]] && ! nats_jetstream; then
		die "nats: the server at $HOST:$PORT has JetStream disabled; restart it with -js or point LURUS_NATS_URL elsewhere"
	fi
}

up_one() {
	local name="$1" dir marker addr
	addr_of "$name"
	addr="$HOST:$PORT"
	dir="$STACK_DIR/$name"
	marker="$(marker_of "$name")"
	say "$name: checking $addr"
	# The probes need a client: pg_isready; clickhouse-client, else curl.
	if [[ "$name" == postgres ]]; then ensure_cmd pg_isready postgresql-client; fi
	if [[ "$name" == clickhouse ]] && ! command -v clickhouse-client >/dev/null 2>&1; then
		ensure_cmd curl curl
	fi
	if "probe_$name"; then
		check_reused "$name"
		if marker_live "$name" && [[ "$(marker_get "$marker" addr)" == "$addr" ]]; then
			say "$name: up at $addr (started earlier by stack.sh, pid $(marker_get "$marker" pid))"
		else
			say "$name: already answers at $addr; reusing it, stack.sh will not stop it"
		fi
		return 0
	fi
	if [[ -f "$marker" ]]; then
		if marker_live "$name"; then
			die "$name: stack.sh started one at $(marker_get "$marker" addr) (pid $(marker_get "$marker" pid)) that does not answer at $addr; run 'scripts/stack.sh down $name' or set LURUS_STACK_DIR"
		fi
		say "$name: removing stale marker (pid $(marker_get "$marker" pid) is gone)"
		rm -f "$marker"
	fi
	is_loopback "$HOST" ||
		die "$name: nothing answers at $addr, and stack.sh only starts servers on loopback addresses"
	if tcp_open "$HOST" "$PORT"; then
		die "$name: something listens on $addr but does not answer as $name; free the port or change the address"
	fi
	"install_$name"
	if "probe_$name"; then # a freshly installed package may start its own server
		check_reused "$name"
		say "$name: the package started a server at $addr; reusing it"
		return 0
	fi
	mkdir -p "$dir"
	say "$name: starting at $addr (data in ${dir#"$ROOT"/})"
	"start_$name" "$dir"
	wait_ready "$name"
	if [[ "$name" == nats ]] && ! nats_jetstream; then die "nats: started, but JetStream is off"; fi
	printf 'addr=%s\npid=%s\nproc=%s\nstarted=%s\n' "$addr" "$PID" "$(proc_word "$name")" \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$marker"
	say "$name: up at $addr (pid $PID, log ${LOG#"$ROOT"/})"
}

# apply_init_db creates the lurus role and databases (init-db.sql is
# idempotent); one retry covers a concurrent run creating the same database.
apply_init_db() {
	local url="${LURUS_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
	say "postgres: applying init-db.sql (role lurus, databases lurus_provider, lurus_billing, lurus_sync)"
	psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$ROOT/init-db.sql" >/dev/null ||
		{ sleep 1 && psql "$url" -X -q -v ON_ERROR_STOP=1 -f "$ROOT/init-db.sql" >/dev/null; } ||
		die "postgres: init-db.sql failed"
}

down_one() {
	local name="$1" dir marker pid addr
	dir="$STACK_DIR/$name"
	marker="$(marker_of "$name")"
	if [[ ! -f "$marker" ]]; then
		say "$name: not started by stack.sh; leaving it alone"
		return 0
	fi
	pid="$(marker_get "$marker" pid)"
	addr="$(marker_get "$marker" addr)"
	if marker_live "$name"; then
		say "$name: stopping (pid $pid, $addr)"
		if [[ "$name" == postgres ]]; then
			stop_postgres "$dir" "$pid"
		else
			stop_default "$dir" "$pid" "$name"
		fi
		pid_alive "$pid" && die "$name: pid $pid is still running"
		say "$name: stopped"
	else
		say "$name: already stopped (pid $pid is gone)"
	fi
	rm -f "$marker"
}

status_one() {
	local name="$1" marker state origin note=""
	addr_of "$name"
	marker="$(marker_of "$name")"
	if "probe_$name"; then
		state=up
		if marker_live "$name" && [[ "$(marker_get "$marker" addr)" == "$HOST:$PORT" ]]; then
			origin=started
			note=" (pid $(marker_get "$marker" pid), ${STACK_DIR#"$ROOT"/}/$name)"
		else
			origin=reused
		fi
		if [[ "$name" == nats ]] && ! nats_jetstream; then note+=" (JetStream OFF)"; fi
		if [[ "$name" == clickhouse ]]; then note+=" (http :$(clickhouse_http_port))"; fi
	else
		state=down
		origin=-
		if marker_live "$name"; then
			note=" (stack.sh started one at $(marker_get "$marker" addr), pid $(marker_get "$marker" pid))"
		fi
	fi
	printf '%-11s %-5s %-8s %s%s\n' "$name" "$state" "$origin" "$HOST:$PORT" "$note"
}

# with_lock runs its arguments while holding the stack lock (fd 9), so
# concurrent `make test` runs in one checkout do not start a server twice.
# Servers are started with fd 9 closed, or they would hold the lock forever.
with_lock() {
	mkdir -p "$STACK_DIR"
	exec 9>"$STACK_DIR/stack.lock"
	if ! flock -n 9; then
		say "waiting for another stack.sh in this checkout"
		flock -w 300 9 || die "timed out waiting for $STACK_DIR/stack.lock"
	fi
	"$@"
}

check_names() {
	local n s ok
	for n in "$@"; do
		ok=
		for s in "${SERVERS[@]}"; do [[ "$n" == "$s" ]] && ok=1; done
		[[ -n "$ok" ]] || die "unknown server: $n (known: ${SERVERS[*]})"
	done
}

cmd_up() {
	local names=("$@") n
	((${#names[@]})) || names=("${SERVERS[@]}")
	for n in "${names[@]}"; do up_one "$n"; done
	for n in "${names[@]}"; do
		if [[ "$n" == postgres ]]; then apply_init_db; fi
	done
	say "stack is up"
}

cmd_down() {
	local names=("$@") i
	((${#names[@]})) || names=("${SERVERS[@]}")
	for ((i = ${#names[@]} - 1; i >= 0; i--)); do down_one "${names[i]}"; done
}

cmd_install() {
	local names=("$@") n
	((${#names[@]})) || names=("${SERVERS[@]}")
	for n in "${names[@]}"; do "install_$n"; done
}

cmd_status() {
	local n
	printf '%-11s %-5s %-8s %s\n' SERVER STATE ORIGIN ADDRESS
	for n in "${SERVERS[@]}"; do status_one "$n"; done
}

main() {
	local cmd="${1:-}"
	shift || true
	if [[ "$cmd" == config ]]; then
		[[ "${1:-}" == clickhouse && -n "${2:-}" && $# -eq 2 ]] || die "usage: $0 config clickhouse DIR"
		addr_of clickhouse
		mkdir -p "$2"
		clickhouse_config "$(cd "$2" && pwd)"
		return
	fi
	check_names "$@"
	case "$cmd" in
	up) with_lock cmd_up "$@" ;;
	down) with_lock cmd_down "$@" ;;
	install) with_lock cmd_install "$@" ;;
	status) cmd_status ;;
	*)
		echo "usage: $0 up|down|install [postgres|redis|nats|clickhouse ...] | status | config clickhouse DIR" >&2
		exit 2
		;;
	esac
}

main "$@"
