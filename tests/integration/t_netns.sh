#!/usr/bin/env bash
# t_netns: discovery on a real broadcast segment. Three network namespaces
# joined by a bridge (veth pairs, 10.77.X.{1,2,3}/24), one keyed node in
# each with discovery on and no --join: the beacons alone must make every
# node see all three alive within 10 s. Needs root; creates only its own
# namespaces, veths and bridge (names carry our PID), gives the root
# namespace no address, and removes all of it on exit, failure or not.
. "$(dirname "$0")/../lib.sh"
port_range 24000

if [ "$(id -u)" -ne 0 ]; then
    skip "needs root for network namespaces"
    exit 0
fi
if ! ip netns list >/dev/null 2>&1; then
    skip "ip netns does not work here ($(ip netns list 2>&1 | head -n 1))"
    exit 0
fi

ID=$$
X=$((ID % 200 + 20))                # 10.77.20.0/24 .. 10.77.219.0/24
BR=mcbr$ID                          # <= 11 characters (pid_max 4194304)
NS=(mcns${ID}a mcns${ID}b mcns${ID}c)

teardown_net () {
    local i
    for i in 0 1 2; do
        ip netns del "${NS[$i]}" 2>/dev/null
        ip link del "mcv$ID$i" 2>/dev/null
    done
    ip link del "$BR" 2>/dev/null
    return 0
}
at_cleanup teardown_net

setup_net () {
    local i ns
    ip link add "$BR" type bridge || return 1
    ip link set "$BR" up || return 1
    for i in 0 1 2; do
        ns=${NS[$i]}
        ip netns add "$ns" || return 1
        ip link add "mcv$ID$i" type veth peer name "mcp$ID$i" || return 1
        ip link set "mcv$ID$i" master "$BR" up || return 1
        ip link set "mcp$ID$i" netns "$ns" || return 1
        ip -n "$ns" addr add "10.77.$X.$((i + 1))/24" brd + dev "mcp$ID$i" || return 1
        ip -n "$ns" link set "mcp$ID$i" up || return 1
        ip -n "$ns" link set lo up || return 1
    done
}
if ! setup_net >"$T/net.err" 2>&1; then
    skip "cannot build the namespace network: $(tail -n 1 "$T/net.err")"
    exit 0
fi
ok "3 namespaces on bridge $BR, 10.77.$X.{1,2,3}/24"

# The segment must carry broadcast and TCP before the nodes can be judged:
# a listener in the second namespace waits for one broadcast datagram and
# one connection from the first.
probe_listener () {
    ip netns exec "${NS[1]}" "$PY" -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("", 9))
u.settimeout(5)
t = socket.socket()
t.bind((sys.argv[1], 9))
t.listen()
t.settimeout(5)
u.recvfrom(16)
t.accept()
' "10.77.$X.2"
}
# True once the listener has exited; until then sends it one more probe.
probe_done () {
    pid_running "$LISTENER" || return 0
    ip netns exec "${NS[0]}" "$PY" -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
u.sendto(b"hi", (sys.argv[1], 9))
socket.create_connection((sys.argv[2], 9), timeout=0.5)
' "10.77.$X.255" "10.77.$X.2" >/dev/null 2>&1
    return 1
}
reach () {
    probe_listener >"$T/probe.out" 2>&1 &
    LISTENER=$!
    PIDS+=("$LISTENER")
    wait_until 4 probe_done
    wait "$LISTENER"
}
if ! reach; then
    skip "the bridge does not carry traffic between namespaces (br_netfilter or a firewall?)"
    exit 0
fi
ok "the segment carries broadcast and TCP"

KEY=$T/mesh.key
"$MESHCC" --dir "$T/cli" keygen "$KEY" >/dev/null || bail "meshcc keygen failed"
alloc_port PORT          # each node has its own namespace: one port for all
alloc_port BEACON
NAMES=(ns1 ns2 ns3)
for i in 0 1 2; do
    NODE_NS[${NAMES[$i]}]=${NS[$i]}
    start_node "${NAMES[$i]}" --listen "10.77.$X.$((i + 1)):$PORT" --mesh-key "$KEY" \
        --discovery on --beacon-port "$BEACON"
done
t0=$(now_us)
check_within_since "$t0" 10 "with discovery alone, every node lists all 3 alive" \
    all_see_exactly "${NAMES[@]}"
check "discovery is on at every node" eval \
    '[ "$(status_field ns1 discovery)$(status_field ns2 discovery)$(status_field ns3 discovery)" = ononon ]'
check "members carry the namespace addresses" \
    test "$(member_field ns1 ns3 addr)" = "10.77.$X.3:$PORT"

done_testing
