# tests/faults/faults.mk - the fault-injection suite (issue 13), included by the top-level Makefile.
#
#   make faults        tests/faults/run_faults.py against ./pam_twilio_sms.so (as root):
#                      each system call of the module's paths failed in turn (strace
#                      --inject) and its memory allocations failed in turn (the shim)
#   make faults-shim   tests/faults/failmalloc.so, the LD_PRELOAD shim that fails the Nth
#                      malloc/calloc/realloc (run_faults.py builds it when missing)
#
# Part of `make test` (tests/run_all.sh); strace is installed by the suite when missing.

FAULTS_DIR  := tests/faults
FAULTS_SHIM := $(FAULTS_DIR)/failmalloc.so

.PHONY: faults faults-shim faults-clean

faults-shim: $(FAULTS_SHIM)

# not the module's CFLAGS: -fvisibility=hidden would hide the very functions it replaces
$(FAULTS_SHIM): $(FAULTS_DIR)/failmalloc.c
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl -lpthread

faults: all
	python3 $(FAULTS_DIR)/run_faults.py

faults-clean:
	rm -f $(FAULTS_SHIM)

clean: faults-clean
