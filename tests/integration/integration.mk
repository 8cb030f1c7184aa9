# tests/integration/integration.mk - the sshd and sudo integration tests (included by the
# top Makefile).
#   make integration    as root: install openssh-server, openssh-client and sudo when missing,
#                       build the module, run tests/integration/run_integration.py and
#                       tests/integration/run_recipes.py (the stacks of docs/recipes.md)
#   make signals        as root: the same set-up, then tests/integration/run_signals.py (a
#                       hostile caller stops and kills setuid su at its moment)

.PHONY: integration signals

integration: deps
	$(MAKE) all
	python3 tests/integration/run_integration.py
	python3 tests/integration/run_recipes.py

signals: deps
	$(MAKE) all
	python3 tests/integration/run_signals.py
