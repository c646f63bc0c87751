# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it, do not run it.
#
# Sourcing sets ROOT (the repository root) and loads dev.env: a variable that
# is already set in the environment keeps its value, dev.env only fills gaps.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# say prints one progress line.
say() { printf '==> %s\n' "$*"; }

# warn prints a warning on stderr.
warn() { printf 'warning: %s\n' "$*" >&2; }

# die prints an error on stderr and exits.
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# log_tail FILE [LINES] prints the end of a log file, indented, on stderr.
log_tail() {
	local file="$1" lines="${2:-30}"
	if [[ -s "$file" ]]; then
		printf -- '--- last %s lines of %s\n' "$lines" "$file" >&2
		tail -n "$lines" "$file" | sed 's/^/    /' >&2
	else
		printf -- '--- %s is empty or missing\n' "$file" >&2
	fi
}

# load_dev_env FILE exports each KEY=VALUE line of FILE whose KEY is not set
# yet. Values are taken literally (one pair of surrounding quotes is removed);
# no shell expansion happens, so the file stays safe to read from make too.
load_dev_env() {
	local file="$1" line key val
	[[ -f "$file" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		[[ "$line" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
		key="${BASH_REMATCH[1]}"
		val="${BASH_REMATCH[2]}"
		[[ -n "${!key+set}" ]] && continue
		if [[ "$val" =~ ^\"(.*)\"$ || "$val" =~ ^\'(.*)\'$ ]]; then
			val="${BASH_REMATCH[1]}"
		fi
		export "$key=$val"
	done <"$file"
}

# as_root CMD... runs CMD as root: directly when we are root, else with sudo.
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $* (no sudo found)"
	fi
}

# apt_install PKG... installs Debian packages, refreshing the package lists
# once if the first attempt fails.
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
	say "installing $* (apt-get)"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
		as_root apt-get update
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" ||
			die "apt-get could not install $*"
	fi
}

# ensure_cmd CMD PKG... installs PKG... when CMD is not on PATH.
ensure_cmd() {
	local cmd="$1"
	shift
	command -v "$cmd" >/dev/null 2>&1 && return 0
	apt_install "$@"
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

# tcp_open HOST PORT succeeds when something accepts a TCP connection there.
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pid_alive PID succeeds when PID names a running process. A zombie counts
# as gone: here pid 1 reaps orphans lazily, so a stopped server can linger as
# a zombie for a while.
pid_alive() {
	local stat
	[[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat%% *}" != Z ]]
}

# pid_runs PID NAME succeeds when PID is alive and its command line mentions
# NAME, so a recycled pid is never mistaken for ours.
pid_runs() {
	pid_alive "$1" || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid PID LABEL [SECONDS] sends SIGTERM, waits, then SIGKILL.
stop_pid() {
	local pid="$1" label="$2" wait="${3:-30}" i
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < wait * 10; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	warn "$label (pid $pid) did not stop in ${wait}s; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	sleep 0.2
}

load_dev_env "$ROOT/dev.env"
