#!/usr/bin/env bash
# Gateway overhead with wrk, against the stack `make run` started, and
# where each request's CPU goes, process by process.
#
#   scripts/bench-wrk.sh [ROUNDS] [SECONDS]     (defaults: 3 rounds, 5 s slices)
#
# Three targets serve the same non-streaming chat completion from
# mock-upstream: direct, through a bare Hertz pass-through proxy
# (gateway-service/cmd/baseline-proxy, started here on :18191) and through
# the gateway with the demo key (auth, admission, both events stored in
# JetStream). Each round runs one slice per target at concurrency 64
# (throughput) and one at concurrency 1 (latency), targets interleaved.
# billing-service and log-service are paused (SIGSTOP) while a slice runs,
# as in the Go benchmark (BENCHMARKS.md says why), and catch up between
# slices. CPU per request is read from /proc for every process involved.
# Needs wrk (installed with apt-get when missing).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ROUNDS="${1:-3}"
SECS="${2:-5}"
GATEWAY=http://127.0.0.1:18100
MOCK=http://127.0.0.1:18190
BARE_ADDR=127.0.0.1:18191
BILLING=http://127.0.0.1:18103
RUN_DIR="$ROOT/.data/run"
WORK="$(mktemp -d)"
trap 'cleanup' EXIT

ensure_cmd wrk wrk
ensure_cmd jq jq
ensure_cmd /usr/bin/time time
[[ -f "$RUN_DIR/demo-key" ]] && curl -fsS -o /dev/null "$GATEWAY/ready" ||
	die "the gateway is not running: start the stack with make run first"
KEY="$(cat "$RUN_DIR/demo-key")"

paused=()
bare_pid=""
cleanup() {
	[[ ${#paused[@]} -gt 0 ]] && kill -CONT "${paused[@]}" 2>/dev/null
	[[ -n "$bare_pid" ]] && stop_pid "$bare_pid" baseline-proxy 5
	rm -rf "$WORK"
}

say "building and starting the bare Hertz proxy on $BARE_ADDR"
(cd gateway-service && go build -o "$ROOT/bin/baseline-proxy" ./cmd/baseline-proxy)
"$ROOT/bin/baseline-proxy" -addr "$BARE_ADDR" -upstream "$MOCK" >"$WORK/bare.log" 2>&1 &
bare_pid=$!
for _ in $(seq 50); do tcp_open 127.0.0.1 18191 && break; sleep 0.1; done

# A balance no run can exhaust: the demo user gets a top-up once per day.
user="$(curl -fsS -H "Authorization: Bearer $KEY" "$BILLING/api/v1/billing/me" | jq -r .user_id)"
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $LURUS_ADMIN_TOKEN" -H 'Content-Type: application/json' \
	-H "Idempotency-Key: bench-wrk-$(date -u +%F)" "$BILLING/api/v1/billing/users/$user/topup" \
	-d '{"amount_micros":1000000000000,"note":"scripts/bench-wrk.sh"}'

cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body   = '{"model":"gpt-4o-mini","max_tokens":32,"messages":[{"role":"user","content":"say something short"}]}'
wrk.headers["Content-Type"] = "application/json"
EOF

# pid NAME prints the pid of a service make run started (or of the proxy).
pid() {
	case "$1" in
	baseline-proxy) echo "$bare_pid" ;;
	nats-server | redis-server) pgrep -xo "$1" ;;
	*) cat "$RUN_DIR/$1.pid" ;;
	esac
}
PROCS=(gateway-service baseline-proxy mock-upstream nats-server redis-server)
# cpu_ticks NAME prints the user+system clock ticks the process used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$(pid "$1")/stat"; }

# settle waits until billing has settled everything (nothing reserved).
settle() {
	local i
	for i in $(seq 300); do
		[[ "$(curl -fsS -H "Authorization: Bearer $KEY" "$BILLING/api/v1/billing/me" | jq -r .reserved_micros)" == 0 ]] && return 0
		sleep 0.5
	done
	warn "billing still holds reservations after 150 s"
}

# slice TARGET CONNS appends "target conns rps p50_us p99_us cpu_us/req..." to $WORK/rows.
slice() {
	local target="$1" conns="$2" url hdr out reqs before after p n
	case "$target" in
	direct) url="$MOCK/v1/chat/completions" hdr="Authorization: Bearer sk-mock-openai" ;;
	bare-hertz) url="http://$BARE_ADDR/v1/chat/completions" hdr="Authorization: Bearer sk-mock-openai" ;;
	gateway) url="$GATEWAY/v1/chat/completions" hdr="Authorization: Bearer $KEY" ;;
	esac
	paused=("$(pid billing-service)" "$(pid log-service)")
	kill -STOP "${paused[@]}"
	before=()
	for p in "${PROCS[@]}"; do before+=("$(cpu_ticks "$p")"); done
	out="$( { /usr/bin/time -f 'wrkcpu %U %S' wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$WORK/post.lua" -H "$hdr" "$url"; } 2>&1)"
	after=()
	for p in "${PROCS[@]}"; do after+=("$(cpu_ticks "$p")"); done
	kill -CONT "${paused[@]}"
	paused=()
	grep -q 'Non-2xx' <<<"$out" && die "$target: non-2xx answers under load: $out"
	reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
	{
		printf '%s %s %s %s %s' "$target" "$conns" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
			"$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
		for n in "${!PROCS[@]}"; do
			awk -v a="${before[$n]}" -v b="${after[$n]}" -v t="$(getconf CLK_TCK)" -v r="$reqs" 'BEGIN {printf " %.1f", (b - a) / t * 1e6 / r}'
		done
		awk -v r="$reqs" '/^wrkcpu/ {printf " %.1f\n", ($2 + $3) * 1e6 / r}' <<<"$out"
	} >>"$WORK/rows"
	settle
}

say "$ROUNDS rounds of ${SECS}s slices per target, concurrency 64 then 1 (billing and log-service paused during slices)"
settle
for ((r = 1; r <= ROUNDS; r++)); do
	for c in 64 1; do
		for t in direct bare-hertz gateway; do
			slice "$t" "$c"
			printf '  round %d  %-10s c=%-2d %s\n' "$r" "$t" "$c" "$(tail -n 1 "$WORK/rows" | awk '{print $3 " req/s, p50 " $4 ", p99 " $5}')"
		done
	done
done

# Report: medians over rounds; latency from wrk's own percentiles
# (converted to µs), CPU per request per process.
python3 - "$WORK/rows" "${PROCS[@]}" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
procs = sys.argv[2:] + ["wrk"]
def us(s):
    for suf, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if s.endswith(suf):
            return float(s[:-len(suf)]) * f
    return float(s)
def med(target, conns, i, conv=float):
    return statistics.median(conv(r[i]) for r in rows if r[0] == target and r[1] == conns)
targets = ["direct", "bare-hertz", "gateway"]
print("\nthroughput, concurrency 64 (req/s, median of rounds)")
rps = {t: med(t, "64", 2) for t in targets}
for t in targets:
    print(f"  {t:<11} {rps[t]:9.0f}")
print(f"  gateway/direct {rps['gateway']/rps['direct']:.2f}   gateway/bare-hertz {rps['gateway']/rps['bare-hertz']:.2f}   bare-hertz/direct {rps['bare-hertz']/rps['direct']:.2f}")
print("\nCPU per request at concurrency 64 (µs, median of rounds)")
print("  " + f"{'target':<11}" + "".join(f"{p:>16}" for p in procs))
for t in targets:
    print("  " + f"{t:<11}" + "".join(f"{med(t, '64', 5 + i):16.1f}" for i in range(len(procs))))
print("\nlatency, concurrency 1 (µs, median of rounds)")
lat = {t: (med(t, "1", 3, us), med(t, "1", 4, us)) for t in targets}
for t in targets:
    print(f"  {t:<11} p50 {lat[t][0]:7.0f}   p99 {lat[t][1]:7.0f}")
for t in ("bare-hertz", "gateway"):
    print(f"  added by {t} vs direct: p50 {lat[t][0]-lat['direct'][0]:+.0f} µs, p99 {lat[t][1]-lat['direct'][1]:+.0f} µs")
print(f"  added by gateway vs bare-hertz: p50 {lat['gateway'][0]-lat['bare-hertz'][0]:+.0f} µs, p99 {lat['gateway'][1]-lat['bare-hertz'][1]:+.0f} µs")
EOF
