/* fuzz_template.c - libFuzzer target: rendering {{code}} templates.
 * Input: one byte choosing the code length (TSMS_CODE_MIN..TSMS_CODE_MAX
 * digits, as the module sends), then the template, made a C string (it ends
 * at the first NUL). The renderer must replace exactly the placeholders that
 * tsms_template_has_placeholder sees and leave none behind. */
#include <stdint.h>

#include "fuzz.h"
#include "otp.h"
#include "template.h"

/* shortest placeholder: "{{code}}" */
#define PLACEHOLDER_MIN 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char digits[] = "8675309421";
	char code[TSMS_CODE_MAX + 1];
	size_t code_len, n = (size_t)-1, in_len, out_len;
	char *content, *out, *again;
	bool has;

	if (size < 1)
		return 0;
	code_len = TSMS_CODE_MIN + data[0] % (TSMS_CODE_MAX - TSMS_CODE_MIN + 1);
	memcpy(code, digits, code_len);
	code[code_len] = '\0';
	content = fuzz_strndup(data + 1, size - 1);
	in_len = strlen(content);

	has = tsms_template_has_placeholder(content);
	out = tsms_template_render(content, code, &n);
	FUZZ_CHECK(out != NULL);
	out_len = strlen(out);
	FUZZ_CHECK((n > 0) == has);
	FUZZ_CHECK(n <= in_len / PLACEHOLDER_MIN);
	/* each replacement swaps at least PLACEHOLDER_MIN bytes for the code */
	FUZZ_CHECK(out_len + n * PLACEHOLDER_MIN <= in_len + n * code_len);
	if (n == 0)
		FUZZ_CHECK(strcmp(out, content) == 0);
	/* a digit code cannot complete a placeholder, so none may survive */
	FUZZ_CHECK(!tsms_template_has_placeholder(out));
	FUZZ_CHECK(strstr(out, "{{code}}") == NULL);
	FUZZ_CHECK(tsms_utf8_chars(out) <= out_len);
	FUZZ_CHECK(tsms_utf8_chars(content) <= in_len);

	/* the count is optional and does not change the result */
	again = tsms_template_render(content, code, NULL);
	FUZZ_CHECK(again != NULL && strcmp(again, out) == 0);

	free(again);
	free(out);
	free(content);
	return 0;
}
