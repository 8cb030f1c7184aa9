/* log.c - sanitised log lines for the one sink */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOG_LINE_MAX 1024

static int is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Length of the longest prefix of s (of length len) not ending inside a
 * UTF-8 sequence. */
static size_t utf8_boundary(const char *s, size_t len)
{
	size_t i = len;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i > 0 && ((unsigned char)s[i - 1] & 0x80)) {
		unsigned char lead = (unsigned char)s[i - 1];
		size_t want = (lead & 0xe0) == 0xc0   ? 2
		              : (lead & 0xf0) == 0xe0 ? 3
		              : (lead & 0xf8) == 0xf0 ? 4
		                                      : 1;
		if (len - (i - 1) < want)
			return i - 1;
	}
	return len;
}

size_t tsms_sanitize(char *dst, size_t dstlen, const char *src)
{
	size_t n;

	if (dstlen == 0)
		return 0;
	if (src == NULL)
		src = "";
	n = strnlen(src, dstlen - 1);
	n = utf8_boundary(src, n);
	for (size_t i = 0; i < n; i++)
		dst[i] = is_control((unsigned char)src[i]) ? '?' : src[i];
	dst[n] = '\0';
	return n;
}

size_t tsms_log_field(char *dst, size_t dstlen, const char *src, bool word)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = tsms_sanitize(dst, dstlen - 3, src);
	if (word)
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)dst[i] <= ' ' || (unsigned char)dst[i] >= 0x7f)
				dst[i] = '?';
	if (src[n] != '\0') {
		memcpy(dst + n, "...", 4);
		n += 3;
	}
	return n;
}

size_t tsms_format_clean(char *dst, size_t dstlen, const char *fmt, ...)
{
	char raw[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	return tsms_sanitize(dst, dstlen, raw);
}

void tsms_log(const struct tsms_log *log, int priority, const char *fmt, ...)
{
	char raw[LOG_LINE_MAX];
	char line[LOG_LINE_MAX];
	va_list ap;

	if (log == NULL || log->fn == NULL)
		return;
	if (priority == LOG_DEBUG && !log->debug)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	tsms_sanitize(line, sizeof(line), raw);
	log->fn(log->ctx, priority, line);
}
