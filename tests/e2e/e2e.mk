# tests/e2e/e2e.mk - the end-to-end tests' own PAM client (included by the top Makefile).
#   make e2e-client    build tests/e2e/pam_client (run_e2e.py also builds it when missing)

E2E_CLIENT := tests/e2e/pam_client

.PHONY: e2e-client e2e-clean

e2e-client: $(E2E_CLIENT)

$(E2E_CLIENT): tests/e2e/pam_client.c
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -o $@ $< $(LDFLAGS) -lpam

e2e-clean:
	rm -f $(E2E_CLIENT)

clean: e2e-clean
