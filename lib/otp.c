/* otp.c - one-time passcodes and secret hygiene (the only libsodium user) */
#include "otp.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

int tsms_crypto_init(void)
{
	/* sodium_init is idempotent and thread-safe; 1 means already done */
	return sodium_init() < 0 ? -1 : 0;
}

int tsms_otp_generate(struct tsms_code *code, size_t len)
{
	if (len < TSMS_CODE_MIN || len > TSMS_CODE_MAX)
		return -1;
	/* one uniform digit at a time: no modulo bias, leading zeros kept */
	for (size_t i = 0; i < len; i++)
		code->digits[i] = (char)('0' + randombytes_uniform(10));
	code->digits[len] = '\0';
	code->len = len;
	return 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t tsms_answer_trim(const char *answer, const char **start)
{
	const char *end;

	while (is_space(*answer))
		answer++;
	end = answer + strlen(answer);
	while (end > answer && is_space(end[-1]))
		end--;
	*start = answer;
	return (size_t)(end - answer);
}

bool tsms_otp_matches(const struct tsms_code *code, const char *answer)
{
	if (answer == NULL || code->len == 0)
		return false;
	/* the length of the code is public (codeLength); only its digits are compared in
	 * constant time */
	if (tsms_answer_trim(answer, &answer) != code->len)
		return false;
	return sodium_memcmp(answer, code->digits, code->len) == 0;
}

unsigned tsms_random_below(unsigned n)
{
	return n > 0 ? (unsigned)randombytes_uniform((uint32_t)n) : 0;
}

int tsms_random_hex(char *out, size_t n)
{
	unsigned char buf[64];

	if (n > sizeof(buf) || tsms_crypto_init() != 0)
		return -1;
	randombytes_buf(buf, n);
	sodium_bin2hex(out, 2 * n + 1, buf, n);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void tsms_digest_hex(const char *secret, const char *text, char out[TSMS_DIGEST_HEX])
{
	unsigned char digest[16];
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof(digest));
	if (secret != NULL)
		crypto_generichash_update(&st, (const unsigned char *)secret, strlen(secret) + 1);
	else
		crypto_generichash_update(&st, (const unsigned char *)"", 1);
	crypto_generichash_update(&st, (const unsigned char *)text, strlen(text));
	crypto_generichash_final(&st, digest, sizeof(digest));
	sodium_bin2hex(out, TSMS_DIGEST_HEX, digest, sizeof(digest));
	sodium_memzero(&st, sizeof(st));
}

bool tsms_same_secret(const char *a, const char *b)
{
	size_t n;

	if (a == NULL || b == NULL || (n = strlen(a)) != strlen(b))
		return false;
	return sodium_memcmp(a, b, n) == 0;
}

/* The key of this process's passes: made at the first pass, never leaves. */
static unsigned char pass_key[crypto_generichash_KEYBYTES];
static bool pass_key_made;

static void pass_tag(const char *user, const void *handle, long long when,
                     unsigned char tag[TSMS_PASS_TAG])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, pass_key, sizeof(pass_key), TSMS_PASS_TAG);
	crypto_generichash_update(&st, (const unsigned char *)user, strlen(user) + 1);
	crypto_generichash_update(&st, (const unsigned char *)&handle, sizeof(handle));
	crypto_generichash_update(&st, (const unsigned char *)&when, sizeof(when));
	crypto_generichash_final(&st, tag, TSMS_PASS_TAG);
	sodium_memzero(&st, sizeof(st));
}

int tsms_pass_make(struct tsms_pass *p, const char *user, const void *handle)
{
	if (tsms_crypto_init() != 0)
		return -1;
	if (!pass_key_made) {
		randombytes_buf(pass_key, sizeof(pass_key));
		pass_key_made = true;
	}
	p->when = tsms_clock_ms();
	pass_tag(user, handle, p->when, p->tag);
	return 0;
}

bool tsms_pass_valid(const struct tsms_pass *p, const char *user, const void *handle,
                     unsigned max_age_seconds)
{
	unsigned char tag[TSMS_PASS_TAG];
	long long age = tsms_clock_ms() - p->when;
	bool ok;

	if (!pass_key_made || age < 0 || age > max_age_seconds * 1000LL)
		return false;
	pass_tag(user, handle, p->when, tag);
	ok = sodium_memcmp(tag, p->tag, sizeof(tag)) == 0;
	sodium_memzero(tag, sizeof(tag));
	return ok;
}

/* Argon2id at 4 MiB and 2 passes: about 3 ms a check on a current core. Backup
 * codes carry 40 random bits; the hash only has to make each guess cost. */
#define SECRET_OPSLIMIT 2ULL
#define SECRET_MEMLIMIT ((size_t)4 << 20)

int tsms_secret_hash(const char *secret, char out[TSMS_HASH_MAX])
{
	_Static_assert(TSMS_HASH_MAX == crypto_pwhash_STRBYTES, "TSMS_HASH_MAX");
	return crypto_pwhash_str_alg(out, secret, strlen(secret), SECRET_OPSLIMIT, SECRET_MEMLIMIT,
	                             crypto_pwhash_ALG_ARGON2ID13) == 0
	               ? 0
	               : -1;
}

bool tsms_secret_hash_valid(const char *hash)
{
	/* needs_rehash parses the whole string: -1 when it is no Argon2id hash, 1 with
	 * other limits (not ours: a damaged file must not make a login allocate
	 * gigabytes) */
	return strlen(hash) < TSMS_HASH_MAX &&
	       strncmp(hash, crypto_pwhash_argon2id_STRPREFIX,
	               strlen(crypto_pwhash_argon2id_STRPREFIX)) == 0 &&
	       crypto_pwhash_str_needs_rehash(hash, SECRET_OPSLIMIT, SECRET_MEMLIMIT) == 0;
}

bool tsms_secret_verify(const char *hash, const char *secret)
{
	if (!tsms_secret_hash_valid(hash))
		return false;
	return crypto_pwhash_str_verify(hash, secret, strlen(secret)) == 0;
}

bool tsms_secret_works(void)
{
	char hash[TSMS_HASH_MAX];

	return tsms_secret_hash("tsms-self-test", hash) == 0 &&
	       tsms_secret_verify(hash, "tsms-self-test");
}

void tsms_otp_wipe(struct tsms_code *code)
{
	sodium_memzero(code, sizeof(*code));
}

void tsms_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

void tsms_free_secret(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}
