#!/bin/bash
# Runs the libFuzzer targets of tests/fuzz: first replays every saved crash
# input (tests/fuzz/crashes/<target>-*) as a regression test, then fuzzes each
# target for FUZZ_SECONDS from its seed corpus. Prints per target
#   PASS: fuzz <target> (N runs) ...   or   FAIL: fuzz <target>: ...
# and ends with "fuzz: N passed, N failed"; exits non-zero on any failure.
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default 12: about 72 s for all six)
#   FUZZ_TARGETS     targets to run (default: config twilio template phone users backup)
#   FUZZ_CORPUS_OUT  keep new inputs in FUZZ_CORPUS_OUT/<target>; unset, the run uses a
#                    temporary copy of the seed corpus and the repository stays untouched
#   FUZZ_NO_BUILD    set: do not run `make fuzz-build` first
# Crashing inputs and full logs are kept in tests/fuzz/build/{artifacts,logs}/.
set -u
cd "$(dirname "$0")/../.." || exit 1

dir=tests/fuzz
build=$dir/build
seconds=${FUZZ_SECONDS:-12}
targets=${FUZZ_TARGETS:-config twilio template phone users backup}
passed=0
failed=0
tmp=$(mktemp -d /tmp/tsms-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# scratch files of the targets and of libFuzzer go with $tmp
export TMPDIR=$tmp
mkdir -p "$build/artifacts" "$build/logs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

fail() {
	echo "FAIL: fuzz $1: $2"
	failed=$((failed + 1))
}

# The first line that says what went wrong in a libFuzzer log.
cause() {
	grep -m1 -E 'invariant violated|runtime error:|^SUMMARY:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|^==[0-9]+== ERROR' \
		"$1" | sed -E 's/^==[0-9]+==\s*//' | cut -c1-200
}

# Keeps a crashing input (its name from libFuzzer's log) in build/artifacts.
keep_artifact() {
	local unit
	unit=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$1" | tail -n 1)
	if [ -n "$unit" ] && [ -f "$unit" ]; then
		cp "$unit" "$build/artifacts/" && echo "$build/artifacts/$(basename "$unit")"
	fi
}

if [ -z "${FUZZ_NO_BUILD:-}" ] && ! make --no-print-directory fuzz-build >"$tmp/build.log" 2>&1; then
	echo "FAIL: fuzz build: make fuzz-build failed (is clang with libFuzzer installed? make fuzz-deps)"
	tail -n 20 "$tmp/build.log" | sed 's/^/   | /'
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

for t in $targets; do
	bin=$build/fuzz_$t
	log=$build/logs/$t.log
	if [ ! -x "$bin" ]; then
		fail "$t" "$bin is missing; run make fuzz-build"
		continue
	fi

	# regression inputs: crashes found before must stay fixed
	regressions=("$dir"/crashes/"$t"-*)
	[ -e "${regressions[0]}" ] || regressions=()
	if [ ${#regressions[@]} -gt 0 ] && ! "$bin" "${regressions[@]}" >"$log" 2>&1; then
		bad=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
		fail "$t" "regression input ${bad:-?} crashes: $(cause "$log") (log: $log)"
		continue
	fi

	if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
		corpus=("$FUZZ_CORPUS_OUT/$t" "$dir/corpus/$t")
		mkdir -p "$FUZZ_CORPUS_OUT/$t"
	else
		corpus=("$tmp/corpus/$t")
		mkdir -p "$tmp/corpus/$t"
		cp "$dir/corpus/$t"/* "$tmp/corpus/$t/" 2>/dev/null
	fi
	opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$tmp/$t-")
	[ -f "$dir/$t.dict" ] && opts+=(-dict="$dir/$t.dict")
	# users: lines longer than the library's 16 KiB read buffer must be reachable
	[ "$t" = users ] && opts+=(-max_len=40000)

	if "$bin" "${opts[@]}" "${corpus[@]}" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 |
			sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, ft \2, corpus \3/p')
		echo "PASS: fuzz $t (${runs:-0} runs) ${cov:+$cov, }${#regressions[@]} regression inputs"
		passed=$((passed + 1))
	else
		kept=$(keep_artifact "$log")
		fail "$t" "$(cause "$log"); input: ${kept:-none saved} (log: $log)"
	fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
