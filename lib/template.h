/* template.h - rendering message templates with the {{code}} placeholder */
#ifndef TSMS_TEMPLATE_H
#define TSMS_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

/* Twilio's limit on a message body, in characters */
#define TSMS_BODY_MAX_CHARS 1600

/* True when content holds at least one placeholder: "{{", optional spaces,
 * "code", optional spaces, "}}". */
bool tsms_template_has_placeholder(const char *content);

/* Returns a new string: content with every placeholder replaced by code, or
 * NULL when out of memory. The caller frees it with tsms_free_secret (it holds
 * the code). When replaced is not NULL it receives the number of replacements. */
char *tsms_template_render(const char *content, const char *code, size_t *replaced);

/* Number of characters (UTF-8 code points) in s. */
size_t tsms_utf8_chars(const char *s);

#endif
