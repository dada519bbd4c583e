#!/usr/bin/env bash
# t_toolchain: content-addressed toolchains across the mesh (issue 4).
#
#   1. A peer with no usable gcc of its own (its node runs in a mount
#      namespace where /usr/lib/gcc is an empty tmpfs and gcc's driver an
#      empty file) compiles the origin's jobs with the origin's packaged
#      toolchain, fetched from it; the object is byte-identical to a local
#      compile, and no compile of the build ever fails meanwhile (the first
#      jobs, sent before the toolchain exists, fall back).
#   2. Fetch from a non-origin holder: the origin is killed -9; the first
#      peer stays as a holder that compiles nothing (--slots 0); a new
#      gcc-less peer gets jobs from a new origin (which packages the same
#      compiler into the same hash) and fetches the toolchain from the
#      first peer too (it serves chunks).
#   3. A corrupted archive at a holder is caught by its hash: a peer
#      fetching again while one holder serves corrupt bytes still ends with
#      a good toolchain and an identical object.
#   4. Eviction: with --toolchain-cache-size below one toolchain and jobs
#      of two toolchains (gcc and g++), every job works and the peer keeps
#      one toolchain at a time.
#   5. An origin with a CPU quota (a cpu cgroup) that never goes idle
#      packages its gcc as soon as a gcc-less peer refuses a job for want
#      of it (otherwise it waits for an idle moment).
# Needs root (mount namespaces); skips otherwise.
. "$(dirname "$0")/../lib.sh"
port_range 30000

if [ "$(id -u)" -ne 0 ]; then
    skip "needs root to hide gcc in a mount namespace"
    exit 0
fi
if ! unshare -m --propagation private true 2>/dev/null; then
    skip "cannot create a mount namespace here"
    exit 0
fi
GCC_DRIVER=$(readlink -f "$(command -v gcc)")
GXX_DRIVER=$(readlink -f "$(command -v g++)")
if [ ! -x "$GCC_DRIVER" ] || [ ! -d /usr/lib/gcc ]; then
    skip "no gcc in /usr/bin and /usr/lib/gcc to hide"
    exit 0
fi

# The wrapper a gcc-less node starts through.
: > "$T/empty"
cat > "$T/hide-gcc" <<EOF
#!/bin/sh
# Runs "\$@" where this machine has no usable gcc.
exec unshare -m --propagation private sh -c '
    mount -t tmpfs none /usr/lib/gcc &&
    mount --bind "$T/empty" "$GCC_DRIVER" &&
    mount --bind "$T/empty" "$GXX_DRIVER" &&
    exec "\$@"' sh "\$@"
EOF
chmod +x "$T/hide-gcc"
if "$T/hide-gcc" sh -c "gcc -c -x c /dev/null -o /dev/null" 2>/dev/null; then
    bail "gcc still works behind hide-gcc"
fi
ok "hide-gcc leaves no usable gcc (the peers' nodes run behind it)"

"$MESHCC" --dir "$T/keygen" keygen "$T/mesh.key" >/dev/null || bail "keygen failed"
KEY=(--mesh-key "$T/mesh.key" --discovery off)

mkdir -p "$T/src"
cat > "$T/src/x.c" <<'EOF'
#include <stdio.h>
static int twice (int x) { return 2 * x; }
int main (void) { printf ("%d\n", twice (21)); return 0; }
EOF
touch -d '10 seconds ago' "$T/src/x.c"
(cd "$T/src" && gcc -g -O2 -c x.c -o local.o) || bail "local gcc failed"

executed () { stats_value "$1" jobs_executed_for_peers || echo 0; }
fetched () { stats_value "$1" toolchains_fetched || echo 0; }

# compile_on ORIGIN PEER: compiles through ORIGIN until PEER has executed
# more jobs than before; every compile must succeed (fallbacks allowed).
COMPILES=0
COMPILE_FAILURES=0
compile_once () {
    local origin=$1
    COMPILES=$((COMPILES + 1))
    if ! (cd "$T/src" && MESHCC_DIR=$T/$origin MESHCC_QUIET=1 "$MESHCC" gcc -g -O2 -c x.c -o x.o); then
        COMPILE_FAILURES=$((COMPILE_FAILURES + 1))
    fi
}
peer_ran_one () {
    compile_once "$1"
    [ "$(executed "$2")" -gt "$3" ]
}

# ---------------------------------------------------------------- part 1
alloc_port PA; alloc_port PB
start_node A --listen "127.0.0.1:$PA" --slots 0 "${KEY[@]}"
NODE_WRAP[B]="$(printf '%q' "$T/hide-gcc")"
start_node B --listen "127.0.0.1:$PB" --slots 2 --join "127.0.0.1:$PA" "${KEY[@]}"
check_within 15 "A and B see each other alive" all_see_exactly A B

check_within 60 "gcc-less B compiled one of A's jobs with A's toolchain" peer_ran_one A B 0
check "every compile so far succeeded ($COMPILES compiles, fallbacks allowed)" \
    test "$COMPILE_FAILURES" -eq 0
check "the object B compiled is byte-identical to a local compile" \
    cmp -s "$T/src/x.o" "$T/src/local.o"
check "A packaged its gcc once (toolchains_packaged 1)" \
    test "$(stats_value A toolchains_packaged)" = 1
check "B fetched the toolchain (toolchains_fetched 1)" test "$(fetched B)" = 1
HEX=$(ls "$T/A/toolchains" | sed -n 's/\.tar\.zst$//p' | head -n 1)
check "B holds the same archive, named by its hash" cmp -s "$T/A/toolchains/$HEX.tar.zst" \
    "$T/B/toolchains/$HEX.tar.zst"
check "B's copy hashes to its name (b2sum -l 256)" \
    test "$(b2sum -l 256 "$T/B/toolchains/$HEX.tar.zst" | cut -d' ' -f1)" = "$HEX"

toolchain_listed () {       # NODE HOLDER...: the CLI lists HEX held by each HOLDER
    local node=$1; shift
    mc "$node" toolchains --json | "$PY" -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["hash"] == sys.argv[1]]
if len(rows) != 1: sys.exit("not listed")
r = rows[0]
holders = r["holders"].split(",")
missing = [h for h in sys.argv[3:] if h not in holders]
if missing or r["compiler_version"] != sys.argv[2] or not r["size"] > 0: sys.exit("%s: %s" % (missing, r))
' "$HEX" "$(gcc -dumpfullversion)" "$@"
}
check_within 10 "meshcc toolchains --json on A: the toolchain, held by A (self) and B" \
    toolchain_listed A self B
check_within 10 "meshcc toolchains --json on B: recorded after the fetch, held by B and A" \
    toolchain_listed B self A
check "meshcc toolchains prints a table" sh -c "'$MESHCC' --dir '$T/A' toolchains | grep -q '^${HEX:0:16} '"

# ---------------------------------------------------------------- part 2
# A dies. B comes back with --slots 0: it holds the archive (found in its
# directory at start) but compiles nothing, so the new origin D's jobs can
# only go to the new gcc-less peer C, which must fetch the toolchain.
kill_node A
kill_node B
start_node B --listen "127.0.0.1:$PB" --slots 0 "${KEY[@]}"
alloc_port PC; alloc_port PD
NODE_WRAP[C]="$(printf '%q' "$T/hide-gcc")"
start_node C --listen "127.0.0.1:$PC" --slots 2 --join "127.0.0.1:$PB" "${KEY[@]}"
start_node D --listen "127.0.0.1:$PD" --slots 0 --join "127.0.0.1:$PB" "${KEY[@]}"
mesh_bcd () { all_see_state C alive B D && all_see_state D alive B C && all_see_state B alive C D; }
check_within 15 "B, C and D see each other alive (A is gone)" mesh_bcd
SERVED_BEFORE=$(stats_value B toolchain_chunks_served || echo 0)
check_within 60 "gcc-less C compiled one of D's jobs" peer_ran_one D C 0
check "C fetched the toolchain" test "$(fetched C)" = 1
check "D packaged the same compiler into the same hash" test -f "$T/D/toolchains/$HEX.tar.zst"
SERVED_AFTER=$(stats_value B toolchain_chunks_served || echo 0)
check "B, not an origin, served chunks of it to C ($SERVED_BEFORE -> $SERVED_AFTER)" \
    test "$SERVED_AFTER" -gt "$SERVED_BEFORE"
check "C's object is byte-identical to a local compile" cmp -s "$T/src/x.o" "$T/src/local.o"

# ---------------------------------------------------------------- part 3
# B's archive gets one byte flipped; C loses its toolchain and restarts, so
# its next job makes it fetch again, from B (corrupt) and D (good).
chmod u+w "$T/B/toolchains/$HEX.tar.zst"
printf '\xff' | dd of="$T/B/toolchains/$HEX.tar.zst" bs=1 seek=1000000 conv=notrunc status=none
check "B's archive no longer hashes to its name" \
    test "$(b2sum -l 256 "$T/B/toolchains/$HEX.tar.zst" | cut -d' ' -f1)" != "$HEX"
kill_node C
rm -rf "$T/C/toolchains"
restart_node C
check_within 15 "C is back" all_see_state C alive B D
refetched () { compile_once D; [ "$(fetched C)" -ge 1 ]; }
check_within 60 "C fetched the toolchain again despite B's corrupt copy" refetched
check "C's archive hashes to its name" \
    test "$(b2sum -l 256 "$T/C/toolchains/$HEX.tar.zst" | cut -d' ' -f1)" = "$HEX"
check "no corrupt part file is left at C" sh -c "! ls '$T/C/toolchains' | grep -q '^\.part'"
check_within 60 "C compiles with it again" peer_ran_one D C 0
check "C's object is byte-identical to a local compile" cmp -s "$T/src/x.o" "$T/src/local.o"
# ---------------------------------------------------------------- part 4
# C restarts with --toolchain-cache-size 1M, below one toolchain, and D
# sends it gcc and g++ jobs (two toolchains): every job still works, and
# C keeps one toolchain at a time, evicting the other.
printf '%s\n' '#include <vector>' \
    'int total (const std::vector<int> &v) { int t = 0; for (int x : v) t += x; return t; }' \
    > "$T/src/y.cpp"
touch -d '10 seconds ago' "$T/src/y.cpp"
(cd "$T/src" && g++ -g -O2 -c y.cpp -o local-y.o) || bail "local g++ failed"
kill_node C
start_node C --listen "127.0.0.1:$PC" --slots 2 --join "127.0.0.1:$PB" \
    --toolchain-cache-size 1M "${KEY[@]}"
check_within 15 "C is back with a 1M toolchain store" all_see_state C alive B D
cxx_once () {
    COMPILES=$((COMPILES + 1))
    (cd "$T/src" && MESHCC_DIR=$T/D MESHCC_QUIET=1 "$MESHCC" g++ -g -O2 -c y.cpp -o y.o) \
        || COMPILE_FAILURES=$((COMPILE_FAILURES + 1))
}
alternate_fetched () {  # a C job and a C++ job until C fetched g++'s and ran 4 jobs since
    compile_once D
    cxx_once
    if [ -z "${RAN_AT:-}" ] && [ "$(fetched C)" -ge 1 ]; then RAN_AT=$(executed C); fi
    [ -n "${RAN_AT:-}" ] && [ "$(executed C)" -ge $((RAN_AT + 4)) ]
}
check_within 120 "C ran jobs of both toolchains (it fetched the g++ one)" alternate_fetched
check "D packaged g++ as a second toolchain" test "$(stats_value D toolchains_packaged)" = 2
# Eviction runs on C's size check (once a second) and spares a toolchain a
# job is using: it may come a moment after the last job.
c_evicted () { [ "$(stats_value C toolchains_evicted || echo 0)" -ge 1 ]; }
check_within 10 "C evicted a toolchain to stay within its bound" c_evicted
one_archive () { [ "$(ls "$T/C/toolchains" | grep -c '\.tar\.zst$')" -le 1 ]; }
check_within 5 "C holds at most one toolchain archive" one_archive
check "the C++ object is byte-identical to a local compile" cmp -s "$T/src/y.o" "$T/src/local-y.o"
check "the C object is byte-identical to a local compile" cmp -s "$T/src/x.o" "$T/src/local.o"

# ---------------------------------------------------------------- part 5
# An origin with a CPU quota packages its compiler only once it is idle
# (packaging would take its build's quota), unless a peer refuses a job for
# want of the compiler: E, in a cpu cgroup with a quota, compiles without
# pause (never idle for NODE_BACKGROUND_IDLE_MS), and gcc-less F must still
# get the toolchain.
CG=""
if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    CG=/sys/fs/cgroup/cpu/meshcc-t_toolchain-$$
    mkdir "$CG" && echo 100000 >"$CG/cpu.cfs_period_us" && echo 200000 >"$CG/cpu.cfs_quota_us" \
        || CG=""
elif grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
    CG=/sys/fs/cgroup/meshcc-t_toolchain-$$
    mkdir "$CG" && echo "200000 100000" >"$CG/cpu.max" || CG=""
fi
if [ -z "$CG" ]; then
    skip "part 5: cannot make a cpu cgroup with a quota here"
else
    at_cleanup "rmdir '$CG'"
    printf '#!/bin/sh\n# Runs "$@" in the cpu cgroup %s.\necho $$ > "%s/cgroup.procs" && exec "$@"\n' \
        "$CG" "$CG" > "$T/in-cgroup"
    chmod +x "$T/in-cgroup"
    alloc_port PE; alloc_port PF
    NODE_WRAP[E]="$(printf '%q' "$T/in-cgroup")"
    start_node E --listen "127.0.0.1:$PE" --slots 0 "${KEY[@]}"
    NODE_WRAP[F]="$(printf '%q' "$T/hide-gcc")"
    start_node F --listen "127.0.0.1:$PF" --slots 2 --join "127.0.0.1:$PE" "${KEY[@]}"
    check_within 15 "E and F see each other alive" all_see_exactly E F
    e_confined () {
        grep -q "meshcc-t_toolchain-$$" "/proc/${NODE_PID[E]}/cgroup" \
            && awk -v q="$(status_field E cpu_quota)" 'BEGIN { exit !(q == 2) }'
    }
    check "E runs in the cgroup and sees its quota (cpu_quota $(status_field E cpu_quota))" e_confined
    check_within 90 "gcc-less F compiled one of busy E's jobs with E's toolchain" peer_ran_one E F 0
    check "E packaged at F's refusal, not once idle (its log says so)" \
        grep -q "a peer lacks .*gcc: packaging it now" "$T/E.out"
    check "F's object is byte-identical to a local compile" cmp -s "$T/src/x.o" "$T/src/local.o"
    kill_node E
    kill_node F
fi
check "every compile of the test succeeded ($COMPILES compiles)" test "$COMPILE_FAILURES" -eq 0

done_testing
