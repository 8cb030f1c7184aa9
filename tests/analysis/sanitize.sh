#!/bin/bash
# Sanitizers: the module, the admin command, lib/ and the unit tests built with ASan+UBSan
# (-fno-sanitize-recover=all, into build-asan/), then the unit tests, the whole end-to-end
# suite (pamtester through real libpam) against that module, and the admin command's suite
# against that command. Any ASan, UBSan or LeakSanitizer report fails the run: the runtimes
# exit with their own status (86, 87), which fails the case, and the report files and the
# outputs are searched afterwards. Planted bugs (canary.c) first prove each checker reports.
#
# Usage: tests/analysis/sanitize.sh [-k PATTERN]   (-k selects e2e cases, as run_e2e.py)
set -u
# shellcheck source=tests/analysis/common.sh
. "$(dirname "$0")/common.sh"

need gcc binutils
work=$(mktemp -d /tmp/tsms-sanitize.XXXXXX)
trap 'rm -rf "$work"' EXIT
build=tests/analysis/build-asan
module=$(pwd)/$build/pam_twilio_sms.so

# the normal build too: the e2e suite's helpers (pam_client, twilio-sms-otp) come from it
if make -s -j2 all asan-build >"$work/build.log" 2>&1; then
	pass "asan+ubsan build"
else
	fail "asan+ubsan build" "make all asan-build failed" "$work/build.log"
	finish
fi

# the gcc runtime the build linked; pamtester is not instrumented, so it is preloaded
libasan=$(${CC:-cc} -print-file-name=libasan.so)
if [ ! -f "$libasan" ]; then
	fail "asan runtime" "${CC:-cc} -print-file-name=libasan.so found none (the build needs gcc)"
	finish
fi

# sanitizer options: $1 is the report file prefix (the runtime appends .PID). GCC 12's
# libubsan beside libasan ignores log_path and reports on stderr, so outputs are searched too.
SAN_REPORT='AddressSanitizer|LeakSanitizer|runtime error:'
san_env() {
	local asan=exitcode=86:log_path=$1:detect_stack_use_after_return=1
	echo "ASAN_OPTIONS=$asan:check_initialization_order=1:strict_init_order=1"
	echo "UBSAN_OPTIONS=exitcode=87:halt_on_error=1:print_stacktrace=1:log_path=$1"
}

# reports FILE_PREFIX: sets the array found to the report files written under that prefix
reports() {
	mapfile -t found < <(compgen -G "$1.*")
}

# no_reports LABEL FILE_PREFIX OUTPUT: one verdict on every run of a harness: no report file
# under the prefix, and no report in the output (where UBSan's go; -v prints each run's)
no_reports() {
	reports "$2"
	grep -E "$SAN_REPORT" "$3" >"$2.inline"
	if [ "${#found[@]}" -eq 0 ] && [ ! -s "$2.inline" ]; then
		pass "$1: no ASan, UBSan or LeakSanitizer report from any run"
	else
		cat "${found[@]}" >>"$2.inline"
		fail "$1: no ASan, UBSan or LeakSanitizer report from any run" \
			"${#found[@]} report files, $(grep -cE "$SAN_REPORT" "$3") in the output" "$2.inline"
	fi
}

# ---- canaries: each planted bug must be reported, the clean run must not be
mkdir -p "$work/canary"
for bug in clean heap-overflow use-after-free shift-overflow leak; do
	mapfile -t envs < <(san_env "$work/canary/$bug.report")
	env "${envs[@]}" "$build/canary" "$bug" >"$work/canary/$bug.out" 2>&1
	rc=$?
	reports "$work/canary/$bug.report"
	if [ "$bug" = clean ]; then
		if [ "$rc" -eq 0 ] && [ "${#found[@]}" -eq 0 ] &&
			! grep -qE "$SAN_REPORT" "$work/canary/$bug.out"; then
			pass "canary: a clean run reports nothing"
		else
			fail "canary: a clean run reports nothing" "exit $rc, ${#found[@]} reports" \
				"$work/canary/$bug.out"
		fi
	elif [ "$rc" -ne 0 ] &&
		cat "${found[@]}" "$work/canary/$bug.out" | grep -qE "$SAN_REPORT"; then
		pass "canary: $bug is reported (exit $rc)"
	else
		fail "canary: $bug is reported" "exit $rc and no report: the checker is off" \
			"$work/canary/$bug.out"
	fi
done

# ---- unit tests
mkdir -p "$work/unit"
for t in "$build"/tests/unit/test_*; do
	name=$(basename "$t")
	mapfile -t envs < <(san_env "$work/unit/$name.report")
	env "${envs[@]}" CMOCKA_MESSAGE_OUTPUT=TAP TSMS_FIXTURES=tests/fixtures "$t" \
		>"$work/unit/$name.out" 2>&1
	rc=$?
	reports "$work/unit/$name.report"
	oks=$(grep -c '^ok ' "$work/unit/$name.out")
	if [ "${#found[@]}" -gt 0 ] || grep -qE "$SAN_REPORT" "$work/unit/$name.out"; then
		cat "${found[@]}" "$work/unit/$name.out" >"$work/unit/$name.reports"
		fail "asan unit $name" "sanitizer report (exit $rc)" "$work/unit/$name.reports"
	elif [ "$rc" -ne 0 ] || grep -q '^not ok ' "$work/unit/$name.out"; then
		fail "asan unit $name" "exit $rc" "$work/unit/$name.out"
	else
		pass "asan unit $name ($oks tests)"
	fi
done

# ---- end-to-end against the ASan module
# Preloaded with the runtime: the module's dependencies that have thread-local storage.
# pam_end() dlcloses the module, which unloads them; GCC 12's LeakSanitizer then crashes
# at exit walking their freed dynamic TLS ("Tracer caught signal 11", a known runtime bug),
# which would hide every leak report. Kept loaded, they leave nothing to walk. The module
# itself is still unloaded as in production: a leak it made shows as "<unknown module>"
# frames here; valgrind.sh names them.
preload=$libasan
for lib in $(ldd "$module" | awk '$3 ~ /^\// { print $3 }'); do
	case "$(basename "$lib")" in libc.so.* | libasan.so.*) continue ;; esac
	if readelf -lW "$lib" | grep -qE '^ +TLS '; then
		preload=$preload:$lib
	fi
done
mkdir -p "$work/e2e"
mapfile -t envs < <(san_env "$work/e2e/report")
export TSMS_MODULE=$module
export TSMS_E2E_PREFIX="env LD_PRELOAD=$preload ${envs[*]}"
harness "asan e2e" "$work/e2e/out" python3 tests/e2e/run_e2e.py -v "$@"
no_reports "asan e2e" "$work/e2e/report" "$work/e2e/out"

# ---- the admin command's suite against its ASan build
if [ -f twilio-sms-otp.c ]; then
	mkdir -p "$work/cli"
	mapfile -t envs < <(san_env "$work/cli/report")
	TSMS_TOOL=$(pwd)/$build/twilio-sms-otp
	export TSMS_TOOL
	export TSMS_CLI_PREFIX="env ${envs[*]}"
	harness "asan cli" "$work/cli/out" python3 tests/cli/run_cli.py -v
	no_reports "asan cli" "$work/cli/report" "$work/cli/out"
fi
finish
