#!/usr/bin/env bash
# Self-test of the Twilio sandbox with curl: bash tests/sandbox/selftest.sh
# Prints PASS:/FAIL: lines and "sandbox: N passed, N failed"; exits 1 on any failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
sandbox="$here/twilio_sandbox.py"
work=$(mktemp -d)
dir="$work/sandbox"
sid=AC0123456789abcdef0123456789abcdef
token=sandbox-auth-token-0123456789
mg=MG0123456789abcdef0123456789abcdef
pid=
bg_pids=()
passed=0
failed=0

cleanup() {
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1${2:+ ($2)}"; failed=$((failed + 1)); }
check() { # check NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

# json FILE EXPR: evaluate a Python expression over the JSON document d in FILE
# (for a .jsonl file, d is the list of its lines).
json() {
	python3 - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
text = open(sys.argv[1]).read()
d = [json.loads(l) for l in text.splitlines()] if sys.argv[1].endswith(".jsonl") else json.loads(text)
print(eval(sys.argv[2]))
EOF
}

scenario() { printf '%s\n' "$1" >"$dir/scenario"; }

# post [curl args...]: POST to the Messages endpoint; prints "HTTP_CODE CURL_EXIT",
# leaves the body in $work/body and the headers in $work/headers.
post() {
	local code rc
	code=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' --cacert "$dir/ca.pem" \
		--max-time 10 "$@" 2>"$work/curl.err")
	rc=$?
	echo "$code $rc"
}
url() { echo "https://${2:-127.0.0.1}:$port/2010-04-01/Accounts/${1:-$sid}/Messages.json"; }
send() { # send [curl args...]: a well-formed message with good credentials
	post -u "$sid:$token" "$(url)" -d "MessagingServiceSid=$mg" --data-urlencode "Body=Your code is 123456" "$@"
}
error_code() { json "$work/body" 'd["code"]'; }
# service [curl args...]: GET the Messaging Service $mg (Twilio's Messaging API) with good credentials
service_url() { echo "https://127.0.0.1:$port/v1/Services/${1:-$mg}"; }
service() { post -u "$sid:$token" "$(service_url)" "$@"; }

python3 "$sandbox" --dir "$dir" --spec /nonexistent/twilio_api_v2010.json 2>/dev/null
check "refuses to start without the OpenAPI description" 2 $?

python3 "$sandbox" --dir "$dir" --service MGnope 2>/dev/null
check "refuses a --service that is not MG and 32 hex digits" 2 $?

# The bundled excerpt must be what openapi_excerpt.py cuts from Twilio's full descriptions.
full=""
for d in "$here" "$here/.." "$here/../.." "$here/../../.."; do
	[ -f "$d/shared/twilio-oai/twilio_api_v2010.json" ] && full="$d/shared/twilio-oai"
	[ -f "$d/../shared/twilio-oai/twilio_api_v2010.json" ] && full="$d/../shared/twilio-oai"
	[ -n "$full" ] && break
done
if [ -n "$full" ]; then
	out=$(python3 "$here/openapi_excerpt.py" --check "$full/twilio_api_v2010.json" \
		"$full/twilio_messaging_v1.json" "$here/twilio-messages-openapi.json" 2>&1)
	check "bundled OpenAPI excerpt matches $full" 0 $?
else
	echo "note: Twilio's full twilio_api_v2010.json and twilio_messaging_v1.json are not beside this checkout; the bundled excerpt was not re-checked against them"
fi

python3 "$sandbox" --dir "$dir" --echo --service "$mg" 2>"$work/sandbox.log" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
port=$(cat "$dir/port" 2>/dev/null)
if [ -z "$port" ]; then
	fail "sandbox starts" "no port file; log: $(cat "$work/sandbox.log")"
	echo "sandbox: $passed passed, $failed failed"
	exit 1
fi
pass "sandbox starts and writes port $port"
check "pid file" "$pid" "$(cat "$dir/pid")"

# Normal handling
check "normal message is 201" "201 0" "$(send --data-urlencode "To=+15555550006" -d RiskCheck=disable)"
check "201 body has a message sid" True "$(json "$work/body" 'd["sid"].startswith("SM") and len(d["sid"]) == 34')"
check "201 body status accepted" accepted "$(json "$work/body" 'd["status"]')"
check "outbox records the message" "+15555550006|Your code is 123456|disable|$mg" \
	"$(json "$dir/outbox.jsonl" '"|".join([d[-1]["to"], d[-1]["body"], d[-1]["risk_check"], d[-1]["messaging_service_sid"]])')"
check "requests.jsonl records the request" "POST|True|201|ok" \
	"$(json "$dir/requests.jsonl" '"|".join(str(x) for x in (d[-1]["method"], d[-1]["auth_ok"], d[-1]["status"], d[-1]["scenario"]))')"
check "echo prints the SMS" 1 "$(grep -c 'SMS to +15555550006: Your code is 123456' "$work/sandbox.log")"
check "https://localhost is served" "201 0" "$(post -u "$sid:$token" "$(url "$sid" localhost)" \
	-d "MessagingServiceSid=$mg" -d "Body=hi" -d "To=%2B15555550006")"

check "%2B in To arrives as +" "201 0" "$(send -d "To=%2B15555550007")"
check "outbox To is +15555550007" "+15555550007" "$(json "$dir/outbox.jsonl" 'd[-1]["to"]')"
check "raw + in To is a space: 400" "400 0" "$(send -d "To=+15555550008")"
check "raw + in To: code 21211" 21211 "$(error_code)"

check "bad auth token is 401" "401 0" "$(post -u "$sid:wrong" "$(url)" -d "To=%2B15555550006" -d "MessagingServiceSid=$mg" -d "Body=x")"
check "bad auth: code 20003" 20003 "$(error_code)"
check "bad auth: more_info" "https://www.twilio.com/docs/errors/20003" "$(json "$work/body" 'd["more_info"]')"
check "bad auth is recorded with auth_ok false" False "$(json "$dir/requests.jsonl" 'd[-1]["auth_ok"]')"
check "no auth is 401" "401 0" "$(post "$(url)" -d "To=%2B15555550006")"
other=AC00000000000000000000000000000000
check "other account in path is 401" "401 0" "$(post -u "$sid:$token" "$(url $other)" -d "To=%2B15555550006" -d "MessagingServiceSid=$mg" -d "Body=x")"

check "unknown form field is 400" "400 0" "$(send -d "To=%2B15555550006" -d "Colour=blue")"
check "unknown form field: code 20001" 20001 "$(error_code)"
check "MessagingServiceSid pattern is 400" "400 0" "$(post -u "$sid:$token" "$(url)" -d "To=%2B15555550006" -d "MessagingServiceSid=MGnope" -d "Body=x")"
check "RiskCheck enum is 400" "400 0" "$(send -d "To=%2B15555550006" -d "RiskCheck=maybe")"
check "boolean type is 400" "400 0" "$(send -d "To=%2B15555550006" -d "SmartEncoded=perhaps")"
check "integer type is 400" "400 0" "$(send -d "To=%2B15555550006" -d "ValidityPeriod=soon")"
check "ValidityPeriod 0 is 400" "400 0" "$(send -d "To=%2B15555550006" -d "ValidityPeriod=0")"
check "ValidityPeriod 36001 is 400" "400 0" "$(send -d "To=%2B15555550006" -d "ValidityPeriod=36001")"
check "ValidityPeriod 300 is 201" "201 0" "$(send -d "To=%2B15555550006" -d "ValidityPeriod=300")"
check "To twice is 400" "400 0" "$(send -d "To=%2B15555550006" -d "To=%2B15555550007")"
check "missing To: 21604" "400 21604" "$(post -u "$sid:$token" "$(url)" -d "MessagingServiceSid=$mg" -d "Body=x" | cut -d' ' -f1) $(error_code)"
check "no sender: 21603" "400 21603" "$(post -u "$sid:$token" "$(url)" -d "To=%2B15555550006" -d "Body=x" | cut -d' ' -f1) $(error_code)"
check "no body: 21602" "400 21602" "$(post -u "$sid:$token" "$(url)" -d "To=%2B15555550006" -d "MessagingServiceSid=$mg" | cut -d' ' -f1) $(error_code)"
long=$(printf 'x%.0s' $(seq 1601))
check "1601-char Body: 21617" "400 21617" "$(post -u "$sid:$token" "$(url)" -d "To=%2B15555550006" -d "MessagingServiceSid=$mg" -d "Body=$long" | cut -d' ' -f1) $(error_code)"
check "1600-char Body is 201" "201 0" "$(post -u "$sid:$token" "$(url)" -d "To=%2B15555550006" -d "MessagingServiceSid=$mg" -d "Body=${long:1}")"
check "non-E.164 To: 21211" "400 21211" "$(send -d "To=555-0006" | cut -d' ' -f1) $(error_code)"
check "magic +15005550001: 21211" "400 21211" "$(send -d "To=%2B15005550001" | cut -d' ' -f1) $(error_code)"
check "magic +15005550009: 21614" "400 21614" "$(send -d "To=%2B15005550009" | cut -d' ' -f1) $(error_code)"
check "magic +15005550004: 21610" "400 21610" "$(send -d "To=%2B15005550004" | cut -d' ' -f1) $(error_code)"
check "JSON Content-Type is 400" "400 0" "$(send -H "Content-Type: application/json" -d "To=%2B15555550006")"
check "GET Messages.json is 404" "404 0" "$(post -u "$sid:$token" "$(url)")"
check "unknown path is 404 20404" "404 20404" "$(post -u "$sid:$token" "https://127.0.0.1:$port/2010-04-01/Accounts/$sid/Calls.json" -d "To=%2B15555550006" | cut -d' ' -f1) $(error_code)"

# The Messaging Service fetch (GET /v1/Services/{Sid}), as the admin command's check makes it
check "service fetch is 200" "200 0" "$(service)"
check "service body is the service" "$mg|$sid" "$(json "$work/body" 'd["sid"] + "|" + d["account_sid"]')"
check "service body has every field of the spec's schema" True "$(json "$work/body" \
	'sorted(d) == sorted(json.load(open("'"$here"'/twilio-messages-openapi.json"))["components"]["schemas"]["messaging.v1.service"]["properties"])')"
check "service fetch is recorded" "GET|/v1/Services/$mg|True|200" \
	"$(json "$dir/requests.jsonl" '"|".join(str(x) for x in (d[-1]["method"], d[-1]["path"], d[-1]["auth_ok"], d[-1]["status"]))')"
check "service fetch with a bad token is 401 20003" "401 0 20003" \
	"$(post -u "$sid:wrong" "$(service_url)") $(error_code)"
check "service fetch without auth is 401" "401 0" "$(post "$(service_url)")"
check "another service is 404 20404" "404 0 20404" \
	"$(post -u "$sid:$token" "$(service_url MGfedcba9876543210fedcba9876543210)") $(error_code)"
check "a sid off the spec's pattern is 404" "404 0 20404" "$(post -u "$sid:$token" "$(service_url MGnope)") $(error_code)"
check "POST to a service is 404" "404 0" "$(service -d "FriendlyName=x")"

# Scenarios
msg=(-d "To=%2B15555550006")
for case in "401 401 20003" "403 403 20403" "400-21211 400 21211" "429 429 20429" "500 500 20500" "503 503 20503"; do
	set -- $case
	scenario "$1"
	check "scenario $1" "$2 0 $3" "$(send "${msg[@]}") $(error_code)"
	if [ "$1" = 429 ]; then
		check "scenario 429 sends Retry-After: 1" 1 "$(grep -ci '^Retry-After: 1' "$work/headers")"
	fi
done

scenario 401
check "scenario 401 also answers the service fetch" "401 0 20003" "$(service) $(error_code)"
scenario 403
check "scenario 403 answers the service fetch" "403 0 20403" "$(service) $(error_code)"

scenario garbage
check "scenario garbage is 201" "201 0" "$(send "${msg[@]}")"
check "scenario garbage body is not JSON" "" "$(json "$work/body" 'd')"

scenario big
check "scenario big is 201" "201 0" "$(send "${msg[@]}")"
size=$(stat -c %s "$work/body")
check "scenario big body is 1 MiB" True "$([ "$size" -ge 1048576 ] && echo True || echo "$size")"

scenario drop
check "scenario drop: empty reply (curl 52)" "000 52" "$(send "${msg[@]}")"

scenario wronghost
check "scenario wronghost refused by curl (60)" "000 60" "$(send "${msg[@]}")"
check "scenario wronghost via localhost refused" "000 60" "$(post -u "$sid:$token" "$(url "$sid" localhost)" "${msg[@]}")"

# Certificates a client must refuse, each otherwise fine: the request goes through once
# the client trusts the certificate (or skips verification) and speaks the protocol.
scenario selfsigned
check "scenario selfsigned refused by curl (60)" "000 60" "$(send "${msg[@]}")"
check "selfsigned certificate is not from the sandbox CA" refused \
	"$(openssl verify -CAfile "$dir/ca.pem" "$dir/selfsigned.pem" >/dev/null 2>&1 || echo refused)"
check "selfsigned trusted as itself: 201 for the right host" "201 0" \
	"$(send "${msg[@]}" --cacert "$dir/selfsigned.pem")"

scenario expired
check "scenario expired refused by curl (60)" "000 60" "$(send "${msg[@]}")"
check "scenario expired: curl says expired" 1 "$(grep -c 'expired' "$work/curl.err")"
check "expired certificate is past its notAfter" 1 \
	"$(openssl x509 -in "$dir/expired.pem" -noout -checkend 0 >/dev/null; echo $?)"
check "expired certificate is otherwise valid from the CA" 0 \
	"$(openssl verify -no_check_time -CAfile "$dir/ca.pem" "$dir/expired.pem" >/dev/null 2>&1; echo $?)"
check "expired certificate names the right host" 1 \
	"$(openssl x509 -in "$dir/expired.pem" -noout -ext subjectAltName | grep -c 'IP Address:127.0.0.1')"

scenario tls11
check "scenario tls11 refused by default curl (35)" "000 35" "$(send "${msg[@]}")"
check "scenario tls11 refused by curl --tlsv1.2 (35)" "000 35" "$(send "${msg[@]}" --tlsv1.2)"
check "scenario tls11 speaks TLS 1.1 (curl --tls-max 1.1 at SECLEVEL=0)" "201 0" \
	"$(send "${msg[@]}" --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0')"

scenario refuse
check "scenario refuse: connection closed before TLS (35)" "000 35" "$(send "${msg[@]}")"
check "scenario refuse: no request recorded" "$(wc -l <"$dir/requests.jsonl")" \
	"$(send "${msg[@]}" >/dev/null; wc -l <"$dir/requests.jsonl")"

scenario 429:7
check "scenario 429:7 is 429" "429 0" "$(send "${msg[@]}")"
check "scenario 429:7 sends Retry-After: 7" 1 "$(grep -ci '^Retry-After: 7' "$work/headers")"

# seq: one item per connection, the last one stays
scenario seq:503,ok
check "seq:503,ok first request 503" "503 0" "$(send "${msg[@]}")"
check "seq:503,ok second request 201" "201 0" "$(send "${msg[@]}")"
check "seq:503,ok third request 201 (last item stays)" "201 0" "$(send "${msg[@]}")"
check "seq:503,ok leaves scenario ok" ok "$(cat "$dir/scenario")"
check "seq records each request's own scenario" "503|ok|ok" \
	"$(json "$dir/requests.jsonl" '"|".join(r["scenario"] for r in d[-3:])')"
scenario seq:refuse,429,500,ok
seq_got=""
for _ in 1 2 3 4; do seq_got="$seq_got $(send "${msg[@]}" | cut -d' ' -f1)"; done
check "seq:refuse,429,500,ok in order" " 000 429 500 201" "$seq_got"
scenario "seq:400-21211"
check "seq with one item stays" "400 400" "$(send "${msg[@]}" | cut -d' ' -f1) $(send "${msg[@]}" | cut -d' ' -f1)"

scenario redirect
check "scenario redirect is 302" "302 0" "$(send "${msg[@]}")"
check "scenario redirect has a Location" 1 "$(grep -ci "^Location: https://127.0.0.1:$port/" "$work/headers")"

scenario slow:1
start=$(date +%s%N)
check "scenario slow:1 is 201" "201 0" "$(send "${msg[@]}")"
check "scenario slow:1 takes a second" True "$([ $(($(date +%s%N) - start)) -ge 1000000000 ] && echo True)"

scenario typo
check "unknown scenario is 500" "500 0" "$(send "${msg[@]}")"

scenario hang
check "scenario hang: curl --max-time 2 times out (28)" "000 28" "$(send "${msg[@]}" --max-time 2)"

# A hanging request and a client that never handshakes must not block other connections.
curl -s -o /dev/null --cacert "$dir/ca.pem" --max-time 30 -u "$sid:$token" "$(url)" "${msg[@]}" \
	-d "MessagingServiceSid=$mg" -d "Body=hang" &
bg_pids+=($!)
for _ in $(seq 50); do
	[ "$(json "$dir/requests.jsonl" 'd[-1]["form"].get("Body")')" = "['hang']" ] && break
	sleep 0.1
done
exec 3<>"/dev/tcp/127.0.0.1/$port"
scenario ok
check "served while one hangs and one never handshakes" "201 0" "$(send "${msg[@]}" --max-time 5)"

start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
exec 3<&-
check "SIGTERM exits 0" 0 "$rc"
check "SIGTERM exits promptly" True "$([ $(($(date +%s%N) - start)) -lt 3000000000 ] && echo True)"
check "port file removed on exit" False "$([ -e "$dir/port" ] && echo True || echo False)"

echo "sandbox: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
