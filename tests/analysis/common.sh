# shellcheck shell=bash
# Shared by the analysis suites (sourced, not run): PASS/FAIL lines and the closing tally.
# A suite (named for its script) calls pass/fail per check and ends with `finish`.

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
SUITE=$(basename "$0" .sh)
passed=0
failed=0

pass() {
	echo "PASS: $1"
	passed=$((passed + 1))
}

# fail NAME WHY [DETAIL_FILE]: the FAIL line, then the detail file's tail indented
fail() {
	echo "FAIL: $1: $2"
	failed=$((failed + 1))
	if [ -n "${3:-}" ] && [ -s "$3" ]; then
		tail -n 40 "$3" | sed 's/^/    | /'
	fi
}

finish() {
	echo "$SUITE: $passed passed, $failed failed"
	if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
		exit 0
	fi
	exit 1
}

# need PKG...: installs the missing Debian packages, the build's and the tests' (make deps)
# and these; a failure ends the suite
need() {
	if ! { make -s deps && tests/install-deps.sh "$@"; } >/dev/null; then
		fail "install Debian packages" "make deps or tests/install-deps.sh $* failed"
		finish
	fi
}

# harness LABEL OUT CMD...: runs a test harness that prints PASS:/FAIL: lines (run_e2e.py,
# run_cli.py) with its output in OUT, and repeats its verdicts as "PASS: LABEL case"
harness() {
	local label=$1 out=$2 rc
	shift 2
	"$@" >"$out" 2>&1
	rc=$?
	verdicts "$label" "$out" "$rc" "$*"
}

# shards LABEL OUT CMD...: runs a test harness as harness() does, in one process per core
# (at most $TSMS_SHARDS when set) that share one selection: each runs the cases it claims
# first (tests/harness/core.py's Claims), so every case runs once and the shards stay even.
# Their outputs are OUT.1, OUT.2, ...; OUT is all of them, for the report searches.
shards() {
	local label=$1 out=$2 n i pids=()
	shift 2
	n=$(nproc)
	[ -n "${TSMS_SHARDS:-}" ] && [ "$TSMS_SHARDS" -lt "$n" ] && n=$TSMS_SHARDS
	rm -rf "$out.claims"
	mkdir -p "$out.claims"
	for ((i = 1; i <= n; i++)); do
		TSMS_CASE_CLAIMS=$out.claims "$@" >"$out.$i" 2>&1 &
		pids+=($!)
	done
	for ((i = 1; i <= n; i++)); do
		wait "${pids[i - 1]}"
		verdicts "$label" "$out.$i" $? "$* (shard $i of $n)"
	done
	cat "$out".[0-9]* >"$out"
}

# verdicts LABEL OUT STATUS NAME: repeats the verdicts in a harness's output OUT; a harness
# NAME that failed (STATUS) without saying which case is one failure
verdicts() {
	sed -n "s/^PASS: /PASS: $1 /p; s/^FAIL: /FAIL: $1 /p" "$2"
	passed=$((passed + $(grep -c '^PASS: ' "$2")))
	failed=$((failed + $(grep -c '^FAIL: ' "$2")))
	if [ "$3" -ne 0 ] && ! grep -q '^FAIL: ' "$2"; then
		fail "$1" "$4 exited $3" "$2"
	fi
}
