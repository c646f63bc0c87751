#!/usr/bin/env bash
# Runs Go tooling over every module listed in go.work, so a module joins the
# build and the tests by being added to the workspace.
#
#   scripts/go-modules.sh list         module directories, one a line
#   scripts/go-modules.sh vet          go vet ./... in each module
#   scripts/go-modules.sh test         go vet, then go test -race -count=1 ./...
#   scripts/go-modules.sh test-short   the same without -race
#   scripts/go-modules.sh build        bin/<m> from <m>/cmd/<m>/main.go, plus bin/mock-upstream and the bench-* tools
#   scripts/go-modules.sh fmt-check    gofmt -l over the tracked .go files
#   scripts/go-modules.sh vuln         govulncheck ./... in each module
#   scripts/go-modules.sh fuzz         every func FuzzXxx of every module, one at a time, for FUZZTIME
#
# Every module is visited even when one fails; a summary line per module is
# printed and the exit status is 1 if any failed. GOTESTFLAGS adds flags to
# go test (e.g. GOTESTFLAGS='-run TestLedger -v').
#
# fuzz: FUZZTIME is how long each target runs (default 60s; make test uses
# a few seconds), FUZZ_RUN narrows the targets (a go test -list regexp,
# default ^Fuzz), FUZZFLAGS adds flags (e.g. FUZZFLAGS='-parallel 2'). A
# failing input is written by go test to <package>/testdata/fuzz/<Target>/;
# commit it with the fix, so the seed corpus keeps the regression.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# modules prints the `use` directories of go.work, without the leading ./.
modules() {
	go work edit -json "$ROOT/go.work" |
		sed -n 's/^[[:space:]]*"DiskPath": "\(.*\)",\{0,1\}$/\1/p' |
		sed 's|^\./||'
}

# has_packages DIR succeeds when the module in DIR holds at least one package.
has_packages() {
	[[ -n "$(cd "$ROOT/$1" && go list -e ./... 2>/dev/null)" ]]
}

mapfile -t MODULES < <(modules)
((${#MODULES[@]})) || die "no modules found in $ROOT/go.work"

SUMMARY=()
FAILED=0

# record STATUS MODULE DETAIL adds a summary line.
record() {
	SUMMARY+=("$(printf '  %-5s %-18s %s' "$1" "$2" "$3")")
	if [[ "$1" == FAIL ]]; then FAILED=1; fi
}

finish() {
	printf '\n==> %s summary\n' "$1"
	printf '%s\n' "${SUMMARY[@]}"
	if ((FAILED)); then
		printf '==> %s: FAILED\n' "$1"
		exit 1
	fi
	printf '==> %s: ok\n' "$1"
}

# in_module DIR CMD... runs CMD in module DIR, echoing it first.
in_module() {
	local dir="$1"
	shift
	printf -- '--- %s: %s\n' "$dir" "$*"
	(cd "$ROOT/$dir" && "$@")
}

cmd_vet() {
	local m
	for m in "${MODULES[@]}"; do
		if ! has_packages "$m"; then
			record skip "$m" "no Go packages yet"
		elif in_module "$m" go vet ./...; then
			record ok "$m" "vet ok"
		else
			record FAIL "$m" "go vet failed"
		fi
	done
	finish vet
}

# cmd_test RACE runs vet and the tests of every module; RACE is -race or "".
cmd_test() {
	local race="$1" m start vet test flags=()
	read -ra flags <<<"${GOTESTFLAGS:-}"
	if [[ -n "$race" ]]; then flags=("$race" "${flags[@]}"); fi
	say "LURUS_REQUIRE_INTEGRATION=${LURUS_REQUIRE_INTEGRATION:-} (1: a missing server fails the tests)"
	for m in "${MODULES[@]}"; do
		if ! has_packages "$m"; then
			record skip "$m" "no Go packages yet"
			continue
		fi
		start=$SECONDS
		vet=ok
		test=ok
		in_module "$m" go vet ./... || vet=FAILED
		# The fault suite runs by `make chaos` (its own time budget).
		if [[ "$m" == chaos ]]; then
			record "$([[ "$vet" == ok ]] && echo ok || echo FAIL)" "$m" "vet $vet, tests by make chaos"
			continue
		fi
		in_module "$m" go test "${flags[@]}" -count=1 ./... || test=FAILED
		if [[ "$vet" == ok && "$test" == ok ]]; then
			record ok "$m" "vet ok, test ok ($((SECONDS - start))s)"
		else
			record FAIL "$m" "vet $vet, test $test ($((SECONDS - start))s)"
		fi
	done
	finish "test${race:+ $race}"
}

# cmd_build builds bin/<module> for every module with cmd/<module>/main.go,
# bin/mock-upstream from gateway-service/cmd/mock-upstream, and bin/bench-X
# for every benchmark tool <module>/cmd/bench-X (BENCHMARKS.md).
cmd_build() {
	local m name dir targets=()
	mkdir -p "$ROOT/bin"
	for m in "${MODULES[@]}"; do
		name="$(basename "$m")"
		if [[ -f "$ROOT/$m/cmd/$name/main.go" ]]; then targets+=("$m $name"); fi
		for dir in "$ROOT/$m"/cmd/bench-*/; do
			if [[ -d "$dir" ]]; then targets+=("$m $(basename "$dir")"); fi
		done
	done
	if [[ -f "$ROOT/gateway-service/cmd/mock-upstream/main.go" ]]; then
		targets+=("gateway-service mock-upstream")
	fi
	if ((${#targets[@]} == 0)); then
		say "nothing to build yet (no <module>/cmd/<module>/main.go)"
		return 0
	fi
	local t
	for t in "${targets[@]}"; do
		read -r m name <<<"$t"
		if in_module "$m" go build -o "$ROOT/bin/$name" "./cmd/$name"; then
			record ok "$name" "bin/$name"
		else
			record FAIL "$name" "go build ./cmd/$name in $m failed"
		fi
	done
	finish build
}

cmd_fmt_check() {
	local files=() f unformatted
	if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		while IFS= read -r -d '' f; do
			[[ -f "$f" ]] && files+=("$f")
		done < <(git -C "$ROOT" ls-files -z -- '*.go')
	else
		while IFS= read -r -d '' f; do files+=("$f"); done < <(find . -name '*.go' -not -path './.data/*' -print0)
	fi
	if ((${#files[@]} == 0)); then
		say "fmt-check: no Go files"
		return 0
	fi
	unformatted="$(gofmt -l "${files[@]}")"
	if [[ -n "$unformatted" ]]; then
		printf 'gofmt: these files need formatting (run gofmt -w):\n%s\n' "$unformatted" >&2
		exit 1
	fi
	say "fmt-check: ${#files[@]} files formatted"
}

cmd_vuln() {
	local m
	command -v govulncheck >/dev/null 2>&1 ||
		die "govulncheck not found: go install golang.org/x/vuln/cmd/govulncheck@latest"
	for m in "${MODULES[@]}"; do
		if ! has_packages "$m"; then
			record skip "$m" "no Go packages yet"
		elif in_module "$m" govulncheck ./...; then
			record ok "$m" "no known vulnerabilities reached"
		else
			record FAIL "$m" "govulncheck reported findings"
		fi
	done
	finish vuln
}

# fuzz_candidates DIR prints the import paths of the packages of module DIR
# whose test files declare a fuzz target. A cheap filter only: go test -list
# (which builds and starts the test binary) decides which targets exist.
fuzz_candidates() {
	local pkg files
	(cd "$ROOT/$1" && go list -f '{{.ImportPath}}{{range .TestGoFiles}} {{$.Dir}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$.Dir}}/{{.}}{{end}}' ./...) |
		while read -r pkg files; do
			# shellcheck disable=SC2086 # one path a word; the repository has no spaces in paths
			if [[ -n "$files" ]] && grep -qE '^func Fuzz[A-Z0-9_]' $files; then
				printf '%s\n' "$pkg"
			fi
		done
}

# cmd_fuzz runs every fuzz target of every module for FUZZTIME, one target
# and one package per go test (-fuzz accepts no more), printing a line per
# target and a summary. Modules without fuzz targets are listed as such.
cmd_fuzz() {
	local fuzztime="${FUZZTIME:-60s}" m modpath pkg name short start out rc n=0 failed_input
	local targets=() flags=()
	read -ra flags <<<"${FUZZFLAGS:-}"
	out="$(mktemp)"
	trap 'rm -f "$out"' RETURN
	for m in "${MODULES[@]}"; do
		if ! has_packages "$m"; then
			record skip "$m" "no Go packages yet"
			continue
		fi
		local pkgs=()
		if ! mapfile -t pkgs < <(fuzz_candidates "$m") || ! (cd "$ROOT/$m" && go list ./... >/dev/null); then
			record FAIL "$m" "go list failed"
			continue
		fi
		targets=()
		modpath="$(sed -n 's/^module[[:space:]]*//p' "$ROOT/$m/go.mod")"
		for pkg in "${pkgs[@]}"; do
			if ! (cd "$ROOT/$m" && go test -list "${FUZZ_RUN:-^Fuzz}" "$pkg") >"$out" 2>&1; then
				cat "$out" >&2
				record FAIL "$m" "go test -list failed in $pkg"
				continue
			fi
			while read -r name; do targets+=("$pkg $name"); done < <(grep -E '^Fuzz[A-Za-z0-9_]*$' "$out")
		done
		if ((${#targets[@]} == 0)); then
			record skip "$m" "no fuzz targets"
			continue
		fi
		local t
		for t in "${targets[@]}"; do
			read -r pkg name <<<"$t"
			n=$((n + 1))
			short="$m${pkg#"$modpath"}"
			printf -- '--- fuzz %s %s for %s\n' "$short" "$name" "$fuzztime"
			start=$SECONDS
			rc=0
			(cd "$ROOT/$m" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "${flags[@]}" "$pkg") >"$out" 2>&1 || rc=$?
			if ((rc == 0)); then
				record ok "$m" "$short $name ($((SECONDS - start))s)"
			else
				tail -n 40 "$out" >&2
				failed_input="$(sed -n 's/.*Failing input written to \(.*\)$/\1/p' "$out" | head -n 1)"
				record FAIL "$m" "$short $name ($((SECONDS - start))s)${failed_input:+, input in $short/$failed_input}"
			fi
		done
	done
	say "fuzz: $n targets, $fuzztime each"
	finish fuzz
}

case "${1:-}" in
list) printf '%s\n' "${MODULES[@]}" ;;
vet) cmd_vet ;;
test) cmd_test -race ;;
test-short) cmd_test "" ;;
build) cmd_build ;;
fmt-check) cmd_fmt_check ;;
vuln) cmd_vuln ;;
fuzz) cmd_fuzz ;;
*)
	echo "usage: $0 list|vet|test|test-short|build|fmt-check|vuln|fuzz" >&2
	exit 2
	;;
esac
