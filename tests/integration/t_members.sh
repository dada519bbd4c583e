#!/usr/bin/env bash
# t_members: membership end to end (acceptance of issue 2). Five keyed nodes
# on loopback, each joining only the first, must all see each other alive
# within 3 s; a SIGKILLed node must be seen dead within 10 s, a SIGTERMed
# one left within 2 s; the killed node, restarted on its data directory,
# must come back alive everywhere within 3 s with its old id and a higher
# incarnation.
. "$(dirname "$0")/../lib.sh"
port_range 20000

KEY=$T/mesh.key
"$MESHCC" --dir "$T/keygen" keygen "$KEY" >/dev/null 2>"$T/keygen.err" \
    || bail "meshcc keygen $KEY: $(cat "$T/keygen.err")"

ALL=(n1 n2 n3 n4 n5)
declare -A PORT
for n in "${ALL[@]}"; do alloc_port "PORT[$n]"; done
SEED=127.0.0.1:${PORT[n1]}

all_know_id () {
    local member=$1 id=$2 n; shift 2
    for n in "$@"; do [ "$(member_field "$n" "$member" id)" = "$id" ] || return 1; done
}

for n in "${ALL[@]}"; do
    join=(); [ $n != n1 ] && join=(--join "$SEED")
    start_node $n --listen "127.0.0.1:${PORT[$n]}" --mesh-key "$KEY" \
        --discovery off --slots 2 "${join[@]}"
done
t0=$(now_us)
check_within_since "$t0" 3 "all 5 nodes list all 5 alive, from the last start" \
    all_see_exactly "${ALL[@]}"

check "a keyed node on loopback reports security curve" \
    test "$(status_field n1 security)" = curve

# --- SIGKILL: dead everywhere within 10 s ------------------------------------
VICTIM=n3
old_id=$(status_field $VICTIM id)
old_inc=$(status_field $VICTIM incarnation)
note "$VICTIM: id $old_id incarnation $old_inc"
check "every node knows $VICTIM by the id it reports itself" \
    all_know_id $VICTIM "$old_id" n1 n2 n4 n5

kill_node $VICTIM
t0=$(now_us)
check_within_since "$t0" 10 "every survivor shows SIGKILLed $VICTIM dead" \
    all_see_state $VICTIM dead n1 n2 n4 n5
all_count_alive () {
    local want=$1 n; shift
    for n in "$@"; do [ "$(count_state "$n" alive)" = "$want" ] || return 1; done
}
check "every survivor counts exactly 4 alive (itself and the other survivors)" \
    all_count_alive 4 n1 n2 n4 n5

# --- SIGTERM: left everywhere within 2 s -------------------------------------
LEAVER=n4
signal_node $LEAVER TERM
t0=$(now_us)
check_within_since "$t0" 2 "every remaining node shows SIGTERMed $LEAVER left" \
    all_see_state $LEAVER left n1 n2 n5
check_within_since "$t0" 5 "$LEAVER exits after SIGTERM" node_stopped $LEAVER
check "$LEAVER exits with status 0 after SIGTERM" test "$(node_exit_code $LEAVER)" = 0

# --- restart: alive again, same id, higher incarnation ----------------------
restart_node $VICTIM
t0=$(now_us)
check_within_since "$t0" 3 "restarted $VICTIM is alive again at every node" \
    all_see_state $VICTIM alive n1 n2 n5 $VICTIM
check "restarted $VICTIM keeps its id ($old_id)" \
    test "$(status_field $VICTIM id)" = "$old_id"
check "the other nodes know restarted $VICTIM by the same id" \
    all_know_id $VICTIM "$old_id" n1 n2 n5

higher_incarnation () {
    local n inc
    for n in "$@"; do
        inc=$(member_field "$n" $VICTIM incarnation) || return 1
        [ "$inc" -gt "$old_inc" ] || return 1
    done
}
check "restarted $VICTIM has a higher incarnation than $old_inc everywhere" \
    higher_incarnation n1 n2 n5 $VICTIM
check "restarted $VICTIM lists $LEAVER as left and $VICTIM itself alive" \
    wait_until 3 eval '[ "$(state_of $VICTIM $LEAVER)" = left ] && [ "$(state_of $VICTIM $VICTIM)" = alive ]'

done_testing
