#!/bin/bash
# Runs every test suite, each with its seconds, and ends with one line: "N passed, N failed (S s)".
# Unit tests (cmocka, TAP output), the sandbox and test harness self-tests and the
# end-to-end tests through real libpam. Called by `make test` after the build.
set -u
cd "$(dirname "$0")/.."

passed=0
failed=0
log=$(mktemp -d /tmp/tsms-tests.XXXXXX)
trap 'rm -rf "$log"' EXIT

# count OUT SECONDS: "PASS:"/"FAIL:" lines (our suites) or TAP "ok"/"not ok" lines (cmocka)
count() {
	local out=$1 took=$2 p f
	p=$(grep -cE '^(PASS: |ok [0-9])' "$out")
	f=$(grep -cE '^(FAIL: |not ok [0-9])' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	echo "$p passed, $f failed ($took s)"
}

run_suite() {
	local name=$1 out="$log/$(basename "$1").out" rc start=$SECONDS
	shift
	echo "== $name"
	"$@" >"$out" 2>&1
	rc=$?
	grep -E '^(FAIL: |not ok )' "$out" | sed 's/^/   /'
	count "$out" $((SECONDS - start))
	# a suite that crashed or failed without saying which test is one failure
	if [ "$rc" -ne 0 ] && ! grep -qE '^(FAIL: |not ok )' "$out"; then
		echo "   FAIL: $name exited $rc:"
		tail -n 20 "$out" | sed 's/^/   | /'
		failed=$((failed + 1))
	fi
}

for t in tests/unit/test_*; do
	case "$t" in *.c | *.h) continue ;; esac
	[ -x "$t" ] || continue
	run_suite "unit $(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP TSMS_FIXTURES=tests/fixtures "$t"
done
style() {
	if make -s check-format >/dev/null 2>&1; then
		echo "PASS: C sources match .clang-format"
	else
		echo "FAIL: C sources differ from .clang-format (run make format)"
	fi
}
run_suite "style" style
run_suite "twilio sandbox" bash tests/sandbox/selftest.sh
run_suite "test harness (syslog captures side by side, shards)" python3 tests/harness/selftest.py
run_suite "test harness (OpenLDAP slapd, ldap-utils)" python3 tests/harness/selftest_slapd.py
run_suite "test harness (Redis server)" python3 tests/harness/selftest_redis.py
run_suite "end-to-end (pamtester)" python3 tests/e2e/run_e2e.py
run_suite "fault injection (strace --inject, failing allocations)" python3 tests/faults/run_faults.py
run_suite "admin command (twilio-sms-otp)" python3 tests/cli/run_cli.py
run_suite "admin command with Redis (status, unlock, check)" python3 tests/cli/run_cli_redis.py
run_suite "admin command: backup codes" python3 tests/cli/run_cli_backup.py
run_suite "install (make install, DESTDIR)" python3 tests/package/run_install.py
run_suite "Debian package (make deb, lintian, dpkg, pam-auth-update)" python3 tests/package/run_deb.py
run_suite "integration (sshd, sudo, su, chfn)" python3 tests/integration/run_integration.py
run_suite "recipes of docs/recipes.md (sshd, sudo)" python3 tests/integration/run_recipes.py
run_suite "hostile caller's signals (setuid su)" python3 tests/integration/run_signals.py
run_suite "fuzz (libFuzzer, corpus-seeded, 12 s a target)" tests/fuzz/smoke.sh
run_suite "exports" tests/analysis/exports.sh
run_suite "static analysis (cppcheck, scan-build)" tests/analysis/static.sh
run_suite "sanitizers (ASan+UBSan)" tests/analysis/sanitize.sh
run_suite "valgrind memcheck" tests/analysis/valgrind.sh

echo "$passed passed, $failed failed ($SECONDS s)"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
