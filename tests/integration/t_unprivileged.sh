#!/usr/bin/env bash
# t_unprivileged: the mesh works for an unprivileged user (issue 4): two
# nodes run as `nobody` (their sandboxes then rest on user namespaces, not
# on root's privileges), a compile started as `nobody` runs on the peer,
# and the object is byte-identical to a local compile. Needs root (to
# become nobody) and binaries `nobody` can run; skips otherwise.
. "$(dirname "$0")/../lib.sh"
port_range 31000

if [ "$(id -u)" -ne 0 ]; then
    skip "needs root to run the nodes as nobody"
    exit 0
fi
USER_NAME=nobody
# setpriv execs the command itself (runuser would stay as its parent, and
# killing it would orphan the node).
AS_USER=(setpriv --reuid "$USER_NAME" --regid "$(id -g "$USER_NAME")" --clear-groups)
as_user () { "${AS_USER[@]}" "$@"; }
if ! as_user test -x "$MESHCCD"; then
    skip "$USER_NAME cannot run $MESHCCD (a build directory under a private home?)"
    exit 0
fi
if ! as_user bwrap --unshare-all --ro-bind / / true 2>/dev/null; then
    skip "$USER_NAME cannot create user namespaces here"
    exit 0
fi

chmod 711 "$T"
U=$T/user
mkdir -p "$U/src"
chown -R "$USER_NAME" "$U"
as_user "$MESHCC" --dir "$U/kg" keygen "$U/mesh.key" >/dev/null || bail "keygen as $USER_NAME failed"
printf '%s\n' '#include <stdio.h>' 'int main (void) { puts ("hi"); return 0; }' > "$U/src/x.c"
chown "$USER_NAME" "$U/src/x.c"
touch -d '10 seconds ago' "$U/src/x.c"
as_user sh -c "cd '$U/src' && gcc -g -O2 -c x.c -o local.o" || bail "local gcc as $USER_NAME failed"

alloc_port PO; alloc_port PP
NODE_DIR[O]=$U/O
NODE_DIR[P]=$U/P
NODE_WRAP[O]="${AS_USER[*]}"
NODE_WRAP[P]="${AS_USER[*]}"
KEY=(--mesh-key "$U/mesh.key" --discovery off)
start_node O --listen "127.0.0.1:$PO" --slots 0 "${KEY[@]}"
start_node P --listen "127.0.0.1:$PP" --slots 2 --join "127.0.0.1:$PO" "${KEY[@]}"
check_within 15 "two nodes running as $USER_NAME see each other" all_see_exactly O P
check "P's node runs as $USER_NAME" test "$(stat -c %U /proc/"${NODE_PID[P]}")" = "$USER_NAME"
check "P's executor is available (user namespaces)" test "$(status_field P executor)" = available

compile () {
    as_user sh -c "cd '$U/src' && MESHCC_DIR='$U/O' MESHCC_STRICT=1 '$MESHCC' gcc -g -O2 -c x.c -o x.o"
}
check "a compile as $USER_NAME through the mesh succeeds (MESHCC_STRICT: no fallback)" compile
check "P executed it for O" test "$(stats_value P jobs_executed_for_peers)" -ge 1
check "the object is byte-identical to a local compile" cmp -s "$U/src/x.o" "$U/src/local.o"
check "the object belongs to $USER_NAME" test "$(stat -c %U "$U/src/x.o")" = "$USER_NAME"

done_testing
