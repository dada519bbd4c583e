#!/usr/bin/env bash
# t_garbage: hostile bytes. An --insecure node on loopback is sent, as a
# plain DEALER, truncated frames, random bytes, bad magic, bad versions, bad
# types, bad flags, bad zstd, counts above their bounds, trailing bytes,
# multi-frame messages and a frame above ZMQ_MAXMSGSIZE; and raw TCP junk
# that is not ZMTP at all. The node must survive, keep answering, count
# each kind of drop, and still admit a real node afterwards.
. "$(dirname "$0")/../lib.sh"
port_range 23000

alloc_port P_V; alloc_port P_W
start_node victim --listen "127.0.0.1:$P_V" --insecure --discovery off
check_within 5 "the node starts and answers" sees_exactly victim victim
pid_before=${NODE_PID[victim]}

build_ztool || bail "cannot compile the garbage sender (cc + libczmq)"

KINDS="truncated oversized bad_magic bad_version bad_type malformed"
declare -A EXPECT
for k in $KINDS; do EXPECT[$k]=0; done

# counters_are: every dropped_KIND is exactly EXPECT[KIND] (read from one
# status reply), and nothing was dropped as rejected.
counters_are () {
    local fields=() values k i=0
    for k in $KINDS; do fields+=("dropped_$k"); done
    read -r -a values < <(status_values victim "${fields[@]}" dropped_rejected)
    [ ${#values[@]} -eq 7 ] || return 1
    for k in $KINDS; do
        [ "${values[$i]}" = "${EXPECT[$k]}" ] || return 1
        i=$((i + 1))
    done
    [ "${values[6]}" = 0 ]
}

# Twice, on two connections: the second after the first was dropped for its
# oversized frame, so the node must also have kept accepting connections.
for round in 1 2; do
    if "$T/ztool" garbage "tcp://127.0.0.1:$P_V" >"$T/ztool.out" 2>&1; then
        ok "garbage sent, connection $round"
    else
        not_ok "garbage sent, connection $round"
        sed 's/^/#   | /' "$T/ztool.out"
    fi
    while read -r word counter n; do
        [ "$word" = expect ] && EXPECT[${counter#dropped_}]=$((EXPECT[${counter#dropped_}] + n))
    done <"$T/ztool.out"
    want=""; for k in $KINDS; do want="$want $k ${EXPECT[$k]},"; done
    if wait_until 5 counters_are; then
        ok "connection $round: each frame counted under its reason:${want%,}"
    else
        not_ok "connection $round: each frame counted under its reason:${want%,}"
        mc victim status --json | tr , '\n' | grep -E 'dropped|msgs_in' | sed 's/^/#   | /'
    fi
done
check "the node is still running after the garbage" node_running victim
check "msgs_in equals dropped: not one garbage frame was accepted" eval \
    'read -r a b < <(status_values victim msgs_in dropped) && [ -n "$b" ] && [ "$a" = "$b" ]'

# Raw TCP junk: not even a ZMTP greeting; a connection opened and closed at
# once; a greeting cut short. (libzmq reads a stream without the 0xff
# greeting as ZMTP 1.0 framing, so some junk reaches the node as frames:
# they must be dropped like the rest.)
"$PY" - "$P_V" >"$T/raw.out" 2>&1 <<'EOF_PY'
import os, socket, sys
port = int(sys.argv[1])
for payload in (os.urandom(4096), b"", b"\xff" + b"\0" * 8 + b"\x7f\x03", b"GET / HTTP/1.1\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    if payload:
        try:
            s.sendall(payload)
        except OSError:
            pass
    s.close()
print("raw junk sent")
EOF_PY
check "raw TCP junk sent" grep -q "raw junk sent" "$T/raw.out"

check "the node is still running (same pid)" \
    eval 'node_running victim && [ "$(status_field victim pid)" = "$pid_before" ]'
check "the node still answers members and lists only itself (no garbage sender became a member)" \
    sees_exactly victim victim

start_node witness --listen "127.0.0.1:$P_W" --insecure --discovery off \
    --join "127.0.0.1:$P_V"
check_within 5 "a real node still joins it afterwards" all_see_exactly victim witness
check "the real node's gossip is accepted (msgs_in now above dropped)" eval \
    'read -r a b < <(status_values victim msgs_in dropped) && [ -n "$b" ] && [ "$a" -gt "$b" ]'

done_testing
