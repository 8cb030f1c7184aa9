#!/bin/bash
# Regenerates the committed seed corpora in tests/fuzz/corpus/<target>/ from
# tests/fixtures/ (files named fixture-*) and the hand-made cases below.
# Run it after adding fixtures; inputs kept by `make fuzz-merge` stay untouched.
set -eu
cd "$(dirname "$0")/../.."
fix=tests/fixtures
out=tests/fuzz/corpus
mkdir -p "$out/config" "$out/twilio" "$out/template" "$out/phone" "$out/users" "$out/backup"
rm -f "$out"/*/fixture-* "$out"/*/seed-*

# config: every config fixture as it is
for f in "$fix"/config-*.json; do
	cp "$f" "$out/config/fixture-$(basename "$f")"
done

creds='"accountSID": "AC0123456789abcdef0123456789abcdef",
  "authToken": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  "fromMessagingServiceSID": "MGfedcba9876543210fedcba9876543210"'
valid_head="$creds,
  \"templates\": [{\"usageType\": \"SignIn\", \"content\": \"Your code is {{code}}\"}]"
printf '{%s}\n' "$valid_head" >"$out/config/seed-minimal-valid.json"
cat >"$out/config/seed-abuse-keys.json" <<JSON
{
  $valid_head,
  "users": {"alice": "+15555550006", "bob": "+15555550007"},
  "sendLimit": 5, "sendWindowSeconds": 900, "resendCooldownSeconds": 30,
  "globalSendLimit": 1000000, "maxResends": 0, "lockoutThreshold": 1000,
  "lockoutSeconds": 86400, "maxRetries": 5, "stateDir": "/var/lib/pam_twilio_sms",
  "allowedCountryCodes": ["+1", "+44", "+9999"]
}
JSON
cat >"$out/config/seed-edge-values.json" <<JSON
{
  $valid_head,
  "codeLength": 10, "codeTtlSeconds": 3600.0, "maxAttempts": 1e1, "timeoutSeconds": 60,
  "apiBaseUrl": "https://127.0.0.1:8443///", "caFile": "/", "failMode": "closed",
  "disableRiskCheck": false, "users": {"\u00e9l\u00e8ve": "+1 555-555-0008"}
}
JSON
printf '{%s, "users": {"a": "+15555550006", "a": "+15555550007"}}\n' "$valid_head" \
	>"$out/config/seed-duplicate-user-key.json"
printf '{%s, "usersFile": "/etc/security/pam_twilio_sms.users", "users": {}}\n' "$valid_head" \
	>"$out/config/seed-users-file.json"
printf '{%s, "templates": [{"usageType": "Generic", "content": "{{code}}"}, {"content": "{{code}}", "usageType": "Generic"}]}\n' \
	"$creds" >"$out/config/seed-two-generic-templates.json"
printf '{"templates": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}' \
	>"$out/config/seed-nesting.json"
printf '{"accountSID": "AC\\u0000", "authToken": "\\ud83d\\ude00", "users": {"": 1}}' \
	>"$out/config/seed-escapes.json"
printf '{%s, "redis": {"url": "redis://[::1]:6380/2", "username": "pam", "password": "pw", "keyPrefix": "fleet:", "timeoutSeconds": 10}}\n' \
	"$valid_head" >"$out/config/seed-redis-tcp.json"
printf '{%s, "redis": {"url": "unix:///run/redis/redis-server.sock?db=1"}}\n' "$valid_head" \
	>"$out/config/seed-redis-unix.json"
cat >"$out/config/seed-host-and-base.json" <<'JSON'
{"accountSID":"AC0123456789abcdef0123456789abcdef","authToken":"t","apiKeySecret":"s","fromMessagingServiceSID":"MGfedcba9876543210fedcba9876543210","host":"api.twilio.com","apiBaseUrl":"https://api.twilio.com","templates":[{"usageType":"SignIn","content":"Code {{code}}"}]}
JSON
cat >"$out/config/seed-host-api-key-proxy.json" <<'JSON'
{"accountSID":"AC0123456789abcdef0123456789abcdef","apiKeySID":"SK0123456789abcdef0123456789abcdef","apiKeySecret":"secret","fromMessagingServiceSID":"MGfedcba9876543210fedcba9876543210","host":"API.Dublin.IE1.twilio.com","proxy":"https://user:pw@proxy.example.com:3128","caFile":"/etc/ssl/certs/ca-certificates.crt","templates":[{"usageType":"SignIn","content":"Code {{code}}"}]}
JSON
cat >"$out/config/seed-ldap.json" <<'JSON'
{"accountSID":"AC0123456789abcdef0123456789abcdef","authToken":"t","fromMessagingServiceSID":"MGfedcba9876543210fedcba9876543210","templates":[{"usageType":"SignIn","content":"Code {{code}}"}],"ldap":{"uri":"ldap://a ldap://b:389","baseDN":"ou=people,dc=example,dc=com","bindDN":"cn=r","bindPassword":"p","filter":"(&(objectClass=inetOrgPerson)(uid=%u))","attribute":"mobile","timeoutSeconds":5}}
JSON

# twilio: "<status>\n" then the body; the status is in the fixture's name
for f in "$fix"/twilio-*; do
	name=$(basename "$f")
	status=$(echo "$name" | sed -n 's/^twilio-\([0-9][0-9][0-9]\).*/\1/p')
	if [ -z "$status" ]; then
		for status in 201 400; do
			{ echo "$status"; cat "$f"; } >"$out/twilio/fixture-$status-$name"
		done
	else
		{ echo "$status"; cat "$f"; } >"$out/twilio/fixture-$name"
	fi
done
printf '201\n{"sid": "MM0123456789abcdef0123456789abcdef", "status": "accepted"}' \
	>"$out/twilio/seed-201-mms-sid"
printf '201\n{"sid": "SM0123456789abcdef0123456789abcdef0", "status": "queued\\u0007"}' \
	>"$out/twilio/seed-201-sid-too-long"
printf '400\n{"code": 21211, "message": "The \\u0000 number +15005550001 or 123456789012345678 \\u001b[0m"}' \
	>"$out/twilio/seed-400-nul-and-numbers"
printf '400\n{"code": -1, "message": 12}' >"$out/twilio/seed-400-bad-types"
printf '400\n{"code": 1e300, "message": "\\ud800"}' >"$out/twilio/seed-400-huge-code"
printf '429\n' >"$out/twilio/seed-429-empty"
printf '0\n[]' >"$out/twilio/seed-0-array"
printf '{"sid": "SMabc"}' >"$out/twilio/seed-no-status-line"

# template: one byte chooses the code length (TSMS_CODE_MIN + byte % 7), then the text
seed_template() {
	printf "\\x$1%s" "$3" >"$out/template/seed-$2"
}
seed_template 02 plain 'Your sign-in code is {{code}}'
seed_template 06 spaces '{{   code }} is your code; {{code  }} again'
seed_template 00 nested '{{{{code}}}} {{{code}}} {{co{{code}}de}}'
seed_template 03 near-misses '{{cod}} {code} {{ CODE }} {{code} }} {{code}'
seed_template 05 utf8 'Votre code : {{code}} — 認証コード {{ code }} 🔐'
seed_template 01 only '{{code}}{{code}}{{code}}{{code}}'
seed_template 04 empty ''

# phone: numbers as users write them, and free text with numbers
seed_phone() {
	printf '%s' "$2" >"$out/phone/seed-$1"
}
seed_phone e164 '+15555550006'
seed_phone no-plus '15555550007'
seed_phone separators '+1 555-555-0008'
seed_phone leading-spaces '   +44 7700 900123'
seed_phone too-short '+123456'
seed_phone too-long '+1234567890123456'
seed_phone leading-zero '+0123456789'
seed_phone double-plus '++15555550006'
seed_phone twilio-text "The 'To' number +15005550001 is not a valid phone number."
seed_phone runs '123456 1234567 +123456789012345 1234567890123456 ++1234567+7654321'

# users: the name to look up, a newline, then the users file (printf %b escapes)
seed_users() {
	printf '%s\n%b' "$2" "$3" >"$out/users/seed-$1"
}
seed_users found alice '# user +E164number
alice +15555550006
bob +15555550007
'
seed_users no-plus alice 'alice 2025550143
bob +1 (202) 555-0188
'
seed_users blanks bob '
\t  bob\t+1 555-555-0008 \r
# bob +15555550009
'
seed_users twice carol 'carol +15555550006
carol +15555550007
'
seed_users malformed dave 'dave +15555550006 trailing
'
seed_users prefix-names al 'alice +15555550006
al +15555550007
alx +15555550008'
seed_users absent eve 'alice +15555550006
'
# lines around the reader's 16 KiB buffer: one that fits, one that is cut
{
	printf 'alice\n'
	head -c 16370 /dev/zero | tr '\0' '#'
	printf '\nalice +15555550006\n'
} >"$out/users/seed-line-fits"
{
	printf 'alice\nalice +15555550006 '
	head -c 20000 /dev/zero | tr '\0' ' '
	printf '\nbob +15555550007\n'
} >"$out/users/seed-line-cut"
# backup: the user, a newline, the typed answer, a newline, then the backup codes
# file (printf %b escapes). Real codes and hashes, made once by `twilio-sms-otp
# backup-codes` on a scratch config (also in fuzz_backup.c and backup.dict):
# 3h3a-j4xn and kefu-52ka for alice, fzrj-95gx for bob.
h1='$argon2id$v=19$m=4096,t=2,p=1$wDlzHQkQloarz38wOxrCHg$+qz6JaGa9/YV24Bb2Jibq1V5eXRoqjW1xb1UjzZQtpM'
h2='$argon2id$v=19$m=4096,t=2,p=1$r830KKJ6CKWxIM8fHcdZ5Q$veMAHzGOu6k1A1Mw225W+8tl7Sve22w43xv4Yeeh05Q'
h3='$argon2id$v=19$m=4096,t=2,p=1$VvHPIvgXdgwzg+7ic3h7RA$B7QIzh6pWxoEnd4FIgzrtq6Zjp+B9gd6dsYJeMLTSyg'
seed_backup() {
	printf '%s\n%b\n%b' "$2" "$3" "$4" >"$out/backup/seed-$1"
}
seed_backup empty alice 3h3a-j4xn ''
seed_backup comments alice 3h3a-j4xn '# USER HASH HASH ...\n\n   # alice '"$h1"'\n\t\r\n'
seed_backup two-real alice 'kefu-52ka' "# backup codes\\nalice $h1 $h2\\nbob $h3\\n"
seed_backup last-code bob ' FZRJ95GX\r' "alice $h1 $h2\\nbob $h3"
seed_backup wrong-code alice 2345-6789 "alice $h1 $h2\\n"
seed_backup wrong-user carol 3h3a-j4xn "alice $h1 $h2\\nbob $h3\\n"
seed_backup blanks alice '\t3H3A-J4XN ' " \\t alice\\t $h1 \\t $h2 \\r\\n\\n"
seed_backup duplicates alice 3h3a-j4xn "alice $h1\\nbob $h3\\nalice $h2\\n"
seed_backup same-hash-twice alice 3h3a-j4xn "alice $h1 $h1\\n"
seed_backup no-hashes alice k7mq-3xfa 'alice\nbob   \n'
seed_backup garbage alice k7mq3xfa- 'alice $argon2id$v=19$m=999999,t=99,p=1$AAAA$BBBB\nbob not-a-hash\n\0\377\r\n#\n'
seed_backup bad-name 'al ice' 3h3a-j4xn "al ice $h1\\nal $h3\\n"
{
	printf 'alice\nkefu-52ka\nalice $argon2id$'
	head -c 200 /dev/zero | tr '\0' 'A'
	printf ' %s\n' "$h2"
} >"$out/backup/seed-long-hash"
echo "seeds written to $out/"
