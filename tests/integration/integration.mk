# tests/integration/integration.mk - the sshd and sudo integration tests (included by the
# top Makefile).
#   make integration    as root: install openssh-server, openssh-client and sudo when missing,
#                       build the module, run tests/integration/run_integration.py

.PHONY: integration

integration: deps
	$(MAKE) all
	python3 tests/integration/run_integration.py
