# tests/e2e/e2e.mk - the end-to-end tests' own PAM client and shim (included by the top Makefile).
#   make e2e-client    build tests/e2e/pam_client (run_e2e.py also builds it when missing)
#   make e2e-shim      build tests/e2e/freed_secret.so, the LD_PRELOAD shim that reports a
#                      secret in freed memory (test_redis.py also builds it when missing)
#   make e2e-nss       build tests/e2e/libnss_tsmsalias.so.2, an NSS passwd source that
#                      resolves other spellings of alice (test_account.py builds it too)

E2E_CLIENT := tests/e2e/pam_client
E2E_SHIM   := tests/e2e/freed_secret.so
E2E_NSS    := tests/e2e/libnss_tsmsalias.so.2

.PHONY: e2e-client e2e-shim e2e-nss e2e-clean

e2e-client: $(E2E_CLIENT)

e2e-shim: $(E2E_SHIM)

e2e-nss: $(E2E_NSS)

$(E2E_CLIENT): tests/e2e/pam_client.c
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -o $@ $< $(LDFLAGS) -lpam

# not the module's CFLAGS: -fvisibility=hidden would hide the very functions it replaces
$(E2E_SHIM): tests/e2e/freed_secret.c
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $<

$(E2E_NSS): tests/e2e/libnss_tsmsalias.c
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $<

e2e-clean:
	rm -f $(E2E_CLIENT) $(E2E_SHIM) $(E2E_NSS)

clean: e2e-clean
