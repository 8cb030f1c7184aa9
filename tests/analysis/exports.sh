#!/bin/bash
# Exports: the module loads with RTLD_NOW (every symbol it needs resolves), provides
# pam_sm_authenticate, pam_sm_setcred and the session hook's pam_sm_open_session and
# pam_sm_close_session (exports.c), and its dynamic symbol table defines
# nothing else: lib/ is a static archive built with -fvisibility=hidden.
#
# Usage: tests/analysis/exports.sh [MODULE.so]   (default: ./pam_twilio_sms.so, made first)
set -u
# shellcheck source=tests/analysis/common.sh
. "$(dirname "$0")/common.sh"

need binutils
module=${1:-}
if [ -z "$module" ]; then
	module=pam_twilio_sms.so
	make -s all || { fail "build" "make all failed"; finish; }
fi
make -s tests/analysis/build/exports || { fail "build" "exports.c did not build"; finish; }
# a name without '/' would make dlopen search the library path
case "$module" in */*) ;; *) module=./$module ;; esac

out=tests/analysis/build/exports.out
tests/analysis/build/exports "$module" >"$out" 2>&1
rc=$?
grep -E '^(PASS|FAIL): ' "$out"
passed=$((passed + $(grep -c '^PASS: ' "$out")))
failed=$((failed + $(grep -c '^FAIL: ' "$out")))
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL: ' "$out"; then
	fail "dlopen test" "exited $rc" "$out"
fi

# every symbol the module defines for others, as "TYPE NAME"
if ! symbols=$(nm -D --defined-only "$module" | awk '{ print $(NF - 1), $NF }'); then
	fail "dynamic symbol table" "nm -D failed on $module"
	finish
fi
entry='pam_sm_authenticate|pam_sm_setcred|pam_sm_open_session|pam_sm_close_session'
extra=$(echo "$symbols" | grep -vxE "T ($entry)" | paste -sd ' ')
if [ -z "$extra" ]; then
	pass "exports only the pam_sm_ entry points"
else
	fail "exports only the pam_sm_ entry points" "also exports: $extra"
fi
for sym in pam_sm_authenticate pam_sm_setcred pam_sm_open_session pam_sm_close_session; do
	if echo "$symbols" | grep -qx "T $sym"; then
		pass "dynamic symbol table defines $sym as a function"
	else
		fail "dynamic symbol table defines $sym as a function" "not in nm -D --defined-only"
	fi
done
finish
