#!/usr/bin/env bash
# t_cluster: smoke test of scripts/cluster, the simulated cluster of the
# benchmark harness (issue 5). As root: bad arguments are refused; `cluster
# up 2` makes two namespaces on a bridge with their addresses and two cpu
# cgroups with the expected quotas (0.5 and 1 core, a busy loop in host
# 1); `cluster exec` runs commands inside a
# host (its cgroup and namespace, exit status passed through); one keyed
# node per host, started through `cluster exec`, finds the other by UDP
# beacons alone; a tiny C file compiled through meshcc on host 0 while a
# busy loop saturates host 0's half core, and before that while it is
# idle but h1's slot is free and as fast (MESHCC_STRICT=1: no local
# fallback; h0 has a free slot but reports cpu_saturated, so the job goes to
# its peer) is executed by host 1's node and
# gives the object a local gcc gives; meanwhile host 0 does not package its
# gcc (it waits for an idle slice) and packages it once the busy loop is
# gone; the nodes sit in their hosts' cgroups
# and namespaces; host 1's node, started without --slots, offers one slot
# (its one-core quota, not the machine's CPUs) and reports the
# busy loop of its cgroup as load while host 0's reports none, whatever
# the machine's load average; `cluster down` leaves nothing behind (namespace, link,
# cgroup, state, process). Then an `up` killed with SIGKILL midway, and
# `down` must clean up its leftovers, found by name. Skipped without root
# or working `ip netns`; every cluster is taken down on exit, failure or not.
. "$(dirname "$0")/../lib.sh"
port_range 29000

CLUSTER=$TOP/scripts/cluster

if [ "$(id -u)" -ne 0 ]; then
    skip "needs root for network namespaces and cgroups"
    exit 0
fi
if ! ip netns list >/dev/null 2>&1; then
    skip "ip netns does not work here ($(ip netns list 2>&1 | head -n 1))"
    exit 0
fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    CGV=2; CGROOT=/sys/fs/cgroup
    grep -qw cpu "$CGROOT/cgroup.controllers" || {
        skip "cgroup v2 without the cpu controller"; exit 0; }
elif [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    CGV=1; CGROOT=/sys/fs/cgroup/cpu
else
    CGV=1
    CGROOT=$(awk '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == "cpu") { print $2; exit } }' /proc/self/mounts)
    [ -n "$CGROOT" ] || { skip "no cgroup cpu controller mounted"; exit 0; }
fi

CNAME=t$$                # <= 8 characters: pid_max is at most 4194304
KNAME=k$$                # the cluster whose `up` is killed midway
STATE=/run/meshcc-cluster/$CNAME
at_cleanup "'$CLUSTER' down $CNAME"
at_cleanup "'$CLUSTER' down $KNAME"

# leftovers NAME: everything of cluster NAME still on the machine, one
# thing a line (nothing if all is gone).
leftovers () {
    local name=$1 d pid
    ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^meshcc-$name-" | sed 's/^/namespace /'
    ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' \
        | grep -E "^mk-$name-" | sed 's/^/link /'
    for d in "$CGROOT"/meshcc-"$name"-* /sys/fs/cgroup/meshcc-"$name"-*; do
        [ -d "$d" ] && echo "cgroup $d"
    done
    [ -e "/run/meshcc-cluster/$name" ] && echo "state /run/meshcc-cluster/$name"
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = $$ ] && continue
        if grep -q -- "/mesh[c]c-$name-h" "$d/cgroup" 2>/dev/null \
            || tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -q -- "mesh[c]c-$name-"; then
            pid_running "$pid" && echo "process $pid: $(tr '\0' ' ' 2>/dev/null <"$d/cmdline")"
        fi
    done
    return 0
}
nothing_left () { [ -z "$(leftovers "$1")" ]; }
show_leftovers () { leftovers "$1" | sed 's/^/#   left: /'; }

# --- arguments ---------------------------------------------------------------
bad=""
for args in "up" "up 0" "up two" "up 2 --cpus 1" "up 2 --cpu -1" "up 2 --busy 5" \
            "up 2 --name bad-name" "up 2 --name waytoolongname" "frobnicate"; do
    # shellcheck disable=SC2086
    if "$CLUSTER" $args >"$T/args.out" 2>&1 || ! grep -q 'error' "$T/args.out"; then
        bad+="[$args] "
    fi
done
if [ -z "$bad" ] && nothing_left "$CNAME"; then
    ok "bad arguments are refused with an error and a non-zero exit"
else
    not_ok "bad arguments are refused with an error and a non-zero exit (accepted: $bad)"
fi
check "--help prints the usage" eval '"$CLUSTER" --help | grep -q "^usage: scripts/cluster up N"'

# --- up ----------------------------------------------------------------------
if ! "$CLUSTER" up 2 --cpus 0.5,1 --busy 1 --name "$CNAME" >"$T/up.out" 2>&1; then
    sed 's/^/#   up: /' "$T/up.out"
    bail "scripts/cluster up 2 --cpus 0.5,1 --busy 1 --name $CNAME"
fi
sed 's/^/#   /' "$T/up.out"
ok "scripts/cluster up 2 --cpus 0.5,1 --busy 1 --name $CNAME"

declare -a NS=() ADDR=() CG=()
while read -r idx ns addr cg _; do
    NS[idx]=$ns; ADDR[idx]=$addr; CG[idx]=$cg
done <"$STATE/hosts"
[ ${#NS[@]} -eq 2 ] || bail "the state $STATE/hosts lists ${#NS[@]} hosts, not 2"

QUOTA_US=(50000 100000)
for i in 0 1; do
    check "host $i: namespace ${NS[i]} exists" eval 'ip netns list | grep -q "^${NS[i]}\\b"'
    check "host $i: ${NS[i]} has ${ADDR[i]}/24 with its broadcast address on eth0, lo up" eval \
        'ip -n "${NS[i]}" -4 -o addr show dev eth0 | grep -q "inet ${ADDR[i]}/24 brd ${ADDR[i]%.*}.255 " \
         && ip -n "${NS[i]}" link show lo | grep -q "UP"'
    check "host $i: cgroup ${CG[i]} is in $CGROOT" test "${CG[i]}" = "$CGROOT/meshcc-$CNAME-h$i" -a -d "${CG[i]}"
    if [ $CGV = 1 ]; then
        # Q cores: Q x 100 ms per 100 ms period.
        check "host $i: cpu.cfs_period_us 100000, cpu.cfs_quota_us ${QUOTA_US[i]}" eval \
            '[ "$(cat "${CG[i]}/cpu.cfs_period_us") $(cat "${CG[i]}/cpu.cfs_quota_us")" = "100000 ${QUOTA_US[i]}" ]'
    else
        check "host $i: cpu.max \"${QUOTA_US[i]} 100000\"" eval \
            '[ "$(cat "${CG[i]}/cpu.max")" = "${QUOTA_US[i]} 100000" ]'
    fi
done
check "the hosts are on one /24 and have distinct addresses" eval \
    '[ "${ADDR[0]%.*}" = "${ADDR[1]%.*}" ] && [ "${ADDR[0]}" != "${ADDR[1]}" ]'
check "the bridge mk-$CNAME-br is up" eval 'ip link show "mk-$CNAME-br" | grep -q "state UP"'

# --- exec --------------------------------------------------------------------
check "exec: a command in host 1 is in its cgroup" eval \
    '"$CLUSTER" exec "$CNAME" 1 -- cat /proc/self/cgroup | grep -q ":/meshcc-$CNAME-h1\$"'
check "exec: a command in host 1 is in its namespace (sees ${ADDR[1]})" eval \
    '"$CLUSTER" exec "$CNAME" 1 -- ip -4 -o addr show dev eth0 | grep -q "inet ${ADDR[1]}/"'
"$CLUSTER" exec "$CNAME" 0 -- sh -c 'exit 7' 2>/dev/null; rc=$?
check "exec: the command's exit status is passed through (7: $rc)" test $rc = 7
"$CLUSTER" exec "$CNAME" 2 -- true 2>"$T/exec2.err"; rc=$?
check "exec: a host that does not exist is an error (125: $rc, $(head -n 1 "$T/exec2.err"))" test $rc = 125

# --- one node per host -------------------------------------------------------
KEY=$T/mesh.key
"$MESHCC" --dir "$T/cli" keygen "$KEY" >/dev/null || bail "meshcc keygen failed"
alloc_port PORT          # each node has its own namespace: one port for both
alloc_port BEACON

# start_host_node NODE HOST ARGS...: meshccd in host HOST of the cluster,
# through `scripts/cluster exec` (which keeps the pid: $! is the node).
start_host_node () {
    local name=$1 idx=$2; shift 2
    NODE_DIR[$name]=$T/$name
    NODE_NS[$name]=${NS[idx]}
    NODE_ARGS[$name]=$(printf '%q ' "$@")
    NODES+=("$name")
    note "start $name in host $idx: meshccd --foreground --dir $T/$name --name $name $*"
    "$CLUSTER" exec "$CNAME" "$idx" -- "$MESHCCD" --foreground --dir "$T/$name" \
        --name "$name" "$@" >>"$T/$name.out" 2>&1 &
    NODE_PID[$name]=$!
    PIDS+=($!)
}
start_host_node h0 0 --listen "${ADDR[0]}:$PORT" --mesh-key "$KEY" \
    --discovery on --beacon-port "$BEACON" --slots 1
start_host_node h1 1 --listen "${ADDR[1]}:$PORT" --mesh-key "$KEY" \
    --discovery on --beacon-port "$BEACON"
if wait_until 15 all_see_exactly h0 h1; then
    ok "the nodes on host 0 and host 1 see each other alive, by beacons alone (${WAITED}s)"
else
    bail "the nodes on host 0 and host 1 do not see each other alive within 15 s"
fi

for n in h0 h1; do
    i=${n#h}
    check "node $n (pid ${NODE_PID[$n]}) is in cgroup meshcc-$CNAME-h$i" eval \
        'grep -q ":/meshcc-$CNAME-h$i\$" "/proc/${NODE_PID[$n]}/cgroup"'
    check "node $n is in namespace ${NS[i]}" eval \
        '[ "$(ip netns identify "${NODE_PID[$n]}")" = "${NS[i]}" ]'
done
check "member h1 has host 1's address as h0 sees it" \
    test "$(member_field h0 h1 addr)" = "${ADDR[1]}:$PORT"

# --- the node offers its host's slice ----------------------------------------
CPUS=$(nproc)
slots=$(member_field h0 h1 slots)
if [ "$CPUS" -ge 2 ]; then
    check "h1 (no --slots, quota 1 core, $CPUS CPUs) offers 1 slot ($slots)" test "$slots" = 1
else
    skip "one CPU here: the quota cannot be told from the CPU count (h1 offers $slots)"
fi
# The load h0 sees for h1 is h1's cgroup's: the busy loop, averaged over
# 10 s, passes 0.5 after ~7 s; h0's own host has no other work.
h1_busy () {
    local l; l=$(member_field h0 h1 load) || return 1
    awk -v l="$l" 'BEGIN { exit !(l >= 0.5) }'
}
if wait_until 40 h1_busy; then
    ok "h1 reports its host's busy loop as load ($(member_field h0 h1 load) after ${WAITED}s)"
else
    not_ok "h1 reports its host's busy loop as load ($(member_field h0 h1 load) after 40 s)"
fi
check "h0 reports no load on its idle host ($(member_field h1 h0 load); machine: $(cut -d' ' -f1 /proc/loadavg))" \
    awk -v l="$(member_field h1 h0 load)" 'BEGIN { exit !(l < 0.5) }'

# --- a compile started on host 0 runs on host 1 ------------------------------
mkdir -p "$T/w" "$T/tmp"
cd "$T/w" || bail "cannot enter $T/w"
cat >tiny.c <<'EOF'
#include <stdio.h>
int main (void) { printf ("hello from %s\n", __FILE__); return 0; }
EOF
gcc -g -O2 -c tiny.c -o ref.o || bail "gcc cannot compile a trivial file"
h0_saturated () { [ "$(status_field h0 cpu_saturated)" = true ]; }
h0_idle () { [ "$(status_field h0 cpu_saturated)" = false ]; }
# Saturated, and its averaged share clear of the 0.5 threshold: the
# average rises towards the busy loop's share over its 3 s window, and a
# job placed the moment it first crosses 0.5 may see it dip back under.
h0_clearly_saturated () {
    local sat share
    read -r sat share < <(status_values h0 cpu_saturated cpu_throttled)
    [ "$sat" = true ] && awk -v s="$share" 'BEGIN { exit !(s >= 0.6) }'
}
if wait_until 15 h0_idle; then
    ok "h0 reports its idle slice not saturated (${WAITED}s)"
else
    not_ok "h0 reports its idle slice not saturated (cpu_saturated: $(status_field h0 cpu_saturated))"
fi
# Not saturated, its slot free, but h0 has a quota and h1 a free slot at
# least as fast (one core with a busy loop: half a core's worth, h0's
# whole slice): the job goes to h1 first (placement_peer_first).
local0=$(stats_value h0 jobs_local) || local0="?"
sent0=$(stats_value h0 "${STATS_SENT_KEYS[@]}") || sent0=0
"$CLUSTER" exec "$CNAME" 0 -- env MESHCC_DIR="$T/h0" MESHCC_STRICT=1 TMPDIR="$T/tmp" \
    timeout -k 5 60 "$MESHCC" gcc -g -O2 -c tiny.c -o tiny0.o 2>"$T/compile0.err"; rc=$?
sent=$(stats_value h0 "${STATS_SENT_KEYS[@]}") || sent="?"
if [ $rc = 0 ] && cmp -s tiny0.o ref.o && [ "$(stats_value h0 jobs_local)" = "$local0" ] \
   && [ "${sent%.*}" -gt "${sent0%.*}" ] 2>/dev/null; then
    ok "h0 idle, with a quota: its job goes to h1's free slot before its own (${STATS_SENT_KEYS[0]} $sent0 -> $sent, jobs_local $local0)"
else
    not_ok "h0 idle, with a quota: its job goes to h1's free slot before its own (exit $rc, ${STATS_SENT_KEYS[0]} $sent0 -> $sent, jobs_local $local0 -> $(stats_value h0 jobs_local))"
    sed 's/^/#   stderr: /' "$T/compile0.err"
fi
# Saturate host 0: a busy loop in its half-core slice (stopped by `down`).
"$CLUSTER" exec "$CNAME" 0 -- sh -c 'while :; do :; done' &
BUSY0=$!
PIDS+=("$BUSY0")
if wait_until 20 h0_clearly_saturated; then
    ok "h0 reports its slice saturated by a busy loop (${WAITED}s; quota $(status_field h0 cpu_quota), cpu_throttled $(status_field h0 cpu_throttled))"
else
    not_ok "h0 reports its slice saturated by a busy loop (cpu_saturated: $(status_field h0 cpu_saturated), cpu_throttled $(status_field h0 cpu_throttled))"
fi
local0=$(stats_value h0 jobs_local) || local0="?"
sent0=$(stats_value h0 "${STATS_SENT_KEYS[@]}") || sent0=0
"$CLUSTER" exec "$CNAME" 0 -- env MESHCC_DIR="$T/h0" MESHCC_STRICT=1 TMPDIR="$T/tmp" \
    timeout -k 5 60 "$MESHCC" gcc -g -O2 -c tiny.c -o tiny.o 2>"$T/compile.err"; rc=$?
if [ $rc = 0 ] && cmp -s tiny.o ref.o; then
    ok "meshcc gcc -c on host 0 (saturated, MESHCC_STRICT=1): exit 0, the object gcc gives"
else
    not_ok "meshcc gcc -c on host 0 (saturated, MESHCC_STRICT=1): exit $rc, the object gcc gives"
    sed 's/^/#   stderr: /' "$T/compile.err"
fi
executed=$(stats_value h1 "${STATS_EXECUTED_KEYS[@]}") || executed="?"
check "host 1's node executed a job for a peer (${STATS_EXECUTED_KEYS[0]} $executed)" \
    test "${executed%.*}" -ge 1 2>/dev/null
sent=$(stats_value h0 "${STATS_SENT_KEYS[@]}") || sent="?"
check "host 0's node sent it to a peer (${STATS_SENT_KEYS[0]} $sent0 -> $sent), no fallback ($(stats_value h0 fallbacks))" \
    eval '[ "${sent%.*}" -gt "$sent0" ] && [ "$(stats_value h0 fallbacks)" = 0 ]'
check "h0 did not compile it in its free slot (jobs_local $local0 -> $(stats_value h0 jobs_local))" \
    test "$(stats_value h0 jobs_local)" = "$local0"
# Packaging its gcc for peers would take the busy slice's CPU (its quota,
# whatever its priority): it waits for an idle node (checked again below,
# once the busy loop is gone).
# (Its registry is looked at first, at once: nothing there, in a new
# directory.)
# (The idle-slice job above may have let it start: then it is paused.)
gcc_waits () {
    local what
    what=$(status_field h0 toolchain_packaging)
    [[ "$what" == *"gcc waiting for an idle node"* || "$what" == *"gcc paused"* ]] \
        && [ "$(status_field h0 toolchains_held)" = 0 ]
}
if wait_until 10 gcc_waits; then
    ok "h0 does not package its gcc while its slice is busy (toolchain_packaging: $(status_field h0 toolchain_packaging))"
else
    not_ok "h0 does not package its gcc while its slice is busy (toolchain_packaging: $(status_field h0 toolchain_packaging), toolchains_held $(status_field h0 toolchains_held))"
fi
# With no peer left, the saturated host's own slot takes the job at once
# (it waited for a peer's slot that no one offered, until the queue timed out).
kill -TERM "${NODE_PID[h1]}" 2>/dev/null
wait "${NODE_PID[h1]}" 2>/dev/null
h1_gone () { case $(state_of h0 h1) in left|dead|absent) return 0;; esac; return 1; }
wait_until 15 h1_gone || note "h0 still lists h1 as $(state_of h0 h1)"
local0=$(stats_value h0 jobs_local) || local0="?"
t0=$(now_us)
"$CLUSTER" exec "$CNAME" 0 -- env MESHCC_DIR="$T/h0" MESHCC_STRICT=1 TMPDIR="$T/tmp" \
    timeout -k 5 30 "$MESHCC" gcc -g -O2 -c tiny.c -o tiny2.o 2>"$T/compile2.err"; rc=$?
took=$(( ($(now_us) - t0) / 1000 ))
if [ $rc = 0 ] && cmp -s tiny2.o ref.o && h0_saturated; then
    ok "saturated h0 with no peer compiles in its own slot (exit 0, ${took} ms, the object gcc gives)"
else
    not_ok "saturated h0 with no peer compiles in its own slot (exit $rc, ${took} ms, saturated: $(status_field h0 cpu_saturated))"
    sed 's/^/#   stderr: /' "$T/compile2.err"
fi
check "... in its local slot (jobs_local $local0 -> $(stats_value h0 jobs_local)), no fallback" \
    eval '[ "$(stats_value h0 jobs_local)" -gt "$local0" ] && [ "$(stats_value h0 fallbacks)" = 0 ]'
kill "$BUSY0" 2>/dev/null
# The busy loop gone and no job for a while, h0 packages its gcc.
if wait_until 120 status_ge h0 toolchains_held 1; then
    ok "h0 packages its gcc once its slice is idle (${WAITED}s; toolchain_packaging: $(status_field h0 toolchain_packaging))"
else
    not_ok "h0 packages its gcc once its slice is idle (toolchain_packaging: $(status_field h0 toolchain_packaging), waits $(stats_value h0 toolchain_packaging_waits))"
fi
cd "$T" || true

"$CLUSTER" status "$CNAME" >"$T/status.out" 2>&1; rc=$?
sed 's/^/#   /' "$T/status.out"
check "status lists both hosts with their addresses" eval \
    '[ $rc = 0 ] && grep -q "meshcc-$CNAME-h0 .*${ADDR[0]}/24" "$T/status.out" \
     && grep -q "meshcc-$CNAME-h1 .*${ADDR[1]}/24" "$T/status.out"'

# --- down --------------------------------------------------------------------
t0=$(now_us)
timeout -k 5 30 "$CLUSTER" down "$CNAME" >"$T/down.out" 2>&1; rc=$?
sed 's/^/#   /' "$T/down.out"
check "scripts/cluster down $CNAME exits 0 ($(( ($(now_us) - t0) / 1000 )) ms)" test $rc = 0
check "both nodes were stopped by down" eval '! node_running h0 && ! node_running h1'
if nothing_left "$CNAME"; then
    ok "nothing of cluster $CNAME is left: no namespace, link, cgroup, state or process"
else
    not_ok "nothing of cluster $CNAME is left"
    show_leftovers "$CNAME"
fi
"$CLUSTER" down "$CNAME" >/dev/null 2>&1; rc=$?
check "a second down is a no-op that succeeds ($rc)" test $rc = 0

# --- an up killed midway -----------------------------------------------------
# 32 hosts take long enough that SIGKILL lands midway; SIGKILL leaves `up`
# no chance to clean up, so what is left must be found by name (the state
# directory is removed too, as if lost).
"$CLUSTER" up 32 --name "$KNAME" --busy 0 >"$T/k.out" 2>&1 &
kpid=$!
PIDS+=("$kpid")
wait_until 10 test -e "/run/netns/meshcc-$KNAME-h0"
kill -9 "$kpid" 2>/dev/null
{ wait "$kpid"; } 2>/dev/null
made=$(ip netns list | grep -c "^meshcc-$KNAME-")
rm -rf "/run/meshcc-cluster/$KNAME"
note "up 32 killed with SIGKILL after $made namespace(s); state directory removed"
check "an interrupted up leaves something behind for down to find" eval '! nothing_left "$KNAME"'
timeout -k 5 30 "$CLUSTER" down "$KNAME" >"$T/kdown.out" 2>&1; rc=$?
sed 's/^/#   /' "$T/kdown.out"
if [ $rc = 0 ] && nothing_left "$KNAME"; then
    ok "down after a killed up removes everything, found by name (exit $rc)"
else
    not_ok "down after a killed up removes everything, found by name (exit $rc)"
    show_leftovers "$KNAME"
fi

done_testing
