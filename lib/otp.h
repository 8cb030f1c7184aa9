/* otp.h - one-time passcodes and secret hygiene (the only libsodium user) */
#ifndef TSMS_OTP_H
#define TSMS_OTP_H

#include <stdbool.h>
#include <stddef.h>

#define TSMS_CODE_MIN 4
#define TSMS_CODE_MAX 10

struct tsms_code {
	char digits[TSMS_CODE_MAX + 1];
	size_t len;
};

/* Initialises libsodium; safe to call any number of times, from any thread.
 * Returns 0, or -1 when no randomness is available. */
int tsms_crypto_init(void);

/* Fills code with len (TSMS_CODE_MIN..TSMS_CODE_MAX) uniformly random decimal
 * digits, leading zeros kept. Returns 0, or -1 for a bad length. */
int tsms_otp_generate(struct tsms_code *code, size_t len);

/* Where answer starts without the white space around it (*start), and its
 * length then: the rule for every code typed at a prompt. */
size_t tsms_answer_trim(const char *answer, const char **start);

/* Compares answer, with surrounding white space ignored, to code in time that
 * does not depend on where they differ. NULL answer never matches. */
bool tsms_otp_matches(const struct tsms_code *code, const char *answer);

/* True when a and b are the same string, compared in time that does not
 * depend on where they differ (their lengths aside). NULL equals nothing. */
bool tsms_same_secret(const char *a, const char *b);

/* A uniformly random number below n (n > 0). */
unsigned tsms_random_below(unsigned n);

/* Writes 2 * n random hex digits and a NUL to out (the session grace's nonce,
 * lib/grace.h). Returns 0, or -1 when no randomness is available. */
int tsms_random_hex(char *out, size_t n);

/* Size of the hex digest written by tsms_digest_hex */
#define TSMS_DIGEST_HEX 33

/* Writes 32 hex digits of BLAKE2b-128 over secret (may be NULL), a zero byte and
 * text: a stable name for text that reveals nothing of it. */
void tsms_digest_hex(const char *secret, const char *text, char out[TSMS_DIGEST_HEX]);

/* A pass: proof, inside this process, that a user answered a challenge right
 * in one PAM transaction (named by its handle's address) at a moment of the
 * monotonic clock. Its tag is keyed by a random key made once per process and
 * kept in the module's memory, so that nothing another module or the
 * application can write passes for one. */
#define TSMS_PASS_TAG 32
struct tsms_pass {
	long long when; /* tsms_clock_ms (lib/clock.h) */
	unsigned char tag[TSMS_PASS_TAG];
};

/* Makes p a pass for user in the transaction handle, now. 0, or -1 when no
 * randomness is available for the key. */
int tsms_pass_make(struct tsms_pass *p, const char *user, const void *handle);

/* True when p is a pass this process made for user in handle at most
 * max_age_seconds ago. */
bool tsms_pass_valid(const struct tsms_pass *p, const char *user, const void *handle,
                     unsigned max_age_seconds);

/* Size of a secret's stored hash (crypto_pwhash_STRBYTES). */
#define TSMS_HASH_MAX 128

/* Writes to out the Argon2id hash of secret (crypto_pwhash_str, with limits small
 * enough that checking one costs a few milliseconds: for secrets with enough
 * entropy of their own, such as backup codes). Returns 0, or -1. */
int tsms_secret_hash(const char *secret, char out[TSMS_HASH_MAX]);

/* True when hash is a well-formed hash of tsms_secret_hash (its algorithm and
 * limits), without checking any secret against it. */
bool tsms_secret_hash_valid(const char *hash);

/* True when secret matches hash (an Argon2id string of tsms_secret_hash).
 * False also when Argon2id could not run (out of memory: it takes 4 MiB), which
 * libsodium does not tell apart from a mismatch: see tsms_secret_works. */
bool tsms_secret_verify(const char *hash, const char *secret);

/* True when Argon2id can hash and verify now (a fixed secret, about 6 ms): after
 * no hash matched, false means nothing could be checked, not a wrong secret. */
bool tsms_secret_works(void);

/* Wipes the code. */
void tsms_otp_wipe(struct tsms_code *code);

/* Wipes n bytes at p so that the compiler cannot skip it. */
void tsms_wipe(void *p, size_t n);

/* Wipes the NUL-terminated string s, then frees it. s may be NULL. */
void tsms_free_secret(char *s);

#endif
