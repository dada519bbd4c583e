#!/usr/bin/env bash
# t_placement: an origin sees a peer's slot free as soon as its job there
# ends (issue 5). A loopback mesh of an origin with --slots 0 and one peer
# with --slots 1; compiles run one after another, each long enough (about
# a third of a second) that the peer gossips "running 1" while it runs.
# The next job must go straight to the peer: the origin takes off the
# peer's gossiped running count the jobs of its own that ended since that
# state arrived. (It used to take a state as seen only at the next
# placement, so a state that arrived while the job ran wiped the job's end
# out, and the next job queued for a gossip round with the peer idle.)
. "$(dirname "$0")/../lib.sh"
port_range 32000

if ! node_side_compiles; then
    skip "placement: this meshccd does not compile yet ($NODE_SIDE_WHY)"
    done_testing
fi
ORIGIN_SLOTS=0 PEER_SLOTS=1 start_compile_mesh o1 p1

gen_project "$T/p" 1 60
cd "$T/p" || bail "cannot enter $T/p"
gcc -g -O2 -Wall -Iinclude -c src/f1.c -o ref.o 2>/dev/null || bail "gcc cannot compile the project"

# compile N: one compile through o1, strict (a fallback fails it).
compile () {
    setsid -w env MESHCC_DIR="$T/o1" MESHCC_STRICT=1 \
        "$MESHCC" gcc -g -O2 -Wall -Iinclude -c src/f1.c -o "obj$1.o" 2>"obj$1.err"
}
# The first job also takes the toolchain to p1.
compile 0 || bail "the first compile through the mesh failed: $(head -n 3 obj0.err)"

JOBS=12
queued0=$(stats_value o1 jobs_queued); sent0=$(stats_sum STATS_SENT_KEYS o1)
failed=0
for ((i = 1; i <= JOBS; i++)); do
    compile "$i" && cmp -s "obj$i.o" ref.o || failed=$((failed + 1))
done
queued=$(( $(stats_value o1 jobs_queued) - queued0 ))
sent=$(( $(stats_sum STATS_SENT_KEYS o1) - sent0 ))
check "$JOBS compiles one after another through the peer: all succeed, objects identical ($failed failed)" \
    test "$failed" = 0
check "every one ran on the peer ($sent of $JOBS sent)" test "$sent" = "$JOBS"
# A state made before a job ended can still arrive just after the RESULT
# (gossip and job traffic are separate messages): at most a rare one.
check "the peer's slot was seen free at once: $queued of $JOBS jobs queued (at most 2)" \
    test "$queued" -le 2
mc o1 stats >stats.txt 2>&1 && grep -E 'queue|sent' stats.txt | sed 's/^/#   o1 stats| /'

done_testing
