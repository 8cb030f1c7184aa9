/* template.c - rendering message templates with the {{code}} placeholder */
#include "template.h"

#include <stdlib.h>
#include <string.h>

/* Length of the placeholder starting at s, or 0 when none starts there. */
static size_t placeholder_at(const char *s)
{
	const char *p = s;

	if (p[0] != '{' || p[1] != '{')
		return 0;
	p += 2;
	while (*p == ' ')
		p++;
	if (strncmp(p, "code", 4) != 0)
		return 0;
	p += 4;
	while (*p == ' ')
		p++;
	if (p[0] != '}' || p[1] != '}')
		return 0;
	return (size_t)(p + 2 - s);
}

bool tsms_template_has_placeholder(const char *content)
{
	for (const char *p = strstr(content, "{{"); p != NULL; p = strstr(p + 1, "{{")) {
		if (placeholder_at(p) > 0)
			return true;
	}
	return false;
}

char *tsms_template_render(const char *content, const char *code, size_t *replaced)
{
	size_t code_len = strlen(code);
	size_t count = 0, out_len = 0, ph;
	char *out, *w;
	const char *p;

	/* first pass: the exact size, so that huge templates cost one allocation */
	for (p = content; *p != '\0';) {
		ph = placeholder_at(p);
		if (ph > 0) {
			count++;
			out_len += code_len;
			p += ph;
		} else {
			out_len++;
			p++;
		}
	}
	out = malloc(out_len + 1);
	if (out == NULL)
		return NULL;
	for (p = content, w = out; *p != '\0';) {
		ph = placeholder_at(p);
		if (ph > 0) {
			memcpy(w, code, code_len);
			w += code_len;
			p += ph;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	if (replaced != NULL)
		*replaced = count;
	return out;
}

size_t tsms_utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	}
	return n;
}
