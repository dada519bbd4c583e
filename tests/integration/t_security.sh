#!/usr/bin/env bash
# t_security: the mesh key is what membership means. A two-node keyed mesh
# is approached by a node holding another key, by a keyless --insecure node
# and by a CURVE client that knows the mesh's public key but not its secret;
# the keyed nodes must refuse all three (and count the refusals), never list
# them, and the intruders must see nobody but themselves. Also: keyless
# nodes may only listen on loopback unless --insecure; keygen writes 0600
# files and never overwrites; group-readable key files are refused.
. "$(dirname "$0")/../lib.sh"
port_range 21000

# --- keygen ------------------------------------------------------------------
KEY=$T/mesh.key
OTHER_KEY=$T/other.key
check "meshcc keygen writes a key file" \
    "$MESHCC" --dir "$T/cli" keygen "$KEY"
check "the key file has mode 0600" test "$(stat -c %a "$KEY")" = 600
sum=$(md5sum <"$KEY")
if "$MESHCC" --dir "$T/cli" keygen "$KEY" >/dev/null 2>"$T/keygen2.err"; then
    not_ok "meshcc keygen refuses to overwrite an existing key file (it exited 0)"
else
    check "meshcc keygen refuses to overwrite an existing key file, with a message" \
        grep -q . "$T/keygen2.err"
fi
check "the refused keygen left the key file unchanged" test "$(md5sum <"$KEY")" = "$sum"
"$MESHCC" --dir "$T/cli" keygen "$OTHER_KEY" >/dev/null \
    || bail "meshcc keygen $OTHER_KEY failed"
check "two keygens give different keys" \
    test "$(md5sum <"$KEY")" != "$(md5sum <"$OTHER_KEY")"

# --- a key file others can read is refused -----------------------------------
alloc_port P_LOOSE
cp "$KEY" "$T/loose.key" && chmod 644 "$T/loose.key"
rc=0
timeout 10 "$MESHCCD" --foreground --dir "$T/loose" --listen "127.0.0.1:$P_LOOSE" \
    --mesh-key "$T/loose.key" --discovery off >"$T/loose.out" 2>&1 || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "loose.key" "$T/loose.out"; then
    ok "meshccd refuses a key file readable by others, naming it (exit $rc)"
else
    not_ok "meshccd refuses a key file readable by others, naming it (exit $rc)"
    sed 's/^/#   /' "$T/loose.out"
fi

# --- keyless nodes: loopback only, unless --insecure --------------------------
alloc_port P_OPEN
rc=0
timeout 10 "$MESHCCD" --foreground --dir "$T/open" --listen "0.0.0.0:$P_OPEN" \
    --discovery off >"$T/open.out" 2>&1 || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -qi -e insecure -e key "$T/open.out"; then
    ok "a keyless node refuses to listen on 0.0.0.0 without --insecure (exit $rc)"
else
    not_ok "a keyless node refuses to listen on 0.0.0.0 without --insecure (exit $rc)"
    sed 's/^/#   /' "$T/open.out"
fi
check "...and left nothing listening on port $P_OPEN" port_free "$P_OPEN"

start_node open --listen "0.0.0.0:$P_OPEN" --discovery off --insecure
check_within 5 "with --insecure it starts on 0.0.0.0 and answers" sees_exactly open open
check "...and reports security insecure" test "$(status_field open security)" = insecure
signal_node open TERM
wait_until 5 node_stopped open

alloc_port P_LO
start_node lo --listen "127.0.0.1:$P_LO" --discovery off
check_within 5 "a keyless node on 127.0.0.1 starts without --insecure" sees_exactly lo lo
check "...and reports security loopback" test "$(status_field lo security)" = loopback
signal_node lo TERM
wait_until 5 node_stopped lo

# --- the keyed mesh and its intruders -------------------------------------------
alloc_port P_A1; alloc_port P_A2; alloc_port P_B1; alloc_port P_C1
SEED=127.0.0.1:$P_A1
start_node a1 --listen "$SEED" --mesh-key "$KEY" --discovery off
start_node a2 --listen "127.0.0.1:$P_A2" --mesh-key "$KEY" --discovery off --join "$SEED"
check_within 5 "the keyed nodes a1 and a2 see each other" all_see_exactly a1 a2

# Counters before any intruder: the keyed nodes never refuse each other.
check "no refusals between nodes holding the same key" \
    test "$(status_field a1 refused)" = 0

start_node b1 --listen "127.0.0.1:$P_B1" --mesh-key "$OTHER_KEY" --discovery off --join "$SEED"
check_within 10 "a1 refuses the node holding another key (refused_protocol > 0)" \
    status_ge a1 refused_protocol 1

# b1 retries for ever, so to see that the keyless node is refused too, b1 is
# stopped first and the counter allowed to settle; only c1 can then raise it.
counter_settled () {
    local a b
    a=$(status_field a1 refused_protocol) && sleep 0.3 &&
        b=$(status_field a1 refused_protocol) && [ "$a" = "$b" ]
}
signal_node b1 TERM
wait_until 5 node_stopped b1 || bail "b1 did not stop on SIGTERM"
wait_until 5 counter_settled || note "a1's refused_protocol keeps changing with b1 gone"
proto_without_b1=$(status_field a1 refused_protocol)

start_node c1 --listen "127.0.0.1:$P_C1" --discovery off --insecure --join "$SEED"
check_within 10 "a1 refuses the keyless --insecure node too (refused_protocol grows)" \
    status_ge a1 refused_protocol $((proto_without_b1 + 1))
restart_node b1
wait_until 5 sees_exactly b1 b1 || note "restarted b1 does not answer yet"

if build_ztool; then
    "$T/ztool" curve "tcp://$SEED" "$KEY" 2 >"$T/ztool.out" 2>&1 &
    PIDS+=($!)
    check_within 10 "a1's ZAP handler refuses a CURVE client that knows the mesh's public key but not its secret (refused_auth > 0)" \
        status_ge a1 refused_auth 1
else
    not_ok "compile the foreign CURVE client"
fi
refused_adds_up () {
    local refused auth protocol
    read -r refused auth protocol < <(status_values a1 refused refused_auth refused_protocol)
    note "a1: refused $refused = refused_auth $auth + refused_protocol $protocol?"
    [ -n "$protocol" ] && [ "$refused" -eq $((auth + protocol)) ]
}
check "refused is refused_auth + refused_protocol" refused_adds_up

# Over ~3 s, polling: no keyed node ever lists an intruder, and each
# intruder lists only itself.
b1_id=$(status_field b1 id)
c1_id=$(status_field c1 id)
leaks=""
samples=0
end=$(($(now_us) + 3000000))
while [ "$(now_us)" -lt "$end" ]; do
    samples=$((samples + 1))
    for n in a1 a2; do
        tsv=$(members_tsv $n) || { leaks="$leaks $n:unreachable"; continue; }
        grep -q -F -e "$b1_id" -e "$c1_id" <<<"$tsv" && leaks="$leaks $n:id"
        awk -F'\t' '$1 == "b1" || $1 == "c1" { f = 1 } END { exit !f }' <<<"$tsv" \
            && leaks="$leaks $n:name"
    done
    sees_exactly b1 b1 || leaks="$leaks b1:sees-others"
    sees_exactly c1 c1 || leaks="$leaks c1:sees-others"
    sleep 0.2
done
if [ -z "$leaks" ] && [ -n "$b1_id" ] && [ -n "$c1_id" ]; then
    ok "over 3 s ($samples samples) no keyed node lists an intruder and each intruder lists only itself"
else
    not_ok "over 3 s ($samples samples) no keyed node lists an intruder and each intruder lists only itself:$leaks"
fi
check "the keyed nodes still see exactly each other" all_see_exactly a1 a2
check "the keyed node reports security curve" test "$(status_field a1 security)" = curve
check "a1 received gossip from a2" status_ge a1 msgs_in 1
check "a1 dropped no frame (no intruder got past the handshake)" \
    test "$(status_field a1 dropped)" = 0

done_testing
