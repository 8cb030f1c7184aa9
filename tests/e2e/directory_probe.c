/* directory_probe.c - the tiny caller of tsms_directory_probe for the e2e
 * directory cases (twilio-sms-otp check is where it belongs): loads the config
 * at argv[1] as the module does, probes, prints the message and exits 0 for
 * TSMS_OK, 1 for TSMS_ERR_DIRECTORY, 2 for TSMS_ERR_UNAVAILABLE, 3 otherwise. */
#include <stdio.h>

#include "lib/config.h"
#include "lib/directory.h"

int main(int argc, char **argv)
{
	char msg[TSMS_CONFIG_ERR_MAX] = "";
	struct tsms_config *cfg;
	enum tsms_err e;

	if (argc != 2) {
		fprintf(stderr, "usage: directory_probe CONFIG\n");
		return 3;
	}
	cfg = tsms_config_load(argv[1], msg);
	if (cfg == NULL || cfg->ldap == NULL) {
		printf("%s\n", cfg == NULL ? msg : "the config has no ldap");
		tsms_config_free(cfg);
		return 3;
	}
	e = tsms_directory_probe(cfg, msg);
	printf("%s\n", msg);
	tsms_config_free(cfg);
	return e == TSMS_OK ? 0 : e == TSMS_ERR_DIRECTORY ? 1 : e == TSMS_ERR_UNAVAILABLE ? 2 : 3;
}
