# lib.sh: what every integration test sources. It owns the test's temp root,
# its ports, the nodes it starts and their cleanup; the tests own only their
# scenario. Output is TAP-like, one result a line, for tests/run to count:
#
#   ok - description          not ok - description          skip - reason
#
# Anything else a test prints starts with "# " so the runner never counts it.
#
# Environment:
#   BIN              directory of meshccd and meshcc (default build/bin)
#   SANITIZER_CHECK  1: the binaries are ASan/UBSan builds; every sanitizer
#                    report of any process the test ran is a failure
#   MESHCC_TEST_KEEP 1: keep the temp root (its path is printed)
#
# Conditions are always awaited with wait_until (a deadline, polling every
# 100 ms), never with a bare sleep: a sleep is either too short on a loaded
# CI machine or wastes time everywhere else.

set -u
set -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-build/bin}
case $BIN in /*) ;; *) BIN=$TOP/$BIN ;; esac
MESHCCD=$BIN/meshccd
MESHCC=$BIN/meshcc
TEST_NAME=$(basename "$0" .sh)
# Debian's own python3 starts in half the time of a pyenv shim; the helpers
# call it in polling loops.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || true)

PASS=0
FAIL=0
declare -a PIDS=()              # every process we started, for cleanup
declare -a CLEANUP_HOOKS=()     # extra teardown commands (netns, ...)
declare -a NODES=()             # node names, in start order
declare -A NODE_DIR NODE_PID NODE_ARGS NODE_NS NODE_WRAP

T=$(mktemp -d "${TMPDIR:-/tmp}/meshcc-$TEST_NAME.XXXXXX") || {
    echo "not ok - cannot create a temp directory"; exit 1; }
chmod 700 "$T"

if [ "${SANITIZER_CHECK:-0}" = 1 ]; then
    # ASan and LSan reports of every process (nodes and CLI calls alike)
    # land in $T/sanitizer.PID, whatever that process did with its stderr;
    # UBSan's go to stderr regardless, which is kept for nodes ($T/NAME.out)
    # and for mc calls ($T/cli.err).
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}:log_path=$T/sanitizer"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
fi

# ---------------------------------------------------------------- results

note () { printf '# %s\n' "$*"; }

ok () { printf 'ok - %s\n' "$*"; PASS=$((PASS + 1)); }

# not_ok DESC: a failed check, followed by what is needed to understand it
# without rerunning: every node's member table and the tail of its log.
not_ok () {
    printf 'not ok - %s\n' "$*"
    FAIL=$((FAIL + 1))
    diag_nodes "${NODES[@]}"
}

skip () { printf 'skip - %s\n' "$*"; }

# check DESC COMMAND...: ok if COMMAND succeeds.
check () {
    local desc=$1; shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# check_within SECONDS DESC COMMAND...: ok if COMMAND succeeds before the
# deadline; the time it took is part of the description.
check_within () {
    local timeout=$1 desc=$2; shift 2
    if wait_until "$timeout" "$@"; then
        ok "$desc (${WAITED}s)"
    else
        not_ok "$desc (not within ${timeout}s)"
    fi
}

# check_within_since T0 SECONDS DESC COMMAND...: the same, with the
# deadline counted from T0 (a now_us value taken earlier).
check_within_since () {
    local t0=$1 timeout=$2 desc=$3; shift 3
    if wait_until_since "$t0" "$timeout" "$@"; then
        ok "$desc (${WAITED}s)"
    else
        not_ok "$desc (not within ${timeout}s)"
    fi
}

# Ends the test: exit status 1 if anything failed (the EXIT trap cleans up).
done_testing () {
    note "$TEST_NAME: $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit
}

# Stops the test early when a prerequisite failed and nothing after it can
# mean anything.
bail () {
    not_ok "$*"
    exit 1
}

# ------------------------------------------------------------------ time

now_us () { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

# seconds (decimal) -> microseconds
_to_us () { awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 }'; }

# wait_until_since T0 SECONDS COMMAND...: runs COMMAND every 100 ms until it
# succeeds (0) or SECONDS have passed since T0 (1). Sets WAITED to the
# seconds from T0 to the success or the give-up.
wait_until_since () {
    local t0=$1 deadline now; shift
    deadline=$((t0 + $(_to_us "$1"))); shift
    while :; do
        if "$@"; then
            now=$(now_us)
            WAITED=$(awk -v d=$((now - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
            return 0
        fi
        now=$(now_us)
        if [ "$now" -ge "$deadline" ]; then
            WAITED=$(awk -v d=$((now - t0)) 'BEGIN { printf "%.2f", d / 1e6 }')
            return 1
        fi
        sleep 0.1
    done
}

wait_until () { wait_until_since "$(now_us)" "$@"; }

# --------------------------------------------------------------- ports

# Each test script passes its own BASE (a multiple of 1000 in 20000..31000,
# below the kernel's ephemeral range); the PID picks one of 45 blocks of 20
# inside it, so two runs of the same script rarely meet either, and every
# port is checked free (TCP and UDP) before it is handed out.
port_range () {
    PORT_NEXT=$(($1 + ($$ % 45) * 20))
    PORT_END=$(($1 + 999))
}

port_free () { [ -z "$(ss -Hltun "sport = :$1" 2>/dev/null)" ]; }

# alloc_port VAR: sets VAR to the next free port of the range.
alloc_port () {
    local p
    while [ "$PORT_NEXT" -le "$PORT_END" ]; do
        p=$PORT_NEXT
        PORT_NEXT=$((PORT_NEXT + 1))
        if port_free "$p"; then
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    bail "no free port left in this test's range"
}

# --------------------------------------------------------------- nodes

# start_node NAME ARGS...: starts `meshccd --foreground --dir $T/NAME
# --name NAME ARGS...` in the background (in network namespace
# NODE_NS[NAME] if set, through the prefix NODE_WRAP[NAME] if set), stdout
# and stderr to $T/NAME.out.
start_node () {
    local name=$1; shift
    NODE_DIR[$name]=${NODE_DIR[$name]:-$T/$name}
    NODE_ARGS[$name]=$(printf '%q ' "$@")
    [[ " ${NODES[*]} " == *" $name "* ]] || NODES+=("$name")
    _spawn_node "$name"
}

# restart_node NAME: starts NAME again with the same directory and options.
restart_node () { _spawn_node "$1"; }

_spawn_node () {
    local name=$1 ns=${NODE_NS[$1]:-}
    local -a wrap=()
    [ -n "$ns" ] && wrap=(ip netns exec "$ns")
    # NODE_WRAP[NAME]: a command prefix (words, shell-quoted) that must
    # exec its arguments, e.g. a script entering a mount namespace.
    [ -n "${NODE_WRAP[$name]:-}" ] && eval "wrap+=(${NODE_WRAP[$name]})"
    eval "local -a args=(${NODE_ARGS[$name]})"
    printf '# start %s: meshccd --foreground --dir %s --name %s %s\n' \
        "$name" "${NODE_DIR[$name]}" "$name" "${NODE_ARGS[$name]}"
    "${wrap[@]}" "$MESHCCD" --foreground --dir "${NODE_DIR[$name]}" \
        --name "$name" "${args[@]}" >>"$T/$name.out" 2>&1 &
    NODE_PID[$name]=$!
    PIDS+=($!)
}

# pid_running PID: true while PID exists and is not a zombie (our nodes are
# our children, so an exited one stays a zombie until reaped).
pid_running () {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

node_running () { pid_running "${NODE_PID[$1]}"; }
node_stopped () { ! node_running "$1"; }

# signal_node NAME SIG
signal_node () { kill -s "$2" "${NODE_PID[$1]}" 2>/dev/null; }

# kill_node NAME: SIGKILL and reap.
kill_node () {
    kill -9 "${NODE_PID[$1]}" 2>/dev/null
    wait "${NODE_PID[$1]}" 2>/dev/null
    return 0
}

# node_exit_code NAME: reaps NAME (which must have exited) and prints its
# exit status.
node_exit_code () { local rc=0; wait "${NODE_PID[$1]}" 2>/dev/null || rc=$?; echo $rc; }

# track_pid PID: a process we did not fork ourselves (a daemon) that cleanup
# must stop too.
track_pid () { PIDS+=("$1"); }

# at_cleanup COMMAND: run at exit, after every process is stopped, in
# reverse order of registration.
at_cleanup () { CLEANUP_HOOKS+=("$1"); }

# --------------------------------------------------------------- the CLI

# mc NAME ARGS...: `meshcc --dir <NAME's dir> ARGS...`, inside NAME's
# network namespace if it has one, bounded in time so a wedged node cannot
# hang the test.
mc () {
    local name=$1 ns=${NODE_NS[$1]:-}; shift
    local -a wrap=()
    [ -n "$ns" ] && wrap=(ip netns exec "$ns")
    if [ "${SANITIZER_CHECK:-0}" = 1 ]; then
        # UBSan (beside ASan) ignores log_path and reports on stderr, which
        # callers often discard: keep a copy for the verdict at exit.
        timeout -k 1 10 "${wrap[@]}" "$MESHCC" --dir "${NODE_DIR[$name]:-$T/$name}" "$@" \
            2> >(tee -a "$T/cli.err" >&2)
    else
        timeout -k 1 10 "${wrap[@]}" "$MESHCC" --dir "${NODE_DIR[$name]:-$T/$name}" "$@"
    fi
}

# members_tsv NAME: NAME's member list, one line per member:
#   name state id incarnation self addr
# Fails when the node does not answer or the output is not the JSON asked for.
members_tsv () {
    mc "$1" members --json 2>/dev/null | "$PY" -c '
import json, sys
for m in json.load(sys.stdin):
    print("\t".join(str(m.get(k, "?")) for k in
                    ("name", "state", "id", "incarnation", "self", "addr")))
' 2>/dev/null
}

# member_field NAME MEMBER FIELD: FIELD of member MEMBER as NAME sees it
# (fails if NAME does not answer or does not know MEMBER).
member_field () {
    mc "$1" members --json 2>/dev/null | "$PY" -c '
import json, sys
for m in json.load(sys.stdin):
    if m.get("name") == sys.argv[1]:
        print(m[sys.argv[2]]); sys.exit(0)
sys.exit(1)
' "$2" "$3" 2>/dev/null
}

# state_of NAME MEMBER: alive|suspect|dead|left, "absent" if NAME does not
# list MEMBER, "unreachable" if NAME does not answer.
state_of () {
    local tsv
    tsv=$(members_tsv "$1") || { echo unreachable; return; }
    awk -F'\t' -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "absent" }' <<<"$tsv"
}

# count_state NAME STATE: how many members NAME lists in STATE.
count_state () {
    local tsv
    tsv=$(members_tsv "$1") || { echo -1; return; }
    awk -F'\t' -v s="$2" '$2 == s { n++ } END { print n + 0 }' <<<"$tsv"
}

# status_field NAME FIELD: one field of `meshcc status --json`.
status_field () {
    mc "$1" status --json 2>/dev/null | "$PY" -c '
import json, sys
v = json.load(sys.stdin)[sys.argv[1]]
print(str(v).lower() if isinstance(v, bool) else v)
' "$2" 2>/dev/null
}

# status_values NAME FIELDS...: several status fields from one reply, on one
# line (for comparisons between counters that keep moving).
status_values () {
    local name=$1; shift
    mc "$name" status --json 2>/dev/null | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
print(" ".join(str(s[f]) for f in sys.argv[1:]))
' "$@" 2>/dev/null
}

# status_ge NAME FIELD MIN: status field FIELD of NAME is a number >= MIN.
status_ge () {
    local v
    v=$(status_field "$1" "$2") || return 1
    awk -v v="$v" -v m="$3" 'BEGIN { exit !(v + 0 >= m + 0) }'
}

# sees_exactly NAME MEMBERS...: NAME lists exactly MEMBERS (by name), every
# one alive.
sees_exactly () {
    local name=$1 tsv want got; shift
    tsv=$(members_tsv "$name") || return 1
    got=$(awk -F'\t' '$2 == "alive" { print $1 }' <<<"$tsv" | sort | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
    [ "$(awk 'NF { n++ } END { print n + 0 }' <<<"$tsv")" -eq $# ] && [ "$got" = "$want" ]
}

# all_see_exactly NODES...: every one of NODES sees exactly NODES alive.
all_see_exactly () {
    local n
    for n in "$@"; do sees_exactly "$n" "$@" || return 1; done
}

# all_see_state MEMBER STATE OBSERVERS...: every observer lists MEMBER in
# STATE.
all_see_state () {
    local member=$1 state=$2 n; shift 2
    for n in "$@"; do [ "$(state_of "$n" "$member")" = "$state" ] || return 1; done
}

# ------------------------------------------------------------ compiling

# The STATS fields the compile tests read. control.h leaves the names to
# the node; each list is tried in order, so a rename is one line here.
STATS_SENT_KEYS=(jobs_remote jobs_sent_to_peers jobs_sent)
STATS_EXECUTED_KEYS=(jobs_executed_for_peers jobs_executed)
STATS_LOCAL_KEYS=(jobs_local)

# wrap NAME ARGS...: `meshcc ARGS...` as a compiler against NAME's node
# (MESHCC_DIR = NAME's directory; the wrapper has no --dir), bounded in
# time so a wedged node cannot hang the test.
wrap () {
    local name=$1; shift
    MESHCC_DIR=${NODE_DIR[$name]:-$T/$name} timeout -k 5 "${WRAP_TIMEOUT:-120}" "$MESHCC" "$@"
}

# stats_value NAME KEY...: the value of the first KEY present in NAME's
# `meshcc stats --json` (fails if NAME does not answer or has none of them).
stats_value () {
    local name=$1; shift
    mc "$name" stats --json 2>/dev/null | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
for k in sys.argv[1:]:
    if k in s:
        print(s[k]); sys.exit(0)
sys.exit(1)
' "$@" 2>/dev/null
}

# stats_sum FIELD_LIST_NAME NAMES...: the sum over NAMES of the first
# present key of the named key list (e.g. STATS_EXECUTED_KEYS); a node that
# does not answer counts 0.
stats_sum () {
    local list=$1[@] name v total=0; shift
    for name in "$@"; do
        v=$(stats_value "$name" "${!list}") || v=0
        total=$((total + ${v%.*}))
    done
    echo "$total"
}

# node_compiles NAME: NAME's node answers STATS, i.e. the node side of
# compiling exists in this build.
node_compiles () { mc "$1" stats --json >/dev/null 2>&1; }

# node_side_compiles: this build's meshccd compiles (answers STATS), asked
# of a throwaway node that is stopped again. If not, NODE_SIDE_WHY says why.
node_side_compiles () {
    local port
    alloc_port port
    start_node probe --listen "127.0.0.1:$port" --discovery off --slots 1
    if ! wait_until 5 eval 'mc probe status >/dev/null 2>&1'; then
        NODE_SIDE_WHY="a probe node did not start"
        kill_node probe
        return 1
    fi
    NODE_SIDE_WHY=$(mc probe stats --json 2>&1 >/dev/null | head -n 1)
    local rc=0
    node_compiles probe || rc=1
    kill_node probe
    return $rc
}

# start_compile_mesh ORIGIN PEER...: a keyed loopback mesh for compile
# tests: ORIGIN with --slots ${ORIGIN_SLOTS:-0} (0: every job must go to a
# peer), each PEER with --slots ${PEER_SLOTS:-2}, all joining ORIGIN; waits
# until every node sees every other alive (bails out if not within 10 s).
# Extra meshccd options for every node: MESH_NODE_ARGS (an array).
start_compile_mesh () {
    local origin=$1 n port; shift
    local -a peers=("$@") extra=("${MESH_NODE_ARGS[@]+"${MESH_NODE_ARGS[@]}"}")
    MESH_KEY=$T/mesh.key
    if [ ! -f "$MESH_KEY" ]; then
        "$MESHCC" --dir "$T/keygen" keygen "$MESH_KEY" >/dev/null 2>"$T/keygen.err" \
            || bail "meshcc keygen: $(cat "$T/keygen.err")"
    fi
    alloc_port port
    local seed=127.0.0.1:$port
    start_node "$origin" --listen "$seed" --mesh-key "$MESH_KEY" --discovery off \
        --slots "${ORIGIN_SLOTS:-0}" "${extra[@]}"
    for n in "${peers[@]}"; do
        alloc_port port
        start_node "$n" --listen "127.0.0.1:$port" --mesh-key "$MESH_KEY" \
            --discovery off --slots "${PEER_SLOTS:-2}" --join "$seed" "${extra[@]}"
    done
    wait_until 10 all_see_exactly "$origin" "${peers[@]}" \
        || bail "the compile mesh ($origin ${peers[*]}) did not converge within 10 s"
    note "compile mesh up: $origin (--slots ${ORIGIN_SLOTS:-0}) and ${peers[*]} (--slots ${PEER_SLOTS:-2}) in ${WAITED}s"
}

# gen_project DIR FILES FUNCTIONS: a project of FILES C files (one with a
# warning) with FUNCTIONS functions each, so a compile takes a noticeable
# fraction of a second at -O2, and a Makefile writing .o and .d files.
gen_project () {
    local dir=$1 files=$2 funcs=$3 i
    mkdir -p "$dir/src" "$dir/include"
    cat >"$dir/include/common.h" <<'EOF'
#include <stdio.h>
#include <string.h>
#define MIX(a, b) (((a) * 31u) ^ ((b) + __LINE__))
EOF
    for ((i = 1; i <= files; i++)); do
        awk -v n="$i" -v f="$funcs" 'BEGIN {
            print "#include \"common.h\""
            for (k = 0; k < f; k++) {
                printf "unsigned f%d_%d (unsigned x, const char *s) {\n", n, k
                printf "    unsigned h = %d;\n    for (unsigned i = 0; i < x %% 97u; i++) {\n", k
                printf "        h = MIX (h, i * %du) + (unsigned) strlen (s);\n", k + n
                printf "        switch (h %% 7u) { case 0: h += %d; break; case 1: h ^= x; break; case 3: h *= 5u; break; default: h -= i; }\n", k
                printf "    }\n    return h;\n}\n"
            }
            if (n == 3) print "int warned (void) { int unused; return 0; }"
        }' >"$dir/src/f$i.c"
    done
    cat >"$dir/Makefile" <<'EOF'
CC ?= gcc
CFLAGS = -g -O2 -Wall -Iinclude
SRCS = $(sort $(wildcard src/*.c))
OBJS = $(patsubst src/%.c,obj/%.o,$(SRCS))
all: $(OBJS)
obj/%.o: src/%.c
	@mkdir -p obj
	$(CC) $(CFLAGS) -MD -MF obj/$*.d -c $< -o $@
clean:
	rm -rf obj
.PHONY: all clean
EOF
}

# same_files DIR_A DIR_B FILE...: every FILE (relative) is byte-identical
# under DIR_A and DIR_B; notes each difference (with the first differing
# bytes) and fails if there is any.
same_files () {
    local a=$1 b=$2 f bad=0; shift 2
    for f in "$@"; do
        if [ ! -e "$a/$f" ] || [ ! -e "$b/$f" ]; then
            note "missing: $a/$f or $b/$f"; bad=1
        elif ! cmp -s "$a/$f" "$b/$f"; then
            note "differs: $f ($(cmp "$a/$f" "$b/$f" 2>&1 | head -n 1))"; bad=1
        fi
    done
    return $bad
}

# ------------------------------------------------------ foreign peers

# build_ztool: compiles $T/ztool, a ZeroMQ peer that is not a meshcc node
# (pyzmq is not installed, and the tests may not install anything):
#   ztool garbage ENDPOINT        a plain DEALER (no security) sending frames
#                                 that must each be dropped and counted; prints
#                                 "expect dropped_KIND N" for each counter
#   ztool curve ENDPOINT KEYFILE SECONDS
#                                 a CURVE client that knows the mesh's public
#                                 key (from KEYFILE) but holds another keypair,
#                                 retrying for SECONDS: the node's ZAP handler
#                                 must refuse it
build_ztool () {
    [ -x "$T/ztool" ] && return 0
    cat >"$T/ztool.c" <<'EOF_C'
#include <czmq.h>

static void
s_send (zsock_t *sock, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    zframe_send (&frame, sock, 0);
}

//  The counter each garbage frame must raise at the node (wire.c's order
//  of checks; an empty frame or a multi-frame message is "malformed").
enum { TRUNCATED, OVERSIZED, BAD_MAGIC, BAD_VERSION, BAD_TYPE, MALFORMED, KINDS };
static const char *s_kind_name [KINDS] = {
    "truncated", "oversized", "bad_magic", "bad_version", "bad_type", "malformed"
};
static int s_expected [KINDS];

static void
s_garbage_frame (zsock_t *sock, int kind, const void *data, size_t size)
{
    s_send (sock, data, size);
    s_expected [kind]++;
}

//  A valid header (version 1, SYN, no flags), then `tail`.
static void
s_garbage_syn (zsock_t *sock, int kind, const void *tail, size_t tail_size)
{
    byte buffer [256] = { 'M', 'C', 1, 1, 0 };
    assert (tail_size <= sizeof buffer - 5);
    if (tail_size)
        memcpy (buffer + 5, tail, tail_size);
    s_garbage_frame (sock, kind, buffer, 5 + tail_size);
}

static int
s_garbage (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zsock_set_linger (sock, 3000);
    zsock_set_sndhwm (sock, 10000);
    if (zsock_connect (sock, "%s", endpoint)) {
        fprintf (stderr, "ztool: cannot connect to %s\n", endpoint);
        return 1;
    }
    s_garbage_frame (sock, MALFORMED, "", 0);
    s_garbage_frame (sock, TRUNCATED, "M", 1);
    s_garbage_frame (sock, TRUNCATED, "MC\x01\x01", 4);
    s_garbage_frame (sock, BAD_MAGIC, "XC\x01\x01\x00", 5);
    s_garbage_frame (sock, BAD_MAGIC, "GET / HTTP/1.0\r\n\r\n", 18);
    for (int i = 0; i < 20; i++) {
        byte junk [300];
        size_t size = 5 + randof (295);
        for (size_t j = 0; j < size; j++)
            junk [j] = (byte) randof (256);
        if (junk [0] == 'M')
            junk [0] = 'm';
        s_garbage_frame (sock, BAD_MAGIC, junk, size);
    }
    s_garbage_frame (sock, BAD_VERSION, "MC\x00\x01\x00", 5);
    s_garbage_frame (sock, BAD_VERSION, "MC\x02\x01\x00", 5);
    s_garbage_frame (sock, BAD_VERSION, "MC\xff\x01\x00" "abcdef", 11);
    s_garbage_frame (sock, BAD_TYPE, "MC\x01\x00\x00", 5);
    s_garbage_frame (sock, BAD_TYPE, "MC\x01\x04\x00", 5);
    s_garbage_frame (sock, BAD_TYPE, "MC\x01\xc8\x00" "abcdef", 11);
    //  unknown flag bits; "compressed" bytes that are not zstd; a
    //  compressed payload announcing 4 GiB
    s_garbage_frame (sock, MALFORMED, "MC\x01\x01\x80", 5);
    s_garbage_frame (sock, MALFORMED, "MC\x01\x01\x01\x00\x00\x00\x10" "not zstd at all!", 25);
    s_garbage_frame (sock, OVERSIZED, "MC\x01\x01\x01\xff\xff\xff\xff" "xxxx", 13);
    //  valid header, bad payloads: a digest count above GOSSIP_MAX_MEMBERS,
    //  a count with no entries behind it, no payload, trailing bytes
    byte payload [64] = { 0 };
    memset (payload, 0xab, 16);                 //  from
    payload [18] = 0x13; payload [19] = 0x88;   //  5000 digests
    s_garbage_syn (sock, OVERSIZED, payload, 20);
    payload [18] = 0; payload [19] = 2;         //  2 digests, 0 bytes
    s_garbage_syn (sock, TRUNCATED, payload, 20);
    s_garbage_syn (sock, TRUNCATED, NULL, 0);
    memset (payload + 16, 0, 8);                //  0 digests, 0 states
    memcpy (payload + 24, "trailing", 8);
    s_garbage_syn (sock, MALFORMED, payload, 32);
    //  multi-frame messages: a node expects one frame per message
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "MC\x01\x01\x00", 5);
    zmsg_addstr (msg, "second frame");
    zmsg_addstr (msg, "third frame");
    zmsg_send (&msg, sock);
    s_expected [MALFORMED]++;
    msg = zmsg_new ();
    zmsg_addstr (msg, "");
    zmsg_addmem (msg, "XC\x01\x01\x00", 5);
    zmsg_send (&msg, sock);
    s_expected [MALFORMED]++;
    //  A gossip frame above the gossip bound (1 MiB) but within the mesh
    //  sockets' ZMQ_MAXMSGSIZE (64 MiB, room for job frames): the decoder
    //  refuses it as oversized.
    size_t big_size = 2 * 1024 * 1024;
    byte *big = (byte *) zmalloc (big_size);
    memcpy (big, "MC\x01\x01\x00", 5);
    s_garbage_frame (sock, OVERSIZED, big, big_size);
    free (big);
    //  Give the pipe time to deliver the above before a frame above
    //  ZMQ_MAXMSGSIZE, after which the node drops the connection (so that
    //  frame is never counted).
    zclock_sleep (300);
    size_t huge_size = 65 * 1024 * 1024;
    byte *huge = (byte *) zmalloc (huge_size);
    memcpy (huge, "MC\x01\x01\x00", 5);
    s_send (sock, huge, huge_size);
    free (huge);
    zclock_sleep (300);
    zsock_destroy (&sock);
    for (int kind = 0; kind < KINDS; kind++)
        printf ("expect dropped_%s %d\n", s_kind_name [kind], s_expected [kind]);
    return 0;
}

static int
s_curve (const char *endpoint, const char *keyfile, int seconds)
{
    zcert_t *mesh = zcert_load (keyfile);
    if (!mesh) {
        fprintf (stderr, "ztool: cannot load %s\n", keyfile);
        return 1;
    }
    zcert_t *mine = zcert_new ();
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    zcert_apply (mine, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (mesh));
    zsock_set_linger (sock, 0);
    zsock_connect (sock, "%s", endpoint);
    s_send (sock, "MC\x01\x01\x00", 5);
    zclock_sleep (seconds * 1000);
    zsock_destroy (&sock);
    zcert_destroy (&mine);
    zcert_destroy (&mesh);
    return 0;
}

int
main (int argc, char *argv [])
{
    if (argc == 3 && streq (argv [1], "garbage"))
        return s_garbage (argv [2]);
    if (argc == 5 && streq (argv [1], "curve"))
        return s_curve (argv [2], argv [3], atoi (argv [4]));
    fprintf (stderr, "usage: ztool garbage ENDPOINT | curve ENDPOINT KEYFILE SECONDS\n");
    return 2;
}
EOF_C
    # shellcheck disable=SC2046
    cc -std=gnu11 -O1 -Wall -o "$T/ztool" "$T/ztool.c" \
        $(pkg-config --cflags --libs libczmq libzmq) >"$T/ztool.err" 2>&1 || {
        sed 's/^/#   /' "$T/ztool.err"
        return 1
    }
}

# ---------------------------------------------------------- diagnostics

# diag_nodes [NAMES...]: member table and log tail of each node (default:
# all), as comment lines.
diag_nodes () {
    local n pid state log
    local -a names=("$@")
    [ $# -eq 0 ] && names=("${NODES[@]}")
    for n in "${names[@]}"; do
        pid=${NODE_PID[$n]:-?}
        state=exited; pid_running "$pid" 2>/dev/null && state=running
        note "--- node $n (pid $pid, $state, dir ${NODE_DIR[$n]:-$T/$n})"
        if [ "$state" = running ]; then
            mc "$n" members 2>&1 | sed 's/^/#   | /'
        fi
        log=${NODE_DIR[$n]:-$T/$n}/meshccd.log
        if [ -s "$log" ]; then
            note "    last lines of $log:"
            tail -n 12 "$log" | sed 's/^/#   > /'
        fi
        if [ -s "$T/$n.out" ]; then
            note "    last lines of its stdout/stderr:"
            tail -n 8 "$T/$n.out" | sed 's/^/#   ! /'
        fi
    done
}

# ------------------------------------------------------------- cleanup

# Processes whose command line names our temp root: catches daemons and
# anything forked behind our back; matched by our unique path, killed by id.
_pids_under_T () {
    local d cmd pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        [[ $cmd == *"$T/"* ]] && echo "$pid"
    done
}

_stop_everything () {
    local pid grace=3 deadline
    [ "${SANITIZER_CHECK:-0}" = 1 ] && grace=10
    local -a all live=()
    mapfile -t all < <(_pids_under_T)
    all+=("${PIDS[@]}")
    for pid in "${all[@]}"; do
        pid_running "$pid" && kill -TERM "$pid" 2>/dev/null && live+=("$pid")
    done
    [ ${#live[@]} -eq 0 ] && return
    deadline=$(($(now_us) + grace * 1000000))
    while [ "$(now_us)" -lt "$deadline" ]; do
        local any=0
        for pid in "${live[@]}"; do pid_running "$pid" && any=1; done
        [ $any = 0 ] && break
        sleep 0.1
    done
    mapfile -t all < <(_pids_under_T)
    for pid in "${live[@]}" "${all[@]}"; do
        if pid_running "$pid"; then
            note "cleanup: pid $pid did not stop on SIGTERM within ${grace}s, SIGKILL"
            kill -9 "$pid" 2>/dev/null
        fi
    done
    wait 2>/dev/null
}

# Every sanitizer report in the temp root (sanitizer.PID files, node logs,
# node stdout/stderr) is a failure.
_sanitizer_verdict () {
    local -a files hits
    local f pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error'
    mapfile -t files < <(find "$T" -maxdepth 2 -type f \( -name 'sanitizer.*' \
        -o -name '*.out' -o -name 'meshccd.log' -o -name '*.err' \) 2>/dev/null)
    [ ${#files[@]} -gt 0 ] || { ok "no sanitizer reports (nothing ran)"; return 0; }
    mapfile -t hits < <(grep -l -E "$pattern" "${files[@]}" 2>/dev/null)
    if [ ${#hits[@]} -eq 0 ]; then
        ok "no AddressSanitizer, LeakSanitizer or UBSan report from any process"
        return 0
    fi
    printf 'not ok - sanitizer reports in %s\n' "${hits[*]}"
    FAIL=$((FAIL + 1))
    for f in "${hits[@]}"; do
        note "=== $f"
        grep -n -A 30 -E "$pattern" "$f" | head -n 60 | sed 's/^/#   /'
    done
    return 1
}

_cleanup () {
    local rc=$? i
    trap - EXIT INT TERM
    # A reader that went away (`t_x.sh | head`) must not stop the cleanup.
    trap '' PIPE
    _stop_everything
    if [ "${SANITIZER_CHECK:-0}" = 1 ]; then
        _sanitizer_verdict || rc=1
    fi
    for ((i = ${#CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUP_HOOKS[$i]}" >/dev/null 2>&1
    done
    if [ "${MESHCC_TEST_KEEP:-0}" = 1 ]; then
        note "kept $T"
    else
        rm -rf "$T"
    fi
    exit $rc
}

_on_signal () {
    printf 'not ok - %s interrupted by signal\n' "$TEST_NAME"
    exit "$1"
}

trap _cleanup EXIT
trap '_on_signal 130' INT
trap '_on_signal 143' TERM

if [ ! -x "$MESHCCD" ] || [ ! -x "$MESHCC" ]; then
    bail "binaries missing: $MESHCCD and $MESHCC (run make bins)"
fi
if [ -z "$PY" ] || ! "$PY" -c 'import json' 2>/dev/null; then
    bail "python3 is needed to read meshcc's JSON output (apt-get install python3)"
fi
command -v ss >/dev/null || bail "ss is needed to find free ports (apt-get install iproute2)"
