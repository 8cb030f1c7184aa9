# pam_twilio_sms - an SMS one-time passcode for Linux-PAM, through Twilio
#
#   make            build ./pam_twilio_sms.so
#   make test       install missing Debian packages, run unit and end-to-end tests (as root)
#   make demo       a real pamtester login against a loopback Twilio sandbox (as root)
#   make install    DESTDIR=, PREFIX=/usr, PAMDIR= (the system's PAM module directory)

VERSION   := $(shell sed -n '1s/^[^ ]* .\([^ ]*\). .*/\1/p' $(dir $(lastword $(MAKEFILE_LIST)))debian/changelog)
CC        ?= cc
PREFIX    ?= /usr
SYSCONFDIR ?= /etc
MANDIR    ?= $(PREFIX)/share/man
PAMDIR    ?= $(or $(shell pkg-config --variable=libdir pam 2>/dev/null),/lib/$(shell $(CC) -print-multiarch))/security
DESTDIR   ?=
WERROR    ?= -Werror

PKGS      := libcurl libcjson libsodium libssl ldap hiredis
WARNINGS  := -Wall -Wextra $(WERROR) -Wformat=2 -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wvla -Wundef -Wwrite-strings
HARDENING := -fstack-protector-strong -fstack-clash-protection -fcf-protection \
             -D_FORTIFY_SOURCE=2 -fPIC -fno-strict-overflow
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE -DTSMS_VERSION='"$(VERSION)"' $(WARNINGS) $(HARDENING) \
             -fvisibility=hidden $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS   += -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--no-undefined -Wl,--as-needed
LIBS      := $(or $(shell pkg-config --libs $(PKGS) 2>/dev/null),-lcurl -lcjson -lsodium -lssl -lldap -llber -lhiredis)

# the unit tests also check the Redis script's SHA-1 with libcrypto
UNIT_LIBS  = $(LIBS) -lcmocka -lcrypto
LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:.c=.o)
LIB_HDR   := $(wildcard lib/*.h)
MODULE    := pam_twilio_sms.so
TOOL      := twilio-sms-otp
TOOL_SRC  := twilio-sms-otp.c $(wildcard cli/*.c)
TOOL_HDR  := $(wildcard cli/*.h)
SBINDIR   ?= $(PREFIX)/sbin
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:.c=)
FORMATTED := pam_twilio_sms.c $(TOOL_SRC) $(TOOL_HDR) $(LIB_SRC) $(LIB_HDR) $(UNIT_SRC) $(wildcard tests/unit/*.h)

# Debian packages the build and the tests need; `make deps` installs the missing ones.
BUILD_DEBS := gcc make pkg-config libpam0g-dev libcurl4-openssl-dev libssl-dev libcjson-dev \
              libsodium-dev libldap-dev libhiredis-dev
TEST_DEBS  := $(BUILD_DEBS) pamtester libcmocka-dev openssl python3 ca-certificates curl \
              util-linux procps clang-format openssh-server openssh-client sudo \
              clang libclang-rt-dev llvm

.PHONY: all lib deps deps-build unit test demo install uninstall clean format check-format

all: $(MODULE) $(TOOL)

lib: lib/libtsms.a

# TSMS_VERSION (the changelog's) is compiled into the User-Agent and --version
lib/http.o: debian/changelog

lib/%.o: lib/%.c $(LIB_HDR)
	$(CC) $(CFLAGS) -c -o $@ $<

lib/libtsms.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(MODULE): pam_twilio_sms.c lib/libtsms.a
	$(CC) $(CFLAGS) -shared -o $@ pam_twilio_sms.c lib/libtsms.a $(LDFLAGS) $(LIBS) -lpam

# cli/ includes "lib/..." and "cli.h" from the repository root, as twilio-sms-otp.c does
$(TOOL): $(TOOL_SRC) $(TOOL_HDR) $(LIB_HDR) lib/libtsms.a debian/changelog
	$(CC) $(CFLAGS) -I. -fPIE -o $@ $(TOOL_SRC) lib/libtsms.a -pie $(LDFLAGS) $(LIBS)

tests/unit/test_%: tests/unit/test_%.c lib/libtsms.a
	$(CC) $(CFLAGS) -Ilib -o $@ $< lib/libtsms.a $(UNIT_LIBS)

deps-build:
	@tests/install-deps.sh $(BUILD_DEBS)

deps:
	@tests/install-deps.sh $(TEST_DEBS)

unit: $(UNIT_BIN)

test: deps
	$(MAKE) all unit
	tests/run_all.sh

demo: deps
	$(MAKE) all
	tests/demo.sh

install: $(MODULE) $(TOOL)
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/security \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MODULE) $(DESTDIR)$(PAMDIR)/$(MODULE)
	install -m 0755 $(TOOL) $(DESTDIR)$(SBINDIR)/$(TOOL)
	install -m 0644 conf/pam_twilio_sms.8 $(DESTDIR)$(MANDIR)/man8/pam_twilio_sms.8
	install -m 0644 conf/twilio-sms-otp.8 $(DESTDIR)$(MANDIR)/man8/twilio-sms-otp.8
	install -m 0644 conf/pam_twilio_sms.json.5 $(DESTDIR)$(MANDIR)/man5/pam_twilio_sms.json.5
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.json ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.json"; \
	else \
		install -m 0600 -o root -g root conf/pam_twilio_sms.json \
			$(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.json; \
	fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users ] || \
	    [ -L $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users ]; then \
		echo "keeping the existing $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users"; \
	else \
		install -m 0600 -o root -g root /dev/null \
			$(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users; \
	fi

# Removes what install installs but the config, which holds the auth token, and the users
# file, which holds the numbers: those are the administrator's to delete. Directories stay:
# they are shared (/usr/sbin, man8, ...).
uninstall:
	rm -f $(DESTDIR)$(PAMDIR)/$(MODULE) $(DESTDIR)$(SBINDIR)/$(TOOL) \
		$(DESTDIR)$(MANDIR)/man8/pam_twilio_sms.8 $(DESTDIR)$(MANDIR)/man8/twilio-sms-otp.8 \
		$(DESTDIR)$(MANDIR)/man5/pam_twilio_sms.json.5
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.json ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.json (it holds the" \
			"auth token): delete it yourself if you no longer need it"; \
	fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/security/pam_twilio_sms.users (it holds the" \
			"users' phone numbers): delete it yourself if you no longer need it"; \
	fi

format:
	clang-format -i $(FORMATTED)

check-format:
	clang-format --dry-run --Werror $(FORMATTED)

clean:
	rm -f $(MODULE) $(TOOL) lib/*.o lib/libtsms.a $(UNIT_BIN)
	rm -rf tests/fuzz/build

# Test tooling keeps its own rules beside it (fuzzers, analysis, test clients).
include $(wildcard tests/*/*.mk)
