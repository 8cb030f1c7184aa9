#!/bin/bash
# Static analysis of what ships (pam_twilio_sms.c, twilio-sms-otp.c, cli/, lib/): cppcheck
# (warnings, portability, performance) and the clang static analyzer over the real build
# (scan-build --status-bugs). A proven false positive of cppcheck gets an inline
# suppression with a comment saying why; scan-build has none, so its findings are fixed.
#
# Usage: tests/analysis/static.sh   (as root on a fresh machine: installs what it needs)
set -u
# shellcheck source=tests/analysis/common.sh
. "$(dirname "$0")/common.sh"

need cppcheck clang-tools
out=tests/analysis/build-scan
rm -rf "$out"
mkdir -p "$out"
sources=(pam_twilio_sms.c lib/)
[ -f twilio-sms-otp.c ] && sources+=(twilio-sms-otp.c cli/)

# cppcheck sees what the compiler sees (-D_GNU_SOURCE, lib/ headers, the root for the admin
# command's "lib/..." includes) and uses its models of POSIX, GNU libc and libcurl, so that
# leaked handles and descriptors are tracked
name="cppcheck ${sources[*]}"
if cppcheck --error-exitcode=1 --enable=warning,portability,performance --inline-suppr \
	--std=c11 -D_GNU_SOURCE -I. -Ilib --library=posix --library=gnu --library=libcurl \
	--quiet --template='{file}:{line}: {severity}: {message} [{id}]' "${sources[@]}" \
	>"$out/cppcheck.log" 2>&1; then
	pass "$name"
else
	fail "$name" "$(grep -c '^[^ ]*:[0-9]*: ' "$out/cppcheck.log") findings" "$out/cppcheck.log"
fi

# scan-build wraps the compiler of the build (analysis.mk's rules, into build-scan/, so the
# normal build is neither reused nor touched); the HTML reports stay in build-scan/report
name="scan-build of the module, the admin command and lib/"
if scan-build --status-bugs -o "$out/report" make -s scan-build-targets \
	>"$out/scan-build.log" 2>&1; then
	pass "$name"
else
	grep -E '^[^ ]+\.[ch]:[0-9]+:[0-9]+: warning: ' "$out/scan-build.log" >"$out/findings"
	if [ -s "$out/findings" ]; then
		# the analyzer's path to each finding, as text
		cut -d: -f1 "$out/findings" | sort -u | while IFS= read -r file; do
			# shellcheck disable=SC2046 # one word per flag
			clang --analyze -Xanalyzer -analyzer-output=text -std=c11 -D_GNU_SOURCE -I. -Ilib \
				$(pkg-config --cflags libcurl libcjson libsodium) -o /dev/null "$file"
		done >"$out/paths.txt" 2>&1
		fail "$name" "$(wc -l <"$out/findings") findings (paths: $out/paths.txt)" \
			"$out/findings"
	else
		fail "$name" "the build failed under scan-build" "$out/scan-build.log"
	fi
fi
finish
