#!/usr/bin/env bash
# t_blobs: job input blobs fetched from any holder (issue 4).
#   1. O (--slots 0) sends a job to P1, which receives its inputs inline.
#   2. P1 comes back with --slots 0: it keeps its blobs but compiles
#      nothing. P2 joins and runs a job (inputs inline from O).
#   3. P2 loses its blob store (killed, DIR/cache removed, restarted): O
#      still believes P2 holds the inputs, inlines none and names P1, then
#      itself, as holders. P2 fetches every input from P1: P1 serves blob
#      chunks, O serves none and sends no blob; the object is identical to
#      a local compile.
#   4. Fallback: P2 loses its store again and cannot fetch (its
#      blob-parts directory is a file): its fetches fail, it asks O with
#      NEED, and the job still succeeds with an identical object.
#   5. A dead holder: P2 loses its store again and P1 is killed -9 just
#      before the next job, while O and P2 still believe it alive: P2 gives
#      P1 up and gets the inputs from O; the job succeeds.
. "$(dirname "$0")/../lib.sh"
port_range 28000

command -v gcc >/dev/null || bail "gcc is not installed"
if ! node_side_compiles; then
    skip "this meshccd does not compile ($NODE_SIDE_WHY)"
    done_testing
fi
"$MESHCC" --dir "$T/keygen" keygen "$T/mesh.key" >/dev/null || bail "keygen failed"
KEY=(--mesh-key "$T/mesh.key" --discovery off)

# A source with a few headers of its own besides the system's.
mkdir -p "$T/src/inc"
for h in a b c d; do
    printf '#define VALUE_%s %d\nstatic inline int get_%s (void) { return VALUE_%s; }\n' \
        "$h" "${#h}" "$h" "$h" > "$T/src/inc/$h.h"
done
cat > "$T/src/x.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "inc/a.h"
#include "inc/b.h"
#include "inc/c.h"
#include "inc/d.h"
int main (void) { printf ("%d %zu\n", get_a () + get_b () + get_c () + get_d (), strlen ("x")); return 0; }
EOF
touch -d '10 seconds ago' "$T/src/x.c" "$T/src/inc/"*.h
(cd "$T/src" && gcc -g -O2 -c x.c -o local.o) || bail "local gcc failed"

COMPILES=0
COMPILE_FAILURES=0
compile_once () {
    COMPILES=$((COMPILES + 1))
    rm -f "$T/src/x.o"
    if ! (cd "$T/src" && MESHCC_DIR=$T/O MESHCC_QUIET=1 "$MESHCC" gcc -g -O2 -c x.c -o x.o); then
        COMPILE_FAILURES=$((COMPILE_FAILURES + 1))
    fi
}
stat_of () { stats_value "$1" "$2" || echo 0; }
executed () { stat_of "$1" jobs_executed_for_peers; }
# ran_one PEER BEFORE: compiles once through O; true once PEER has executed
# more than BEFORE jobs.
ran_one () { compile_once; [ "$(executed "$1")" -gt "$2" ]; }
identical () { cmp -s "$T/src/x.o" "$T/src/local.o"; }

alloc_port PO; alloc_port P1PORT; alloc_port P2PORT
start_node O --listen "127.0.0.1:$PO" --slots 0 "${KEY[@]}"
start_node P1 --listen "127.0.0.1:$P1PORT" --slots 2 --join "127.0.0.1:$PO" "${KEY[@]}"
check_within 15 "O and P1 see each other alive" all_see_exactly O P1

# ---------------------------------------------------------------- part 1
check_within 30 "P1 ran one of O's jobs" ran_one P1 0
check "the object P1 compiled is byte-identical to a local compile" identical
check "P1 received the inputs inline (blobs_received > 0)" test "$(stat_of P1 blobs_received)" -gt 0

# ---------------------------------------------------------------- part 2
kill_node P1
start_node P1 --listen "127.0.0.1:$P1PORT" --slots 0 --join "127.0.0.1:$PO" "${KEY[@]}"
start_node P2 --listen "127.0.0.1:$P2PORT" --slots 2 --join "127.0.0.1:$PO" "${KEY[@]}"
check_within 15 "O, P1 (now --slots 0) and P2 see each other alive" all_see_exactly O P1 P2
check_within 30 "P2 ran one of O's jobs" ran_one P2 0
check "its object is byte-identical to a local compile" identical

# ---------------------------------------------------------------- part 3
# wipe_p2: P2 restarted without its blob store (same node id).
wipe_p2 () {
    kill_node P2
    rm -rf "$T/P2/cache"
    restart_node P2
    wait_until 15 all_see_exactly O P1 P2
}
wipe_p2 || bail "P2 did not come back"
RAN=$(executed P2)
SENT=$(stat_of O blobs_sent)
O_SERVED=$(stat_of O blob_chunks_served)
check_within 30 "P2, without its blobs, ran one of O's jobs" ran_one P2 "$RAN"
check "its object is byte-identical to a local compile" identical
FETCHED=$(stat_of P2 blobs_fetched_from_peers)
check "P2 fetched the inputs from holders (blobs_fetched_from_peers $FETCHED)" test "$FETCHED" -gt 2
check "P1, not the origin, served them (blob_chunks_served $(stat_of P1 blob_chunks_served))" \
    test "$(stat_of P1 blob_chunks_served)" -ge "$FETCHED"
check "O served no blob chunk ($O_SERVED -> $(stat_of O blob_chunks_served))" \
    test "$(stat_of O blob_chunks_served)" = "$O_SERVED"
check "O sent no blob itself (blobs_sent $SENT -> $(stat_of O blobs_sent))" \
    test "$(stat_of O blobs_sent)" = "$SENT"
check "no blob fetch failed at P2" test "$(stat_of P2 blob_fetch_failures)" = 0
check "no part file is left at P2" sh -c "[ -z \"\$(ls -A '$T/P2/blob-parts')\" ]"

# ---------------------------------------------------------------- part 4
kill_node P2
rm -rf "$T/P2/cache" "$T/P2/blob-parts"
: > "$T/P2/blob-parts"                  # no part file can be created
restart_node P2
wait_until 15 all_see_exactly O P1 P2 || bail "P2 did not come back"
RAN=$(executed P2)
SENT=$(stat_of O blobs_sent)
check_within 30 "P2, unable to fetch, ran one of O's jobs" ran_one P2 "$RAN"
check "its object is byte-identical to a local compile" identical
check "P2's fetches failed (blob_fetch_failures $(stat_of P2 blob_fetch_failures))" \
    test "$(stat_of P2 blob_fetch_failures)" -gt 0
check "O answered P2's NEED (blobs_sent $SENT -> $(stat_of O blobs_sent))" \
    test "$(stat_of O blobs_sent)" -gt "$SENT"
rm -f "$T/P2/blob-parts"

# ---------------------------------------------------------------- part 5
wipe_p2 || bail "P2 did not come back"
RAN=$(executed P2)
O_SERVED=$(stat_of O blob_chunks_served)
SENT=$(stat_of O blobs_sent)
kill_node P1
T0=$(now_us)
check_within 30 "with P1 just killed, P2 (without its blobs) ran one of O's jobs" ran_one P2 "$RAN"
note "the job took $WAITED s after the kill"
check "its object is byte-identical to a local compile" identical
check "O served P2 the inputs instead (chunks $O_SERVED -> $(stat_of O blob_chunks_served), NEED blobs $SENT -> $(stat_of O blobs_sent))" \
    test "$(stat_of O blob_chunks_served)" -gt "$O_SERVED" -o "$(stat_of O blobs_sent)" -gt "$SENT"
check "every compile of the test succeeded ($COMPILES compiles)" test "$COMPILE_FAILURES" -eq 0

done_testing
