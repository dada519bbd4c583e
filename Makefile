# meshcc — see README.md. `make` builds build/bin/{meshccd,meshcc,meshcc-ctl};
# `make run` installs what is missing, builds and starts a node in the
# foreground; `make test` installs, builds (plain and sanitizer) and runs
# every test; `make asan` builds the sanitizer variant in build-asan/.

PREFIX   ?= /usr/local
BUILD    ?= build
PKGS     := libczmq libzmq libsodium sqlite3 libzstd libarchive
CC       ?= gcc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) $(EXTRA_DEFS) -Iinclude -MMD -MP \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
TEST_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

# Shared code (no sockets beyond czmq types, no main): common, gossip, cache.
CORE_SRC   := $(wildcard src/common/*.c src/gossip/*.c src/cache/*.c)
NODE_SRC   := $(filter-out src/node/meshccd.c,$(wildcard src/node/*.c))
CLIENT_SRC := $(filter-out src/client/meshcc.c src/client/meshcc_ctl.c,$(wildcard src/client/*.c))
TEST_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJ   := $(call obj,$(CORE_SRC))
NODE_OBJ   := $(call obj,$(NODE_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
TEST_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all bins tests asan run test install deps clean
all: bins tests
bins: $(BUILD)/bin/meshccd $(BUILD)/bin/meshcc $(BUILD)/bin/meshcc-ctl
tests: $(TEST_BIN)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libmeshcc.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmeshcc-node.a: $(NODE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmeshcc-client.a: $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/meshccd: $(BUILD)/obj/node/meshccd.o $(BUILD)/libmeshcc-node.a $(BUILD)/libmeshcc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LIBS)
# meshcc is the compiler wrapper, started for every compile of a build: it
# links only libc (no czmq, no libzmq; issue 3's 1 ms budget for a local
# job), so it names its objects rather than the libraries, and links
# nothing else. The commands that need czmq are meshcc-ctl, which meshcc
# execs (next to itself, else PREFIX/lib/meshcc/).
WRAPPER_OBJ := $(call obj,src/client/meshcc.c src/client/wrapper.c src/common/compile_args.c \
                          src/common/datadir.c src/common/usage.c)
$(BUILD)/obj/client/meshcc.o: EXTRA_DEFS = -DMESHCC_PREFIX='"$(PREFIX)"'
$(BUILD)/bin/meshcc: $(WRAPPER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wl,--as-needed $^ -o $@
$(BUILD)/bin/meshcc-ctl: $(BUILD)/obj/client/meshcc_ctl.o $(BUILD)/libmeshcc-client.a $(BUILD)/libmeshcc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wl,--as-needed $^ -o $@ $(LIBS)

# Tests of the pure core (gossip, wire) link only the core library, so they
# build even while node or client code is being changed.
CORE_TEST_BIN  := $(filter $(BUILD)/tests/test_gossip% $(BUILD)/tests/test_wire% $(BUILD)/tests/test_common%,$(TEST_BIN))
OTHER_TEST_BIN := $(filter-out $(CORE_TEST_BIN),$(TEST_BIN))
$(CORE_TEST_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmeshcc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LIBS) $(TEST_LIBS)
$(OTHER_TEST_BIN): $(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmeshcc-node.a $(BUILD)/libmeshcc-client.a $(BUILD)/libmeshcc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $^ -o $@ $(LIBS) $(TEST_LIBS)

asan:
	$(MAKE) BUILD=build-asan EXTRA_CFLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all

deps:
	scripts/install-deps

run: deps
	$(MAKE) bins
	$(BUILD)/bin/meshccd --foreground $(RUN_ARGS)

test: deps
	$(MAKE) all
	$(MAKE) asan
	tests/run

# Masquerade links: put PREFIX/lib/meshcc/bin first on PATH and every gcc,
# cc, g++, ... a build runs is meshcc, which then runs the next real one.
MASQUERADE_NAMES := gcc cc g++ c++ clang clang++
install: bins
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/meshcc/bin
	install -m 0755 $(BUILD)/bin/meshccd $(BUILD)/bin/meshcc $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BUILD)/bin/meshcc-ctl $(DESTDIR)$(PREFIX)/lib/meshcc/
	for name in $(MASQUERADE_NAMES); do \
	    ln -sfn ../../../bin/meshcc $(DESTDIR)$(PREFIX)/lib/meshcc/bin/$$name || exit 1; \
	done

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
