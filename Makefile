# settee — one non-recursive Makefile.
#   make            release build: build/settee and the tools
#   make run        install deps, build, serve on 127.0.0.1:5984 with data in ./data
#   make test       install deps, sanitizer build, C unit tests, compat tests
#   make asan       sanitizer build only (build/asan/)
#   make bench      side-by-side benchmark (tools/bench)
#   make bench-auth what authentication costs settee (tools/bench/auth.mjs)
#   make bench-rapid-reset  a victim's service during an HTTP/2 rapid-reset flood
#   make bench-views the view index: build docs/s, range rows/s, lookup p99 (tools/bench/views.mjs)
#   make bench-replicate the replicator: 100k docs settee→settee, local→local, pouchdb-server pair;
#                   1,000 continuous jobs: RSS per idle job, write→arrival p99 (tools/bench/replicate.sh)
#   make bench-attachments  server memory during 60 MB and 200 MB attachment uploads and downloads
#   make bench-h2load  h2load (nghttp2) req/s and latency percentiles: HTTP/2 TLS, h2c, HTTP/1.1
#   make bench-longpoll 10,000 idle longpoll clients: RSS each, one write's fan-out t50/t100
#   make check-includes   the include direction of DESIGN.md
#   make install    settee, its tools, the web UI, man pages, the systemd unit under
#                   $(DESTDIR)$(PREFIX) (PREFIX=/usr/local; the unit in $(UNITDIR))
#   make test-fauxton     Fauxton at /_utils/ in headless Chromium
#   make fuzz FUZZ_SECONDS=N   each libFuzzer target (fuzz/) for N seconds, one after another
#                   (make test runs each for a few seconds)
#   make crash-test CYCLES=N   N SIGKILLs of a settee under concurrent writers (tools/crash-loop.mjs;
#                   default 100; make test runs 3)
CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
# the web UI (Fauxton) from web/ (tools/install-web.sh); installed to $(PREFIX)/share/settee/www
WEB_UI    = web/node_modules/fauxton/dist/release
PKGS      = libh2o-evloop libxxhash yajl openssl zlib icu-uc icu-i18n
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
            -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -I. $(PKG_CFLAGS) -MMD -MP \
            -DSTT_UTILS_DIR='"$(PREFIX)/share/settee/www"'
LDLIBS   += $(PKG_LIBS) -lleveldb -lcurl -lpthread -lm

LIB_SRCS  = $(wildcard src/common/*.c) $(wildcard store/*.c) $(wildcard security/*.c) $(wildcard access/*.c) \
            $(wildcard replication/*.c) $(wildcard qserver/*.c) $(wildcard index/*.c) $(wildcard mango/*.c) \
            $(wildcard design/*.c) $(wildcard src/http/*.c)
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS = $(wildcard tools/*.c)
TOOLS     = $(TOOL_SRCS:tools/%.c=$(BUILD)/%)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNITS     = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: install all run test asan unit bench bench-auth bench-rapid-reset bench-views bench-replicate bench-attachments bench-h2load bench-longpoll check-includes clean format deps test-browser web test-fauxton fuzz fuzz-build crash-test
# keep the objects of tools and tests (make would delete them as intermediates)
.SECONDARY: $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o) $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/main.o
all: $(BUILD)/settee $(BUILD)/settee-qs $(TOOLS) web

web:
	@tools/install-web.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# config.c compiles in $(PREFIX) (where the web UI is installed): rebuilt when PREFIX changes
$(BUILD)/prefix: FORCE
	@mkdir -p $(BUILD); echo '$(PREFIX)' | cmp -s - $@ || echo '$(PREFIX)' >$@
$(BUILD)/obj/src/common/config.o: $(BUILD)/prefix
.PHONY: FORCE

$(BUILD)/libsettee.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/settee: $(BUILD)/obj/src/main.o $(BUILD)/libsettee.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/settee-%: $(BUILD)/obj/tools/settee-%.o $(BUILD)/libsettee.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# the tools that speak HTTP to a running server (src/common/httpc.c)
$(BUILD)/settee-backup $(BUILD)/settee-export $(BUILD)/settee-import: LDLIBS += -lcurl
$(BUILD)/settee-h2flood: LDLIBS += -lssl -lcrypto


# settee-qs, the JavaScript query server: C++ over SpiderMonkey 102, with
# protocol.js compiled in as a raw string. Always built optimized and without
# sanitizers (also in build/asan/): it is a separate process, and libmozjs is not
# instrumented; the pool that drives it runs under ASan in the unit tests.
CXX      ?= c++
MOZJS_CFLAGS := $(shell pkg-config --cflags mozjs-102 2>/dev/null)
MOZJS_LIBS   := $(shell pkg-config --libs mozjs-102 2>/dev/null)
$(BUILD)/gen/protocol.inc: qserver/settee-qs/protocol.js
	@mkdir -p $(dir $@)
	{ printf 'R"__SETTEE_QS__('; cat $<; printf ')__SETTEE_QS__"\n'; } > $@
$(BUILD)/settee-qs: qserver/settee-qs/main.cpp $(BUILD)/gen/protocol.inc
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-invalid-offsetof -Wno-dangling-pointer \
	    -Wno-missing-field-initializers $(MOZJS_CFLAGS) -I$(BUILD)/gen -o $@ $< $(MOZJS_LIBS) -lpthread

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libsettee.a | $(BUILD)/settee-qs
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNITS)

deps:
	@tools/install-deps.sh

run: deps
	$(MAKE) all
	mkdir -p data
	$(BUILD)/settee --bind 127.0.0.1 --port 5984 --data-dir ./data --utils-dir $(CURDIR)/$(WEB_UI)

# The sanitizer build lives in its own folder so build/settee stays the optimized
# binary that benchmarks use.
asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	        LDFLAGS="-fsanitize=address,undefined" all unit

test:
	@tools/install-deps.sh --test
	$(MAKE) all
	$(MAKE) asan
	$(MAKE) fuzz-build
	@tools/run-tests.sh

bench: deps
	$(MAKE) all
	tools/bench/run.sh

bench-auth: deps
	$(MAKE) all
	tools/bench/run.sh auth

bench-rapid-reset: deps
	$(MAKE) all
	tools/bench/rapid-reset.sh

bench-views: deps
	$(MAKE) all
	tools/bench/run.sh views

bench-replicate: deps
	$(MAKE) all
	tools/bench/replicate.sh

bench-attachments: deps
	$(MAKE) all
	tools/bench/attachments.sh

bench-h2load: deps
	$(MAKE) all
	tools/bench/h2load.sh

bench-longpoll: deps
	$(MAKE) all
	tools/bench/longpoll.sh

# Dependencies point one way: common <- store <- replication, security <- access <- http <- main;
# qserver <- design (with store, replication) <- http.
check-includes:
	@! grep -n '#include "\(store\|replication\|security\|src/http\)/' src/common/*.[ch] || { echo "common includes upper layers"; exit 1; }
	@! grep -n '#include "\(replication\|security\|src/http\)/' store/*.[ch] || { echo "store includes upper layers"; exit 1; }
	@! grep -n '#include "\(replication\|src/http\)/' security/*.[ch] || { echo "security includes upper layers"; exit 1; }
	@! grep -n '#include "src/http/' index/*.[ch] || { echo "index includes upper layers"; exit 1; }
	@! grep -n '#include "\(src/http\|mango\)/' index/*.[ch] || { echo "index includes mango or http"; exit 1; }
	@! grep -n '#include "src/http/' mango/*.[ch] || { echo "mango includes http"; exit 1; }
	@! grep -ln 'h2o' mango/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -n '#include "\(src/http\|index\|design\)/' access/*.[ch] || { echo "access includes upper layers"; exit 1; }
	@! grep -n '#include "access/' store/*.[ch] security/*.[ch] replication/*.[ch] || { echo "access included from below"; exit 1; }
	@! grep -ln 'h2o' access/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -ln 'h2o' security/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -n '#include "src/http/' replication/*.[ch] || { echo "replication includes http"; exit 1; }
	@! grep -n '#include "\(store\|replication\|security\|src/http\)/' qserver/*.[ch] || { echo "qserver includes upper layers"; exit 1; }
	@! grep -ln 'h2o' qserver/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -n '#include "\(security\|src/http\|index\)/' design/*.[ch] || { echo "design includes upper layers"; exit 1; }
	@! grep -ln 'h2o' design/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -ln 'h2o' store/*.[ch] src/common/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -ln '#include <leveldb/c.h>' src/*/*.[ch] src/main.c replication/*.[ch] store/*.h || { echo "leveldb outside store/*.c"; exit 1; }
	@echo "include direction ok"

# libFuzzer targets: the library rebuilt by clang with coverage and ASan/UBSan in
# build/fuzz/, one binary per fuzz/fuzz_*.c. tools/run-fuzz.sh runs them. fuzz_route
# replaces the handlers with its own stubs (the first definition wins).
FUZZ_SRCS = $(wildcard fuzz/fuzz_*.c)
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60
fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=clang OPT="-O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	        build/fuzz/libsettee.a
	@for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	    if [ ! build/fuzz/$$n -nt $$f ] || [ build/fuzz/libsettee.a -nt build/fuzz/$$n ]; then \
	        echo "clang $$f"; extra=; \
	        [ $$n = fuzz_route ] && extra=-Wl,--allow-multiple-definition; \
	        clang -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer $(FUZZ_SAN) -std=gnu11 -D_GNU_SOURCE \
	            -DH2O_USE_LIBUV=0 -I. $(PKG_CFLAGS) -o build/fuzz/$$n $$f $$extra build/fuzz/libsettee.a $(LDLIBS) || exit 1; \
	    fi; done

CYCLES ?= 100
crash-test:
	@tools/install-deps.sh --test
	$(MAKE) asan
	node tools/crash-loop.mjs --cycles $(CYCLES) --bin build/asan/settee --check build/asan/settee-check

fuzz:
	@tools/install-deps.sh --test
	$(MAKE) fuzz-build
	tools/run-fuzz.sh $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

test-browser:
	@tools/install-deps.sh
	$(MAKE) all
	@tools/run-browser-tests.sh

test-fauxton:
	@tools/install-deps.sh
	$(MAKE) all
	@tools/run-fauxton-tests.sh

# --- install -------------------------------------------------------------------------
BINDIR   ?= $(PREFIX)/bin
DATADIR  ?= $(PREFIX)/share
MANDIR   ?= $(DATADIR)/man
UNITDIR  ?= $(PREFIX)/lib/systemd/system
# the tools an operator runs (benchmarks stay in the build tree); those the build has
INSTALL_TOOLS = $(filter-out $(BUILD)/settee-bench-% $(BUILD)/settee-h2flood,$(TOOLS)) $(wildcard $(BUILD)/settee-qs)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/settee $(INSTALL_TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(wildcard $(patsubst $(BUILD)/%,man/%.1,$(BUILD)/settee $(INSTALL_TOOLS))) $(DESTDIR)$(MANDIR)/man1/
	sed 's|@BINDIR@|$(BINDIR)|g' packaging/settee.service.in >$(DESTDIR)$(UNITDIR)/settee.service
	chmod 644 $(DESTDIR)$(UNITDIR)/settee.service
	@if [ -f $(WEB_UI)/index.html ]; then \
	    rm -rf $(DESTDIR)$(DATADIR)/settee/www && install -d $(DESTDIR)$(DATADIR)/settee/www && \
	    cp -R $(WEB_UI)/. $(DESTDIR)$(DATADIR)/settee/www/ && \
	    chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/settee/www && \
	    echo "installed the web UI in $(DESTDIR)$(DATADIR)/settee/www"; \
	else echo "the web UI is not built (npm missing?): /_utils will answer 404"; fi
