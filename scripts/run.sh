#!/usr/bin/env bash
# Runs Lurus Switch on this machine (`make run`, `make stop`).
#
#   scripts/run.sh [start]   stack up, build, migrate, start every service,
#                            seed a demo provider/user/key, print a curl
#   scripts/run.sh stop      stop the services this script started
#   scripts/run.sh status    one line per service
#
# Each service runs in its module directory, with logs in .data/logs/<name>.log
# and pids in .data/run/<name>.pid. Starting again restarts the ones this
# script started (so a fresh build is picked up); a port held by anything
# else is an error.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# SERVICES lists what `make run` starts, in start order. One entry a line:
#
#   name  module  port  migrate  args...
#
#   name     the binary is bin/<name> (make build: <module>/cmd/<name>)
#   module   directory of the Go module; the service runs there, so its
#            default -config configs/config.yaml is the module's own file
#            ({config} in args stands for that path, if needed)
#   port     loopback port; GET /health must answer 200 there
#   migrate  yes: run `bin/<name> migrate` (same directory) before starting
#   args     the command line of the running service
#
# To add a service, add its line here. A missing binary is skipped with a
# note, so a line may be added before its code exists. Seed steps go in
# seed_demo below.
SERVICES=(
	"mock-upstream     gateway-service   18190  no   -addr 127.0.0.1:18190"
	"provider-service  provider-service  18101  yes  serve"
	"billing-service   billing-service   18103  yes  serve"
	"log-service       log-service       18102  yes  serve"
	"sync-service      sync-service      18104  no   serve"
	"gateway-service   gateway-service   18100  no   serve"
)

# The gateway's event outbox (relative by default) stays at the repository
# root, in the git-ignored var/, whatever directory the gateway runs in.
export LURUS_GATEWAY_OUTBOX_DIR="${LURUS_GATEWAY_OUTBOX_DIR:-$ROOT/var/gateway-outbox}"

RUN_DIR="$ROOT/.data/run"
LOG_DIR="$ROOT/.data/logs"
WAIT="${LURUS_RUN_WAIT:-60}"

# entry ENTRY sets NAME MODULE PORT MIGRATE CONFIG BIN and ARGS from a
# SERVICES line.
entry() {
	local rest a
	read -r NAME MODULE PORT MIGRATE rest <<<"$1"
	CONFIG="$ROOT/$MODULE/configs/config.yaml"
	BIN="$ROOT/bin/$NAME"
	ARGS=()
	read -ra a <<<"$rest"
	for rest in "${a[@]}"; do ARGS+=("${rest//\{config\}/$CONFIG}"); done
}

pid_file() { echo "$RUN_DIR/$1.pid"; }

# running NAME prints the pid of NAME when this script started it and it
# still runs.
running() {
	local pf pid
	pf="$(pid_file "$1")"
	[[ -f "$pf" ]] || return 1
	pid="$(cat "$pf")"
	if pid_runs "$pid" "bin/$1"; then
		echo "$pid"
	else
		return 1
	fi
}

# http_ok URL succeeds on a 200 answer.
http_ok() {
	curl -fsS -o /dev/null -m 2 "$1" 2>/dev/null
}

stop_one() {
	local pid
	if pid="$(running "$NAME")"; then
		say "$NAME: stopping (pid $pid)"
		# The gateway drains in-flight requests and its event queue on SIGTERM.
		stop_pid "$pid" "$NAME" 75
	fi
	rm -f "$(pid_file "$NAME")"
}

start_one() {
	local log="$LOG_DIR/$NAME.log" pid deadline
	if [[ ! -x "$BIN" ]]; then
		say "$NAME: skipped, bin/$NAME is not built (no $MODULE/cmd/$NAME/main.go yet?)"
		return 0
	fi
	stop_one
	if tcp_open 127.0.0.1 "$PORT"; then
		die "$NAME: port $PORT is taken by a process run.sh did not start; stop it first"
	fi
	if [[ "$MIGRATE" == yes ]]; then
		say "$NAME: migrate"
		printf '\n=== %s migrate\n' "$(date -u +%FT%TZ)" >>"$log"
		(cd "$ROOT/$MODULE" && "$BIN" migrate) >>"$log" 2>&1 || {
			log_tail "$log"
			die "$NAME: migrate failed (log: ${log#"$ROOT"/})"
		}
	fi
	printf '\n=== %s start: %s %s\n' "$(date -u +%FT%TZ)" "bin/$NAME" "${ARGS[*]}" >>"$log"
	# setsid: the service outlives this script and ignores the terminal's Ctrl-C.
	(cd "$ROOT/$MODULE" && exec setsid "$BIN" "${ARGS[@]}") </dev/null >>"$log" 2>&1 &
	pid=$!
	echo "$pid" >"$(pid_file "$NAME")"
	deadline=$((SECONDS + WAIT))
	until http_ok "http://127.0.0.1:$PORT/health"; do
		if ! pid_alive "$pid"; then
			log_tail "$log"
			die "$NAME: exited during startup (log: ${log#"$ROOT"/})"
		fi
		if ((SECONDS >= deadline)); then
			log_tail "$log"
			die "$NAME: no 200 from /health on :$PORT after ${WAIT}s (log: ${log#"$ROOT"/})"
		fi
		sleep 0.2
	done
	say "$NAME: up on :$PORT (pid $pid, log ${log#"$ROOT"/})"
}

# wait_ready NAME PORT waits for GET /ready (its dependencies answer); a
# service without the route (404) counts as ready.
wait_ready() {
	local code deadline=$((SECONDS + WAIT))
	while ((SECONDS < deadline)); do
		code="$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://127.0.0.1:$2/ready" || true)"
		[[ "$code" == 200 || "$code" == 404 ]] && return 0
		sleep 0.5
	done
	warn "$1: /ready on :$2 still answers $code after ${WAIT}s"
}

# ------------------------------------------------------------------ seeding
# seed_demo creates, once, what the printed curl needs: providers pointing
# at mock-upstream, a price for every model, a user with a balance and an
# API key (kept in .data/run/demo-key). Add further seed steps here.

DEMO_KEY_FILE="$RUN_DIR/demo-key"
PROVIDER_URL="http://127.0.0.1:18101"
BILLING_URL="http://127.0.0.1:18103"
GATEWAY_URL="http://127.0.0.1:18100"
DEMO_KEY=""

# admin METHOD URL [JSON [HEADER...]] calls an admin route, prints the body
# and fails on a non-2xx status.
admin() {
	local method="$1" url="$2" body="${3:-}" out code
	shift 3 || shift $#
	local args=(-sS -m 10 -X "$method" -H "Authorization: Bearer $LURUS_ADMIN_TOKEN" -w '\n%{http_code}')
	if [[ -n "$body" ]]; then args+=(-H 'Content-Type: application/json' --data "$body"); fi
	local h
	for h in "$@"; do args+=(-H "$h"); done
	out="$(curl "${args[@]}" "$url")" || return 1
	code="${out##*$'\n'}"
	out="${out%$'\n'*}"
	if [[ "$code" != 2?? ]]; then
		warn "seed: $method $url -> HTTP $code: $out"
		return 1
	fi
	printf '%s\n' "$out"
}

seed_providers() {
	local names mock="http://127.0.0.1:18190" spec
	names="$(admin GET "$PROVIDER_URL/api/v1/providers?limit=200" | jq -r '.items[].name')" || return 1
	for spec in \
		'{"name":"demo-openai","type":"openai","base_url":"MOCK/v1","keys":["sk-mock-openai"],"models":["gpt-4o","gpt-4o-mini","gpt-3.5-turbo-instruct","text-embedding-3-small"]}' \
		'{"name":"demo-anthropic","type":"anthropic","base_url":"MOCK","keys":["sk-mock-anthropic"],"models":["claude-*"]}' \
		'{"name":"demo-gemini","type":"gemini","base_url":"MOCK","keys":["mock-gemini-key"],"models":["gemini-*"]}'; do
		spec="$(jq -c --arg mock "$mock" '.base_url |= sub("MOCK"; $mock) | .allow_private_network = true | .enabled = true | .weight = 1' <<<"$spec")"
		if grep -qxF "$(jq -r .name <<<"$spec")" <<<"$names"; then continue; fi
		admin POST "$PROVIDER_URL/api/v1/providers" "$spec" >/dev/null || return 1
		say "seed: provider $(jq -r .name <<<"$spec") -> $mock"
	done
}

seed_price() {
	local patterns
	patterns="$(admin GET "$BILLING_URL/api/v1/billing/prices?limit=200" | jq -r '.items[].model_pattern')" || return 1
	grep -qxF '*' <<<"$patterns" && return 0
	admin POST "$BILLING_URL/api/v1/billing/prices" \
		'{"model_pattern":"*","input_micros_per_mtok":1000000,"output_micros_per_mtok":2000000,"cached_input_micros_per_mtok":500000,"cache_write_micros_per_mtok":1250000}' >/dev/null || return 1
	say "seed: price for every model (\$1 in / \$2 out per million tokens)"
}

seed_user_and_key() {
	local user id
	if [[ -s "$DEMO_KEY_FILE" ]]; then
		DEMO_KEY="$(cat "$DEMO_KEY_FILE")"
		if http_ok_with_key "$BILLING_URL/api/v1/billing/me"; then return 0; fi
		DEMO_KEY=""
	fi
	user="$(admin POST "$BILLING_URL/api/v1/billing/users" '{"name":"demo","email":"demo@example.com"}')" || return 1
	id="$(jq -r .id <<<"$user")"
	admin POST "$BILLING_URL/api/v1/billing/users/$id/topup" '{"amount_micros":10000000,"note":"make run demo"}' \
		"Idempotency-Key: make-run-demo-$id" >/dev/null || return 1
	DEMO_KEY="$(admin POST "$BILLING_URL/api/v1/billing/users/$id/keys" '{"name":"make run demo"}' | jq -r .key)" || return 1
	[[ -n "$DEMO_KEY" && "$DEMO_KEY" != null ]] || return 1
	(umask 077 && printf '%s\n' "$DEMO_KEY" >"$DEMO_KEY_FILE")
	say "seed: user demo ($id) with \$10 and an API key"
}

http_ok_with_key() {
	curl -fsS -o /dev/null -m 5 -H "Authorization: Bearer $DEMO_KEY" "$1" 2>/dev/null
}

seed_demo() {
	if ! running provider-service >/dev/null || ! running billing-service >/dev/null; then
		say "seed: skipped (needs provider-service and billing-service running)"
		return 0
	fi
	ensure_cmd jq jq
	if ! { seed_providers && seed_price && seed_user_and_key; }; then
		warn "seed: incomplete; adjust seed_demo in scripts/run.sh to the current admin API"
	fi
}

# check_demo waits until the gateway lists the demo models (it learns about
# providers through NATS) and sends the request the printed curl sends.
check_demo() {
	local i body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
	[[ -n "$DEMO_KEY" ]] && running gateway-service >/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		curl -fsS -m 2 -H "Authorization: Bearer $DEMO_KEY" "$GATEWAY_URL/v1/models" 2>/dev/null |
			grep -q gpt-4o-mini && break
		sleep 0.3
	done
	if curl -fsS -o /dev/null -m 10 -H "Authorization: Bearer $DEMO_KEY" -H 'Content-Type: application/json' \
		--data "$body" "$GATEWAY_URL/v1/chat/completions" 2>/dev/null; then
		say "demo: a chat completion through the gateway answered 200"
	else
		warn "demo: the chat completion through the gateway failed; see .data/logs/gateway-service.log"
	fi
}

# ---------------------------------------------------------------- commands

cmd_start() {
	local e
	mkdir -p "$RUN_DIR" "$LOG_DIR"
	trap 'if (($? != 0)); then warn "make run failed; what it started keeps running: make stop stops it"; fi' EXIT
	"$ROOT/scripts/stack.sh" up
	"$ROOT/scripts/go-modules.sh" build
	for e in "${SERVICES[@]}"; do
		entry "$e"
		start_one
	done
	for e in "${SERVICES[@]}"; do
		entry "$e"
		if running "$NAME" >/dev/null; then wait_ready "$NAME" "$PORT"; fi
	done
	seed_demo
	check_demo
	usage_note
}

usage_note() {
	local e pid
	printf '\nLurus Switch is running (logs in .data/logs/, stop everything with: make stop):\n'
	for e in "${SERVICES[@]}"; do
		entry "$e"
		if pid="$(running "$NAME")"; then
			printf '  %-17s http://127.0.0.1:%s  (pid %s)\n' "$NAME" "$PORT" "$pid"
		else
			printf '  %-17s not running\n' "$NAME"
		fi
	done
	printf '\nAdmin calls use LURUS_ADMIN_TOKEN from dev.env, e.g.\n'
	printf '  curl -H "Authorization: Bearer %s" %s/api/v1/providers\n' "$LURUS_ADMIN_TOKEN" "$PROVIDER_URL"
	if [[ -n "$DEMO_KEY" ]]; then
		cat <<EOF

Try the gateway with the demo key (also in ${DEMO_KEY_FILE#"$ROOT"/}):
  export LURUS_DEMO_KEY=$DEMO_KEY
  curl -N $GATEWAY_URL/v1/chat/completions \\
    -H "Authorization: Bearer \$LURUS_DEMO_KEY" -H 'Content-Type: application/json' \\
    -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
  curl -s -H "Authorization: Bearer \$LURUS_DEMO_KEY" $BILLING_URL/api/v1/billing/me
EOF
	fi
}

cmd_stop() {
	local i
	for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
		entry "${SERVICES[i]}"
		stop_one
	done
	say "services stopped"
}

cmd_status() {
	local e pid state
	for e in "${SERVICES[@]}"; do
		entry "$e"
		if pid="$(running "$NAME")"; then
			state="running (pid $pid)"
			http_ok "http://127.0.0.1:$PORT/health" || state+=", /health not answering"
		elif [[ -x "$BIN" ]]; then
			state="stopped"
		else
			state="not built"
		fi
		printf '%-17s :%s  %s\n' "$NAME" "$PORT" "$state"
	done
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac
