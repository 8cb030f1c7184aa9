/*
 * pam_client.c - a PAM application for the end-to-end tests, for what pamtester cannot do:
 * conversations that fail or return NULL, answers pamtester's misc_conv cannot type
 * (1 MB long, NUL bytes), and a command run inside the PAM session.
 *
 *   pam_client SERVICE USER MODE [PATH | CMD [ARG...]]
 *
 * USER "-" starts PAM without a user, so that the module asks for one through the
 * conversation. MODE:
 *   conv-fail         every conversation call returns PAM_CONV_ERR
 *   conv-null         returns PAM_SUCCESS and no response array (*resp == NULL)
 *   null-resp         returns PAM_SUCCESS with a response array whose resp are all NULL
 *   answer-file PATH  answers every prompt with the bytes of PATH; a PAM response is a
 *                     C string, so the module sees them up to the first NUL byte
 *   stdin             answers every prompt with the next line of stdin (without its
 *                     newline), like pamtester; PAM_CONV_ERR at end of input
 *   session-run CMD [ARG...]
 *                     answers as stdin does; after a successful authentication opens
 *                     the session (pam_open_session), runs CMD in it as a login runs the
 *                     user's shell (a child with this environment and PAM's, sharing
 *                     stdin and stdout), waits for it, prints `child=<exit status>` (or
 *                     `child=signal <number>`) and closes the session. When the variable
 *                     TSMS_CLIENT_PUTENV is set (NAME=VALUE), that is put in PAM's
 *                     environment (pam_putenv) before the session opens, as a pam_env
 *                     line or a forger would.
 *
 * Prompts are printed to stdout as they come (followed by a newline, except in stdin mode,
 * where the prompt is left waiting for the answer as misc_conv does); error and info
 * messages go to stderr and stdout, one line each. At the end it prints
 * `result=<pam_strerror>` and `code=<number>` and exits with the PAM code. When the
 * variable TSMS_CLIENT_RHOST is set, its value is PAM_RHOST (as sshd sets the client's
 * address).
 */
#include <errno.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum mode { CONV_FAIL, CONV_NULL, NULL_RESP, ANSWER_FILE, ANSWER_STDIN, SESSION_RUN };

struct client {
	enum mode mode;
	char *answer; /* ANSWER_FILE: the file's bytes, NUL-terminated */
	size_t answer_len;
};

static int usage(void)
{
	fprintf(stderr, "usage: pam_client SERVICE USER|- "
	                "conv-fail|conv-null|null-resp|answer-file PATH|stdin|"
	                "session-run CMD [ARG...]\n");
	return 64;
}

/* Reads all of path into a new buffer with a NUL after the last byte; NULL on error. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *grown;
	size_t cap = 0, n = 0, got;

	if (f == NULL) {
		perror(path);
		return NULL;
	}
	do {
		if (cap - n < 65536) {
			cap = cap * 2 + 65536;
			grown = realloc(buf, cap + 1);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		perror(path);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The next line of stdin without its newline, or NULL at end of input. */
static char *read_line(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n < 0) {
		free(line);
		return NULL;
	}
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	return line;
}

static void free_responses(struct pam_response *resp, int n)
{
	for (int i = 0; i < n; i++)
		free(resp[i].resp);
	free(resp);
}

static char *answer(const struct client *c)
{
	char *copy;

	if (c->mode == ANSWER_STDIN || c->mode == SESSION_RUN)
		return read_line();
	copy = malloc(c->answer_len + 1);
	if (copy != NULL)
		memcpy(copy, c->answer, c->answer_len + 1);
	return copy;
}

static int converse(int n, const struct pam_message **msg, struct pam_response **resp,
                    void *appdata)
{
	const struct client *c = appdata;
	struct pam_response *out;

	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	for (int i = 0; i < n; i++) {
		int prompt = msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		             msg[i]->msg_style == PAM_PROMPT_ECHO_ON;

		if (prompt) {
			int waits = c->mode == ANSWER_STDIN || c->mode == SESSION_RUN;

			printf("%s%s", msg[i]->msg, waits ? "" : "\n");
		} else {
			FILE *to = msg[i]->msg_style == PAM_ERROR_MSG ? stderr : stdout;
			fprintf(to, "%s\n", msg[i]->msg);
		}
	}
	fflush(stdout);
	fflush(stderr);
	switch (c->mode) {
	case CONV_FAIL:
		return PAM_CONV_ERR;
	case CONV_NULL:
		return PAM_SUCCESS;
	default:
		break;
	}
	out = calloc((size_t)n, sizeof(*out));
	if (out == NULL)
		return PAM_BUF_ERR;
	if (c->mode == NULL_RESP) {
		*resp = out;
		return PAM_SUCCESS;
	}
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
		    msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		out[i].resp = answer(c);
		if (out[i].resp == NULL) {
			free_responses(out, n);
			return PAM_CONV_ERR;
		}
	}
	*resp = out;
	return PAM_SUCCESS;
}

/* The child of session-run: PAM's environment over this one, then cmd. */
static void exec_in_session(pam_handle_t *pamh, char **cmd)
{
	char **env = pam_getenvlist(pamh);

	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		putenv(env[i]); /* env[i] becomes part of the environment: never freed */
	execvp(cmd[0], cmd);
	perror(cmd[0]);
	_exit(127);
}

/* session-run after a successful authentication: the session's result. */
static int run_in_session(pam_handle_t *pamh, char **cmd)
{
	const char *forged = getenv("TSMS_CLIENT_PUTENV");
	int rc, status = 0;
	pid_t pid;

	if (forged != NULL && (rc = pam_putenv(pamh, forged)) != PAM_SUCCESS)
		return rc;
	rc = pam_open_session(pamh, 0);
	if (rc != PAM_SUCCESS)
		return rc;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		exec_in_session(pamh, cmd);
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0)
		perror("fork");
	else if (WIFSIGNALED(status))
		printf("\nchild=signal %d\n", WTERMSIG(status));
	else
		printf("\nchild=%d\n", WEXITSTATUS(status));
	return pam_close_session(pamh, 0);
}

int main(int argc, char **argv)
{
	struct client c = { .mode = ANSWER_STDIN };
	struct pam_conv conv = { .conv = converse, .appdata_ptr = &c };
	pam_handle_t *pamh = NULL;
	const char *user;
	int rc;

	if (argc < 4)
		return usage();
	if (strcmp(argv[3], "conv-fail") == 0 && argc == 4)
		c.mode = CONV_FAIL;
	else if (strcmp(argv[3], "conv-null") == 0 && argc == 4)
		c.mode = CONV_NULL;
	else if (strcmp(argv[3], "null-resp") == 0 && argc == 4)
		c.mode = NULL_RESP;
	else if (strcmp(argv[3], "stdin") == 0 && argc == 4)
		c.mode = ANSWER_STDIN;
	else if (strcmp(argv[3], "answer-file") == 0 && argc == 5)
		c.mode = ANSWER_FILE;
	else if (strcmp(argv[3], "session-run") == 0 && argc >= 5)
		c.mode = SESSION_RUN;
	else
		return usage();
	if (c.mode == ANSWER_FILE) {
		c.answer = read_file(argv[4], &c.answer_len);
		if (c.answer == NULL)
			return 66;
	}
	user = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
	rc = pam_start(argv[1], user, &conv, &pamh);
	if (rc == PAM_SUCCESS && getenv("TSMS_CLIENT_RHOST") != NULL)
		rc = pam_set_item(pamh, PAM_RHOST, getenv("TSMS_CLIENT_RHOST"));
	if (rc == PAM_SUCCESS)
		rc = pam_authenticate(pamh, 0);
	if (rc == PAM_SUCCESS && c.mode == SESSION_RUN)
		rc = run_in_session(pamh, argv + 4);
	printf("\nresult=%s\ncode=%d\n", pam_strerror(pamh, rc), rc);
	fflush(stdout);
	if (pamh != NULL)
		pam_end(pamh, rc);
	free(c.answer);
	return rc;
}
