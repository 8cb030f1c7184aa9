/* log.h - the one log sink shared by the module (pam_syslog) and tools (stderr) */
#ifndef TSMS_LOG_H
#define TSMS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* Receives one finished, sanitised line (no control characters). */
typedef void (*tsms_log_fn)(void *ctx, int priority, const char *line);

struct tsms_log {
	tsms_log_fn fn;
	void *ctx;
	bool debug; /* LOG_DEBUG lines are dropped unless set */
};

/* Formats a line, replaces every control character with '?', hands it to log->fn.
 * log may be NULL (the line is dropped). Never pass the code or the auth token. */
void tsms_log(const struct tsms_log *log, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies src into dst (size dstlen >= 1, always terminated), replacing control
 * characters (< 0x20, 0x7f) with '?' and truncating at dstlen - 1 bytes without
 * splitting a UTF-8 sequence. Returns the length written. src may be NULL (""). */
size_t tsms_sanitize(char *dst, size_t dstlen, const char *src);

/* A field of a log line that others parse (fail2ban): src copied into dst
 * (size dstlen >= 4) as tsms_sanitize does; with word, every byte that is not
 * printable ASCII (spaces and 8-bit bytes too) becomes '?', so the field is one
 * word. A src longer than dstlen - 4 bytes is cut and ends in "...", so a long
 * caller-controlled value cannot push the rest out of the line. src may be NULL
 * (""). Returns the length written. */
size_t tsms_log_field(char *dst, size_t dstlen, const char *src, bool word);

/* Formats into dst (size dstlen >= 1, always terminated) like snprintf, then
 * sanitises the result as tsms_sanitize does: for messages that quote config
 * text, user names or Twilio's words. Returns the length written. */
size_t tsms_format_clean(char *dst, size_t dstlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
