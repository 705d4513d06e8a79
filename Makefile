# mboxpop3d - a POP3 daemon for mbox spools.  Hand-written, no autoconf.

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= /lib/systemd/system
DESTDIR    ?=
# The unprivileged user the daemon needs (preauth_user), made by install.
PREAUTH_USER := mboxpop3d
USERADD_CMD := useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin $(PREAUTH_USER)

CC       ?= cc
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Ibuild
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Wformat=2 -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -fstack-protector-strong
LDLIBS   += -lcrypt -pthread
# Full RELRO: symbols bound once at start-up, in the master, so the
# processes forked per login inherit a finished GOT instead of each one
# resolving (and copying) it again.
LDFLAGS  += -Wl,-z,relro -Wl,-z,now

# Sanitizer build used by the unit tests: make SAN=1
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJDIR := build/obj$(if $(filter 1,$(SAN)),-san)
LIB_OBJS := $(LIB_SRCS:src/%.c=$(OBJDIR)/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)

.PHONY: all clean check unit e2e check-packaging install uninstall deb run demo fuzz bench-auth \
        bench bench-peers
all: mboxpop3d

mboxpop3d: $(OBJDIR)/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OBJDIR)/%.o: src/%.c
	@mkdir -p $(OBJDIR)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# ---- tests ----
# Unit tests link the daemon's modules (not main.c) built with ASan+UBSan.
build/tests/libmbox-san.a: $(LIB_SRCS:src/%.c=build/obj-san/%.o)
	@mkdir -p build/tests
	ar rcs $@ $^

build/obj-san/%.o: src/%.c
	@mkdir -p build/obj-san
	$(CC) $(CPPFLAGS) $(CFLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined -MMD -MP -c -o $@ $<

build/tests/test_%: tests/unit/test_%.c tests/unit/testlib.h tests/unit/ref_scan.h build/tests/libmbox-san.a
	@mkdir -p build/tests
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -Wno-missing-prototypes \
	    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	    -o $@ $< build/tests/libmbox-san.a $(LDLIBS)

# The daemon as the end-to-end tests run it: ASan+UBSan, and the test
# hooks (MBOXPOP3D_TEST_KILL_AT, see update.c) compiled in.
SAN_OBJS := $(filter-out build/obj-san/update.o,$(LIB_SRCS:src/%.c=build/obj-san/%.o))
build/mboxpop3d-test: build/obj-san/main.o $(SAN_OBJS) build/obj-san/update-hooks.o
	$(CC) -fsanitize=address,undefined -o $@ $^ $(LDLIBS)

build/obj-san/update-hooks.o: src/update.c
	@mkdir -p build/obj-san
	$(CC) $(CPPFLAGS) -DMBOXPOP3D_TEST_HOOKS $(CFLAGS) -fsanitize=address,undefined \
	    -fno-omit-frame-pointer -fno-sanitize-recover=undefined -MMD -MP -c -o $@ $<

build/tests/mkhash: tests/tools/mkhash.c
	@mkdir -p build/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LDLIBS)

check: mboxpop3d build/mboxpop3d-test build/tests/mkhash $(UNIT_BINS)
	@tests/run-tests.sh $(UNIT_BINS)

unit: $(UNIT_BINS)
	@tests/run-tests.sh --unit-only $(UNIT_BINS)

e2e: mboxpop3d build/mboxpop3d-test build/tests/mkhash
	@tests/run-tests.sh --e2e-only

# tests/packaging: make install into temporary trees, and the Debian
# package built and inspected (also part of check).
check-packaging: mboxpop3d
	@tests/run-tests.sh --packaging-only

# ---- fuzzing (clang's libFuzzer, with ASan+UBSan) ----
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := command mbox config proxy preauth base64
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) $(wildcard include/*.h)
	@mkdir -p build/fuzz
	clang $(CPPFLAGS) -std=c11 -g -O1 -Wall -Wextra -Werror \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ $< $(LIB_SRCS) $(LDLIBS)

# Runs each target for FUZZ_SECONDS; new inputs go to build/fuzz/corpus-*,
# the whole output to build/fuzz/log-*; a crash fails the target.
fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus-$$t; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -dict=tests/fuzz/$$t.dict \
	        -artifact_prefix=build/fuzz/crash-$$t- -print_final_stats=0 \
	        build/fuzz/corpus-$$t tests/fuzz/corpus/$$t >build/fuzz/log-$$t 2>&1; \
	    status=$$?; tail -n 3 build/fuzz/log-$$t; \
	    if [ $$status -ne 0 ]; then echo "fuzz_$$t failed: see build/fuzz/log-$$t"; exit 1; fi; \
	done

# ---- measurements ----
# Speed and memory of the daemon against issue #6's targets (root; a full
# run takes about 3 minutes on 2 cores, QUICK=1 under a minute, PEERS=1
# adds Dovecot and popa3d on other loopback ports).  See bench/run.sh.
QUICK ?=
PEERS ?=
BENCH_RUNS ?=
bench: mboxpop3d bench/popload
	QUICK=$(QUICK) PEERS=$(PEERS) BENCH_RUNS=$(BENCH_RUNS) bench/run.sh

# The same as make bench PEERS=1.
bench-peers: mboxpop3d bench/popload
	QUICK=$(QUICK) PEERS=1 BENCH_RUNS=$(BENCH_RUNS) bench/run.sh

# The load generator of make bench.
bench/popload: bench/popload.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -pthread -o $@ $< -pthread $(LDLIBS)

# Password guesses per second an attacker gets, defences off and on.
bench-auth: mboxpop3d build/tests/mkhash
	python3 tests/bench/bruteforce.py

# ---- running ----
run: mboxpop3d
	./mboxpop3d -f

demo: mboxpop3d build/tests/mkhash
	@tests/demo.sh

# ---- installing ----
# The units in etc/ say /usr/local/sbin; the installed copies say $(SBINDIR).
# As root with no DESTDIR, install also creates the preauth_user if it is
# missing; otherwise (staging, or not root) it prints the command to run.
install: mboxpop3d
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 mboxpop3d $(DESTDIR)$(SBINDIR)/mboxpop3d
	install -m 0644 man/mboxpop3d.8 $(DESTDIR)$(MANDIR)/man8/mboxpop3d.8
	install -m 0644 man/mboxpop3d.conf.5 $(DESTDIR)$(MANDIR)/man5/mboxpop3d.conf.5
	@for u in mboxpop3d.service mboxpop3d.socket; do \
	    echo "sed 's|/usr/local/sbin/|$(SBINDIR)/|g' etc/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
	    sed 's|/usr/local/sbin/|$(SBINDIR)/|g' etc/$$u > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
	    chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
	    mv -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/mboxpop3d.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/mboxpop3d.conf"; \
	else \
	    echo "install -m 0644 etc/mboxpop3d.conf $(DESTDIR)$(SYSCONFDIR)/mboxpop3d.conf"; \
	    install -m 0644 etc/mboxpop3d.conf $(DESTDIR)$(SYSCONFDIR)/mboxpop3d.conf; \
	fi
	@if [ -n "$(DESTDIR)" ]; then \
	    echo "note: the target system needs the user $(PREAUTH_USER); create it with: $(USERADD_CMD)"; \
	elif getent passwd $(PREAUTH_USER) >/dev/null; then \
	    echo "user $(PREAUTH_USER) exists"; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	    echo "$(USERADD_CMD)"; \
	    $(USERADD_CMD); \
	else \
	    echo "note: the daemon needs the user $(PREAUTH_USER); as root, create it with: $(USERADD_CMD)"; \
	fi

# Removes what install put there, except the config file and the user.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/mboxpop3d $(DESTDIR)$(MANDIR)/man8/mboxpop3d.8 \
	    $(DESTDIR)$(MANDIR)/man5/mboxpop3d.conf.5 \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/mboxpop3d.service $(DESTDIR)$(SYSTEMDUNITDIR)/mboxpop3d.socket
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/mboxpop3d.conf and the user $(PREAUTH_USER)"

# The Debian package (debian/), built from a copy of the tree so no
# debian/ build artefacts stay behind: build/deb/mboxpop3d_VERSION_ARCH.deb.
# Needs dpkg-dev and debhelper (tests/install-deps.sh).
deb:
	tests/packaging/build-deb.sh build/deb

clean:
	rm -rf build mboxpop3d bench/popload

-include $(wildcard build/obj/*.d build/obj-san/*.d)
