/* config.h - the JSON config file: permissions, parsing, validation (cJSON for config) */
#ifndef TSMS_CONFIG_H
#define TSMS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "error.h"
#include "log.h"
#include "phone.h"

#define TSMS_DEFAULT_CONFIG "/etc/security/pam_twilio_sms.json"
#define TSMS_DEFAULT_API_BASE "https://api.twilio.com"
#define TSMS_DEFAULT_STATE_DIR "/var/lib/pam_twilio_sms"
/* "+" and 1 to 4 digits, NUL */
#define TSMS_COUNTRY_CODE_MAX 6
/* the config holds the auth token; anything larger than this is not a config */
#define TSMS_CONFIG_MAX_BYTES (4 * 1024 * 1024)
/* Debian's whole bundle is about 200 KiB */
#define TSMS_CA_MAX_BYTES (4 * 1024 * 1024)

enum tsms_fail_mode { TSMS_FAIL_CLOSED = 0, TSMS_FAIL_OPEN };

struct tsms_template {
	char *usage;   /* "SignIn", "Register", "Test", "Generic", ... */
	char *content; /* as written, with its {{code}} placeholders */
};

/* An entry of the users object. One whose number breaks the rule of
 * lib/phone.h is kept with its problem: a lookup of that user fails with it
 * (lib/users.h), and nobody else's logins are hurt. */
struct tsms_user {
	char *name;
	char phone[TSMS_PHONE_MAX]; /* E.164; "" when problem is set */
	char *problem;              /* NULL, or what is wrong and the fix, naming the entry */
};

/* The most names ldap.domains may hold */
#define TSMS_LDAP_DOMAINS_MAX 16

/* The directory of phone numbers ("ldap"); see lib/directory.h. */
struct tsms_ldap {
	char *uri;           /* space-separated URIs of one scheme */
	bool start_tls;      /* ldap:// only (the default there) */
	char *ca_file;       /* NULL: the system trust store */
	int ca_fd;           /* caFile opened and checked by tsms_config_load, else -1 */
	char *bind_dn;       /* NULL: anonymous */
	char *bind_password; /* with bind_dn; a secret, wiped by tsms_config_free */
	char *base_dn;
	char *filter;   /* with %u or %s, maybe %d (lib/directory.h) */
	char **domains; /* NULL-terminated; NULL: none (ldap.domains) */
	char *attribute;
	unsigned timeout_seconds;
};

/* Limits and lockout shared by every host ("redis"); see lib/state.h. */
struct tsms_redis {
	char *url;         /* as written: holds no password, so it is what logs show */
	char *host;        /* redis://: a name or address (IPv6 without brackets) */
	unsigned port;     /* redis://: 6379 unless given */
	char *socket_path; /* unix:///PATH; NULL with host */
	unsigned db;       /* SELECT when not 0 */
	char *username;    /* NULL: AUTH with the password alone (or no AUTH) */
	char *password;    /* NULL: no AUTH; a secret, wiped by tsms_config_free */
	char *key_prefix;  /* every key starts with it; "pam_twilio_sms:" */
	unsigned timeout_seconds;
};

struct tsms_config {
	char *account_sid;
	char *auth_token;     /* NULL with an API key; wiped by tsms_config_free */
	char *api_key_sid;    /* "SK..."; NULL with the auth token */
	char *api_key_secret; /* with api_key_sid; wiped by tsms_config_free */
	char *messaging_service_sid;
	struct tsms_template *templates;
	size_t n_templates;
	struct tsms_user *users;
	size_t n_users;
	bool disable_risk_check;
	char *api_base_url; /* https://..., no trailing slash (apiBaseUrl, or https://host) */
	char *ca_file;      /* NULL: the system trust store */
	char *ca_pem;       /* caFile's contents, read by tsms_config_load; NULL before */
	size_t ca_pem_len;
	char *proxy;             /* NULL: direct; may hold a password: wiped by tsms_config_free */
	char *users_file;        /* NULL: only the users object (lib/users.h) */
	char *backup_codes_file; /* NULL: no backup codes (lib/backup.h) */
	unsigned code_length;
	unsigned code_ttl_seconds;
	unsigned max_attempts;
	unsigned timeout_seconds;
	unsigned max_retries;
	enum tsms_fail_mode fail_mode;
	/* abuse resistance: see lib/state.h */
	char *state_dir;
	unsigned send_limit;
	unsigned send_window_seconds;
	unsigned resend_cooldown_seconds;
	unsigned global_send_limit; /* 0: no global cap */
	unsigned max_resends;
	unsigned lockout_threshold;
	unsigned lockout_seconds;
	char (*country_codes)[TSMS_COUNTRY_CODE_MAX]; /* NULL: every country allowed */
	size_t n_country_codes;
	struct tsms_ldap *ldap;   /* NULL: no directory */
	struct tsms_redis *redis; /* NULL: limits in stateDir only */
	/* graces (lib/grace.h): 0 is off */
	unsigned grace_period_seconds;  /* by address */
	unsigned session_grace_seconds; /* by audit session */
	bool grace_fleet;               /* address graces in Redis, for every host */
};

/* The longest grace either kind may have: a day (the docs recommend minutes). */
#define TSMS_GRACE_SECONDS_MAX 86400

/* Size of the buffer that receives a config problem: what is wrong and the fix. */
#define TSMS_CONFIG_ERR_MAX 512

/* Parses and validates a JSON config held in memory (len bytes, need not be
 * NUL-terminated). Returns a new config (free with tsms_config_free) or NULL
 * with a one-line problem and its fix in err. Pure: no I/O. */
struct tsms_config *tsms_config_parse(const char *json, size_t len, char err[TSMS_CONFIG_ERR_MAX]);

/* Receives one problem of a config ("what is wrong; fix: ..."), sanitised. */
typedef void tsms_config_problem_fn(void *ctx, const char *problem);

/* As tsms_config_parse, but when the JSON itself parses, reads on past a
 * problem and gives every problem it finds to fn (one per key or section, in
 * the file's order of sections); err holds the first. Returns NULL when there
 * was any: a config with a problem is never used. fn also receives the
 * entries of users kept with a problem (struct tsms_user), which the module
 * refuses alone, and what the module accepts but no real config holds (the
 * example's users, lib/example.h): those alone do not make it NULL. */
struct tsms_config *tsms_config_parse_all(const char *json, size_t len, tsms_config_problem_fn *fn,
                                          void *ctx, char err[TSMS_CONFIG_ERR_MAX]);

/* Opens path with O_NOFOLLOW, refuses it unless it is a regular file owned
 * by root with no group or other permission bits, reads it and parses it,
 * then reads caFile (tsms_open_trusted) into ca_pem. Returns a new config or
 * NULL with the problem, path and fix in err. */
struct tsms_config *tsms_config_load(const char *path, char err[TSMS_CONFIG_ERR_MAX]);

/* tsms_config_load that reports every problem it finds to fn, as
 * tsms_config_parse_all does (twilio-sms-otp check); the file's own problems
 * (permissions, caFile) are given to fn too. err holds the first. */
struct tsms_config *tsms_config_load_all(const char *path, tsms_config_problem_fn *fn, void *ctx,
                                         char err[TSMS_CONFIG_ERR_MAX]);

/* Wipes the secrets (auth token, API key secret, proxy, bind and Redis
 * passwords) and frees everything.
 * cfg may be NULL. */
void tsms_config_free(struct tsms_config *cfg);

/* The template used for usage: the one of that usageType, else "Generic",
 * else NULL. */
const struct tsms_template *tsms_config_template(const struct tsms_config *cfg, const char *usage);

/* True when cfg allows texting the E.164 number (allowedCountryCodes). */
bool tsms_config_country_allowed(const struct tsms_config *cfg, const char *e164);

/* The HTTP Basic user and password of the credential in use: apiKeySID and
 * apiKeySecret, else accountSID and authToken. */
const char *tsms_config_basic_user(const struct tsms_config *cfg);
const char *tsms_config_secret(const struct tsms_config *cfg);

/* user's entry in the users object, or NULL. */
const struct tsms_user *tsms_config_user(const struct tsms_config *cfg, const char *user);

/* The E.164 number mapped to user in the users object, "" when that entry is
 * malformed (its problem in tsms_config_user), or NULL when users has no user. */
const char *tsms_config_phone(const struct tsms_config *cfg, const char *user);

#endif
