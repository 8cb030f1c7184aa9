# tests/fuzz/fuzz.mk - libFuzzer targets for the parsers (included by the top-level Makefile).
#
#   make fuzz-build   tests/fuzz/build/fuzz_{config,twilio,template,phone,users,backup}: clang,
#                     libFuzzer, ASan and UBSan, against lib/*.c compiled with the same flags
#   make fuzz-smoke   about FUZZ_SMOKE_SECONDS (12) per target, seeded from a temporary copy of
#                     tests/fuzz/corpus, after replaying tests/fuzz/crashes; fails on a crash
#   make fuzz         FUZZ_SECONDS (600) per target; new inputs kept in tests/fuzz/build/corpus
#   make fuzz-merge   adds the inputs of tests/fuzz/build/corpus that find new coverage to the
#                     committed seed corpora (review before committing)
#   make fuzz-coverage  line coverage of lib/ reached by the corpora (llvm-cov report)
#   make fuzz-clean   removes tests/fuzz/build
# FUZZ_TARGETS="config users" limits any of them to some targets.
#
# Output of a run: "PASS: fuzz <target> (N runs)" or "FAIL: fuzz <target>: ..." per target, then
# "fuzz: N passed, N failed". Crashing inputs are copied to tests/fuzz/build/artifacts/.

FUZZ_DIR      := tests/fuzz
FUZZ_BUILD    := $(FUZZ_DIR)/build
FUZZ_TARGETS  ?= config twilio template phone users backup
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 600
FUZZ_SMOKE_SECONDS ?= 12
# Debian: clang, its libFuzzer/sanitizer runtimes, llvm-symbolizer for readable stacks
FUZZ_DEBS     := clang libclang-rt-dev llvm
FUZZ_SAN      := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   := -std=c11 -D_GNU_SOURCE -DTSMS_VERSION='"$(VERSION)"' -g -O1 \
                 -fno-omit-frame-pointer $(FUZZ_SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJ  := $(patsubst lib/%.c,$(FUZZ_BUILD)/lib/%.o,$(LIB_SRC))
FUZZ_BINS     := $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-merge fuzz-coverage fuzz-clean fuzz-deps

# lib/ warnings are the gcc build's business: here they must not stop the fuzzers
$(FUZZ_BUILD)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Wall -Wextra -c -o $@ $<

# rebuilt from scratch, so that a source removed from lib/ leaves no object behind
$(FUZZ_BUILD)/libtsms-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_DIR)/fuzz.h $(FUZZ_BUILD)/libtsms-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARNINGS) -Ilib -o $@ $< $(FUZZ_BUILD)/libtsms-fuzz.a $(LIBS)

fuzz-deps:
	@tests/install-deps.sh $(FUZZ_DEBS)

fuzz-build: $(FUZZ_BINS)

fuzz-smoke: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_NO_BUILD=1 FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) \
		$(FUZZ_DIR)/smoke.sh

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_NO_BUILD=1 FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_SECONDS=$(FUZZ_SECONDS) \
		FUZZ_CORPUS_OUT=$(FUZZ_BUILD)/corpus $(FUZZ_DIR)/smoke.sh

fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t && \
		$(FUZZ_BUILD)/fuzz_$$t -merge=1 $(FUZZ_DIR)/corpus/$$t $(FUZZ_BUILD)/corpus/$$t \
			2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' | sed "s/^/$$t: /" || exit 1; \
	done

# source-based coverage: the targets rebuilt without sanitizers, each run once over its corpora
FUZZ_COV       := $(FUZZ_BUILD)/coverage
FUZZ_COV_FLAGS := -std=c11 -D_GNU_SOURCE -g -O0 -fsanitize=fuzzer -fprofile-instr-generate \
                  -fcoverage-mapping $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

fuzz-coverage:
	@mkdir -p $(FUZZ_COV) && rm -f $(FUZZ_COV)/*.profraw
	@for t in $(FUZZ_TARGETS); do \
		$(FUZZ_CC) $(FUZZ_COV_FLAGS) -Ilib -o $(FUZZ_COV)/fuzz_$$t $(FUZZ_DIR)/fuzz_$$t.c \
			$(LIB_SRC) $(LIBS) || exit 1; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		LLVM_PROFILE_FILE=$(FUZZ_COV)/$$t.profraw $(FUZZ_COV)/fuzz_$$t -runs=0 \
			$(FUZZ_DIR)/corpus/$$t $(FUZZ_BUILD)/corpus/$$t >/dev/null 2>&1 || exit 1; \
	done
	@llvm-profdata merge -sparse -o $(FUZZ_COV)/all.profdata $(FUZZ_COV)/*.profraw
	@llvm-cov report $(FUZZ_COV)/fuzz_$(firstword $(FUZZ_TARGETS)) \
		$(foreach t,$(wordlist 2,99,$(FUZZ_TARGETS)),-object $(FUZZ_COV)/fuzz_$(t)) \
		-instr-profile=$(FUZZ_COV)/all.profdata \
		lib/config.c lib/config_read.c lib/config_twilio.c lib/config_ldap.c lib/config_redis.c \
		lib/twilio.c lib/template.c lib/phone.c lib/users.c lib/keyfile.c \
		lib/backup.c lib/log.c

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
