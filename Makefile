# settee — one non-recursive Makefile.
#   make            release build: build/settee and the tools
#   make run        install deps, build, serve on 127.0.0.1:5984 with data in ./data
#   make test       install deps, sanitizer build, C unit tests, compat tests
#   make asan       sanitizer build only (build/asan/)
#   make bench      side-by-side benchmark (tools/bench)
#   make bench-auth what authentication costs settee (tools/bench/auth.mjs)
#   make check-includes   the include direction of DESIGN.md
CC       ?= cc
BUILD    ?= build
PKGS      = libh2o-evloop libxxhash yajl openssl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
            -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -I. $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -lleveldb -lpthread -lm

LIB_SRCS  = $(wildcard src/common/*.c) $(wildcard store/*.c) $(wildcard security/*.c) $(wildcard replication/*.c) \
            $(wildcard qserver/*.c) $(wildcard design/*.c) $(wildcard src/http/*.c)
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS = $(wildcard tools/*.c)
TOOLS     = $(TOOL_SRCS:tools/%.c=$(BUILD)/%)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNITS     = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test asan unit bench bench-auth check-includes clean format deps test-browser
# keep the objects of tools and tests (make would delete them as intermediates)
.SECONDARY: $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o) $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/main.o
all: $(BUILD)/settee $(BUILD)/settee-qs $(TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libsettee.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/settee: $(BUILD)/obj/src/main.o $(BUILD)/libsettee.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/settee-%: $(BUILD)/obj/tools/settee-%.o $(BUILD)/libsettee.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

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
	$(BUILD)/settee --bind 127.0.0.1 --port 5984 --data-dir ./data

# The sanitizer build lives in its own folder so build/settee stays the optimized
# binary that benchmarks use.
asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	        LDFLAGS="-fsanitize=address,undefined" all unit

test:
	@tools/install-deps.sh --test
	$(MAKE) all
	$(MAKE) asan
	@tools/run-tests.sh

bench: deps
	$(MAKE) all
	tools/bench/run.sh

bench-auth: deps
	$(MAKE) all
	tools/bench/run.sh auth

# Dependencies point one way: common <- store <- replication, security <- http <- main;
# qserver <- design (with store, replication) <- http.
check-includes:
	@! grep -n '#include "\(store\|replication\|security\|src/http\)/' src/common/*.[ch] || { echo "common includes upper layers"; exit 1; }
	@! grep -n '#include "\(replication\|security\|src/http\)/' store/*.[ch] || { echo "store includes upper layers"; exit 1; }
	@! grep -n '#include "\(replication\|src/http\)/' security/*.[ch] || { echo "security includes upper layers"; exit 1; }
	@! grep -ln 'h2o' security/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -n '#include "src/http/' replication/*.[ch] || { echo "replication includes http"; exit 1; }
	@! grep -n '#include "\(store\|replication\|security\|src/http\)/' qserver/*.[ch] || { echo "qserver includes upper layers"; exit 1; }
	@! grep -ln 'h2o' qserver/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -n '#include "\(security\|src/http\|index\)/' design/*.[ch] || { echo "design includes upper layers"; exit 1; }
	@! grep -ln 'h2o' design/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -ln 'h2o' store/*.[ch] src/common/*.[ch] || { echo "h2o outside src/http"; exit 1; }
	@! grep -ln '#include <leveldb/c.h>' src/*/*.[ch] src/main.c replication/*.[ch] store/*.h || { echo "leveldb outside store/*.c"; exit 1; }
	@echo "include direction ok"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

test-browser:
	@tools/install-deps.sh
	$(MAKE) all
	@tools/run-browser-tests.sh
