# Proof of robustness: sanitizers, valgrind, static analysis, exports (issue 3).
# Included by the top-level Makefile; every path is relative to the repository root.
#
#   make analysis         all four suites below
#   make sanitize         unit, e2e and admin command suites built with ASan+UBSan
#   make valgrind         unit, e2e and admin command suites under valgrind memcheck
#   make static-analysis  cppcheck and scan-build
#   make exports          the module exports pam_sm_authenticate and pam_sm_setcred only
#
# The instrumented builds go to their own directories under tests/analysis/, so the
# normal build (lib/*.o, ./pam_twilio_sms.so) is never touched.

ANALYSIS_DIR  := tests/analysis
ASAN_DIR      := $(ANALYSIS_DIR)/build-asan
SCAN_DIR      := $(ANALYSIS_DIR)/build-scan
ANALYSIS_BIN  := $(ANALYSIS_DIR)/build
SANITIZERS    := -fsanitize=address,undefined -fno-sanitize-recover=all

# $(call tsms_variant,DIR,EXTRA_CFLAGS): rules for DIR/lib/libtsms.a, DIR/pam_twilio_sms.so,
# DIR/twilio-sms-otp and DIR/tests/unit/test_*, from the same sources as the normal build.
define tsms_variant
$(1)/lib/%.o: lib/%.c $$(LIB_HDR)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -c -o $$@ $$<

$(1)/lib/libtsms.a: $$(LIB_SRC:%.c=$(1)/%.o)
	$$(AR) rcs $$@ $$^

$(1)/$$(MODULE): pam_twilio_sms.c $(1)/lib/libtsms.a
	$$(CC) $$(CFLAGS) $(2) -shared -o $$@ pam_twilio_sms.c $(1)/lib/libtsms.a $$(LDFLAGS) \
		$$(LIBS) -lpam

$(1)/$$(TOOL): $$(TOOL_SRC) $$(TOOL_HDR) $(1)/lib/libtsms.a
	$$(CC) $$(CFLAGS) $(2) -I. -fPIE -o $$@ $$(TOOL_SRC) $(1)/lib/libtsms.a -pie $$(LDFLAGS) \
		$$(LIBS)

$(1)/tests/unit/test_%: tests/unit/test_%.c tests/unit/unit.h $(1)/lib/libtsms.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -Ilib -o $$@ $$< $(1)/lib/libtsms.a $$(UNIT_LIBS)
endef

# -O1 and frame pointers keep ASan's stack traces readable at a small cost
$(eval $(call tsms_variant,$(ASAN_DIR),-O1 -fno-omit-frame-pointer $(SANITIZERS)))
$(eval $(call tsms_variant,$(SCAN_DIR),))

$(ANALYSIS_BIN)/exports: $(ANALYSIS_DIR)/exports.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# planted bugs the checkers must report (canary.c): the compiler's warnings about them
# are expected, hence -Wno-error
$(ANALYSIS_BIN)/canary: $(ANALYSIS_DIR)/canary.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O0 -Wno-error -o $@ $< $(LDFLAGS)

$(ASAN_DIR)/canary: $(ANALYSIS_DIR)/canary.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O1 -fno-omit-frame-pointer $(SANITIZERS) -Wno-error -o $@ $< $(LDFLAGS)

.PHONY: analysis sanitize valgrind static-analysis exports asan-build scan-build-targets \
	analysis-clean

asan-build: $(ASAN_DIR)/$(MODULE) $(ASAN_DIR)/$(TOOL) $(UNIT_BIN:%=$(ASAN_DIR)/%) $(ASAN_DIR)/canary

# what ships: the module, the admin command and lib/ (static.sh runs this under scan-build)
scan-build-targets: $(SCAN_DIR)/$(MODULE) $(SCAN_DIR)/$(TOOL)

sanitize:
	$(ANALYSIS_DIR)/sanitize.sh

valgrind:
	TSMS_VALGRIND_CLI=1 $(ANALYSIS_DIR)/valgrind.sh

static-analysis:
	$(ANALYSIS_DIR)/static.sh

exports:
	$(ANALYSIS_DIR)/exports.sh

analysis:
	$(ANALYSIS_DIR)/exports.sh; e=$$?; \
	$(ANALYSIS_DIR)/static.sh || e=1; \
	$(ANALYSIS_DIR)/sanitize.sh || e=1; \
	TSMS_VALGRIND_CLI=1 $(ANALYSIS_DIR)/valgrind.sh || e=1; \
	exit $$e

analysis-clean:
	rm -rf $(ASAN_DIR) $(SCAN_DIR) $(ANALYSIS_BIN)

clean: analysis-clean
