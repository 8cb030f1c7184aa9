#!/bin/bash
# make demo: a real pamtester login with the SMS second factor, against the
# loopback Twilio sandbox. The "SMS" is printed in this terminal; type the code.
# Without a terminal on standard input it answers with the code itself.
# Leaves nothing behind: the service file, config and sandbox are removed.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "make demo writes /etc/pam.d/tsms-demo: run it as root" >&2; exit 1; }

dir=$(mktemp -d /tmp/tsms-demo.XXXXXX)
service=tsms-demo
sandbox_pid=
cleanup() {
	[ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
	rm -f "/etc/pam.d/$service"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 tests/sandbox/twilio_sandbox.py --dir "$dir" --echo >"$dir/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
[ -s "$dir/port" ] || { echo "the Twilio sandbox did not start" >&2; exit 1; }
port=$(cat "$dir/port")

umask 077
cat >"$dir/pam_twilio_sms.json" <<JSON
{
  "accountSID": "AC0123456789abcdef0123456789abcdef",
  "authToken": "sandbox-auth-token-0123456789",
  "fromMessagingServiceSID": "MG0123456789abcdef0123456789abcdef",
  "templates": [
    { "usageType": "SignIn", "content": "Your sign-in code is {{code}}. It expires in 5 minutes." }
  ],
  "users": { "demo": "+15555550006" },
  "apiBaseUrl": "https://127.0.0.1:$port",
  "caFile": "$dir/ca.pem",
  "stateDir": "$dir/state"
}
JSON
cat >"/etc/pam.d/$service" <<PAM
auth required $PWD/pam_twilio_sms.so config=$dir/pam_twilio_sms.json
account required pam_permit.so
PAM

echo "Demo: user 'demo' (phone +15555550006) logs in to PAM service '$service':"
echo "  auth required pam_twilio_sms.so config=$dir/pam_twilio_sms.json"
echo
if [ -t 0 ]; then
	status=0
	pamtester "$service" demo authenticate || status=$?
else
	mkfifo "$dir/answer"
	(
		for _ in $(seq 100); do [ -s "$dir/outbox.jsonl" ] && break; sleep 0.1; done
		code=$(grep -o 'code is [0-9]*' "$dir/outbox.jsonl" | tail -n 1 | grep -o '[0-9]*$')
		echo "(no terminal: answering with the code from the SMS)" >&2
		echo "$code"
	) >"$dir/answer" &
	status=0
	pamtester "$service" demo authenticate <"$dir/answer" || status=$?
fi
echo
if [ "$status" -eq 0 ]; then
	echo "Result: demo is in (PAM_SUCCESS)."
else
	echo "Result: demo is NOT in (pamtester exit $status)."
fi
exit "$status"
