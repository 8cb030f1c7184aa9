#!/bin/bash
# Valgrind memcheck: the unit tests, the end-to-end suite (PAM clients through real libpam
# with the normal ./pam_twilio_sms.so, dlclosed by pam_end as in production) and the admin
# command's suite, with zero errors and zero definite leaks in every process. Planted bugs
# (canary.c) first prove that these options report.
#
# Valgrind makes each pamtester run about a second slower (start-up and the exit leak scan),
# so run_e2e.py gets TSMS_E2E_SLACK seconds on each timing check: the hang cases still fail
# when the timeout never fires (the sandbox then never answers), and the plain suite keeps
# the strict timeoutSeconds + 1.5 s bound.
#
# Usage: tests/analysis/valgrind.sh [-k PATTERN]   (-k selects e2e cases, as run_e2e.py)
#   TSMS_VALGRIND_CLI=1    also the admin command's suite (tests/cli/run_cli.py)
#   TSMS_VALGRIND_SLACK=S  seconds granted to each e2e timing check (default 3)
set -u
# shellcheck source=tests/analysis/common.sh
. "$(dirname "$0")/common.sh"

SLACK=${TSMS_VALGRIND_SLACK:-3}
need valgrind
work=$(mktemp -d /tmp/tsms-valgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT

if make -s -j2 all unit tests/analysis/build/canary >"$work/build.log" 2>&1; then
	pass "build of the module, the unit tests and the canary"
else
	fail "build of the module, the unit tests and the canary" "make failed" "$work/build.log"
	finish
fi

# --keep-debuginfo: leaks allocated by the module are still named after pam_end dlclosed it
VG=(valgrind --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite
	--show-leak-kinds=definite --keep-debuginfo=yes --num-callers=30)

# clean LOG: every summary in the log (a forked child adds its own) says no errors;
# definite leaks count as errors here
clean() {
	grep -q 'ERROR SUMMARY: 0 errors' "$1" && ! grep -q 'ERROR SUMMARY: [1-9]' "$1"
}

# ---- canaries: each planted bug must be reported, the clean run must not be
for bug in clean use-after-free uninitialised leak; do
	log=$work/canary-$bug.log
	"${VG[@]}" --log-file="$log" tests/analysis/build/canary "$bug" >/dev/null 2>&1
	rc=$?
	if [ "$bug" = clean ]; then
		if [ "$rc" -eq 0 ] && clean "$log"; then
			pass "canary: a clean run reports nothing"
		else
			fail "canary: a clean run reports nothing" "exit $rc" "$log"
		fi
	elif [ "$rc" -eq 97 ] && ! clean "$log"; then
		pass "canary: $bug is reported"
	else
		fail "canary: $bug is reported" "exit $rc and no error in the log" "$log"
	fi
done

# ---- unit tests
for t in tests/unit/test_*; do
	case "$t" in *.c | *.h) continue ;; esac
	[ -x "$t" ] || continue
	name=$(basename "$t")
	log=$work/unit-$name.log
	CMOCKA_MESSAGE_OUTPUT=TAP TSMS_FIXTURES=tests/fixtures "${VG[@]}" --log-file="$log" "$t" \
		>"$work/unit-$name.out" 2>&1
	rc=$?
	if ! clean "$log"; then
		fail "valgrind unit $name" "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$log" | sort -u)" \
			"$log"
	elif [ "$rc" -ne 0 ] || grep -q '^not ok ' "$work/unit-$name.out"; then
		fail "valgrind unit $name" "exit $rc" "$work/unit-$name.out"
	else
		pass "valgrind unit $name ($(grep -c '^ok ' "$work/unit-$name.out") tests)"
	fi
done

# vg_logs LABEL DIR: one verdict on the memcheck logs in DIR (one per process). A log names
# its command (for the e2e suite: pamtester SERVICE USER, the service named for the case); a
# process that a harness killed leaves no summary, and its case has failed already.
vg_logs() {
	local label=$1 runs=0 killed=0 bad=0 log note=""
	for log in "$2"/vg.*; do
		[ -e "$log" ] || continue
		runs=$((runs + 1))
		if ! grep -q 'ERROR SUMMARY: ' "$log"; then
			killed=$((killed + 1))
		elif ! clean "$log"; then
			bad=$((bad + 1))
			fail "$label memcheck: $(sed -n 's/^==[0-9]*== Command: //p' "$log")" \
				"$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$log" | sort -u)" "$log"
		fi
	done
	if [ "$runs" -eq 0 ]; then
		fail "$label memcheck" "no process ran under valgrind (command prefix ignored?)"
	elif [ "$bad" -eq 0 ]; then
		[ "$killed" -gt 0 ] && note=" ($killed killed by the harness, unchecked)"
		pass "$label memcheck: $runs runs, 0 errors, 0 definite leaks$note"
	fi
}

# ---- end-to-end: every PAM client run (pamtester, pam_client) under memcheck
# Valgrind is CPU-bound and many cases wait out windows and cooldowns, so the cases run in
# one harness per core (each has its own sandbox, syslog socket and PAM service names; each
# claims its next case as it goes: common.sh's shards). Some cases run in the plain and
# sanitizer suites only (ASan's LeakSanitizer checks their leaks there), each for a reason:
# - concurrent_*: 50 PAM clients at once, which under valgrind on 2 cores outlast the
#   per-run limit and the Twilio timeout;
# - files_and_redis_agree: 138 logins comparing the two state stores' verdicts (about 6
#   minutes of one shard at 2.6 s a login), on paths the Redis and limits cases run here;
# - policy over paths run here already, each a minute or more of memcheck: leading_zero_code
#   (logins until a code starts with 0: the wrong-then-right path, ten on average),
#   fail2ban_* (fail2ban's filter on the wrong-code lines), the backup codes' send limits,
#   lockout, revocation, reuse and unsafe files (the backup code paths, the file's checks
#   and the lockout are run here by the other backup cases), and the config's key ranges
#   (config_new_keys_validated, config_grace_keys_validated: one refused config a login,
#   the parser's every refusal runs under memcheck in test_config).
# -k PATTERN selects cases as run_e2e.py's -k does.
NOT_UNDER_MEMCHECK=(
	'concurrent_.*' files_and_redis_agree leading_zero_code 'fail2ban_.*'
	backup_prompt_when_send_limited backup_wrong_codes_lock_out backup_codes_revoked
	backup_code_reuse_refused backup_file_unsafe_fails_closed
	config_new_keys_validated config_grace_keys_validated
)
mkdir -p "$work/e2e"
export TSMS_E2E_PREFIX="${VG[*]} --log-file=$work/e2e/vg.%p"
export TSMS_E2E_SLACK=$SLACK
pattern="^(?!($(IFS='|'; echo "${NOT_UNDER_MEMCHECK[*]}"))\$)"
[ "${1:-}" = -k ] && pattern=$2
shards "valgrind e2e" "$work/e2e.out" python3 tests/e2e/run_e2e.py -k "$pattern"
vg_logs "valgrind e2e" "$work/e2e"

# ---- the admin command's suite, every run of the command under memcheck: about 3 more
# minutes, so on request (make valgrind); sanitize.sh always runs it under ASan+UBSan
if [ "${TSMS_VALGRIND_CLI:-0}" = 1 ] && [ -f twilio-sms-otp.c ]; then
	mkdir -p "$work/cli"
	export TSMS_CLI_PREFIX="${VG[*]} --log-file=$work/cli/vg.%p"
	harness "valgrind cli" "$work/cli.out" python3 tests/cli/run_cli.py
	vg_logs "valgrind cli" "$work/cli"
fi
finish
