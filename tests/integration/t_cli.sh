#!/usr/bin/env bash
# t_cli: how meshccd and meshcc behave at the command line: the message and
# exit status with no node running, every kind of bad option or config file
# (non-zero exit, a message naming the bad thing, nothing started), the
# single-instance lock, the JSON output of members and status, a config
# file that is honoured, and daemon mode from start to SIGTERM.
. "$(dirname "$0")/../lib.sh"
port_range 22000

# --- no node running ---------------------------------------------------------
# expect_no_node DESC DIR ARGS...: exit 1, nothing on stdout, exactly one
# line on stderr that names DIR.
expect_no_node () {
    local desc=$1 dir=$2 rc=0; shift 2
    timeout 10 "$MESHCC" --dir "$dir" "$@" >"$T/nn.out" 2>"$T/nn.err" || rc=$?
    if [ $rc -eq 1 ] && [ ! -s "$T/nn.out" ] && [ "$(wc -l <"$T/nn.err")" -eq 1 ] \
        && grep -q -F "$dir" "$T/nn.err"; then
        ok "$desc: exit 1, one line on stderr naming $dir"
    else
        not_ok "$desc: exit 1, one line on stderr naming $dir (got exit $rc)"
        sed 's/^/#   stdout: /' "$T/nn.out"
        sed 's/^/#   stderr: /' "$T/nn.err"
    fi
}

mkdir -p "$T/empty"
expect_no_node "meshcc members with no node (empty dir)" "$T/empty" members
expect_no_node "meshcc members --json with no node (empty dir)" "$T/empty" members --json
expect_no_node "meshcc status with no node (empty dir)" "$T/empty" status
expect_no_node "meshcc members with no node (dir does not exist)" "$T/nowhere" members
check "meshcc members did not create the missing dir" test ! -e "$T/nowhere"
if grep -q meshccd "$T/nn.err"; then
    ok "the no-node message says how to start one (mentions meshccd)"
else
    not_ok "the no-node message says how to start one (mentions meshccd)"
    sed 's/^/#   stderr: /' "$T/nn.err"
fi

# --- bad options: non-zero, a message naming the bad thing, nothing started ---
# expect_refused DESC WORD ARGS...: `meshccd ARGS` (daemon mode, so that a
# wrongly accepted option would leave a daemon behind) exits non-zero with
# a message on stderr containing WORD, prints nothing on stdout, and no
# process runs on the directory after.
bad=0
expect_refused () {
    local desc=$1 word=$2 rc=0 dir; shift 2
    bad=$((bad + 1)); dir=$T/bad$bad
    timeout 10 "$MESHCCD" --dir "$dir" "$@" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -F -e "$word" "$T/bad.err" \
        && [ ! -s "$T/bad.out" ]; then
        ok "$desc: exit $rc, message on stderr names '$word'"
    else
        not_ok "$desc: non-zero exit, a message on stderr naming '$word', nothing on stdout (got exit $rc)"
        sed 's/^/#   stdout: /' "$T/bad.out"
        sed 's/^/#   stderr: /' "$T/bad.err"
    fi
    if [ -n "$(_pids_under_T | while read -r p; do
                  tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -F "$dir" ; done)" ] \
        || [ -S "$dir/control.sock" ]; then
        not_ok "$desc: nothing keeps running on $dir"
    fi
}

alloc_port P_BAD
L=(--listen "127.0.0.1:$P_BAD" --discovery off)
expect_refused "meshccd --slots abc" abc "${L[@]}" --slots abc
expect_refused "meshccd --slots -1" slots "${L[@]}" --slots -1
expect_refused "meshccd --slots 5000 (above the bound)" 5000 "${L[@]}" --slots 5000
expect_refused "meshccd --listen nonsense" nonsense --listen nonsense --discovery off
expect_refused "meshccd --listen 127.0.0.1:99999" 99999 --listen 127.0.0.1:99999 --discovery off
expect_refused "meshccd --join 1.2.3.4:99999" 99999 "${L[@]}" --join 1.2.3.4:99999
expect_refused "meshccd --join with no port" 1.2.3.4 "${L[@]}" --join 1.2.3.4
expect_refused "meshccd --frobnicate (unknown option)" frobnicate "${L[@]}" --frobnicate
expect_refused "meshccd with a stray argument" stray "${L[@]}" stray
expect_refused "meshccd --slots without a value" slots "${L[@]}" --slots
expect_refused "meshccd --config /nonexistent" /nonexistent "${L[@]}" --config /nonexistent
printf 'this is { not "ZPL\n  = = =\n' >"$T/syntax.conf"
expect_refused "meshccd --config with a syntax error" syntax.conf "${L[@]}" --config "$T/syntax.conf"
printf 'slots = "many"\n' >"$T/badvalue.conf"
expect_refused "meshccd --config with a bad value" many "${L[@]}" --config "$T/badvalue.conf"
printf 'no_such_setting = "1"\n' >"$T/unknown.conf"
expect_refused "meshccd --config with an unknown setting" no_such_setting "${L[@]}" --config "$T/unknown.conf"
expect_refused "meshccd --discovery maybe" maybe "${L[@]}" --discovery maybe
expect_refused "meshccd --beacon-port 70000" 70000 "${L[@]}" --beacon-port 70000
expect_refused "meshccd --log-level loud" loud "${L[@]}" --log-level loud
expect_refused "meshccd --mesh-key /nonexistent.key" /nonexistent.key "${L[@]}" --mesh-key /nonexistent.key
check "no bad invocation left a listener on port $P_BAD" port_free "$P_BAD"

# meshcc's own bad usage
expect_cli_error () {
    local desc=$1 word=$2 rc=0; shift 2
    timeout 10 "$MESHCC" "$@" >"$T/cli.out" 2>&1 || rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -F -e "$word" "$T/cli.out"; then
        ok "$desc: exit $rc, message names '$word'"
    else
        not_ok "$desc: non-zero exit and a message naming '$word' (got exit $rc)"
        sed 's/^/#   | /' "$T/cli.out"
    fi
}
expect_cli_error "meshcc frobnicate (unknown command)" frobnicate --dir "$T/empty" frobnicate
expect_cli_error "meshcc --frobnicate (unknown option)" frobnicate --dir "$T/empty" --frobnicate members
expect_cli_error "meshcc members --bogus" bogus --dir "$T/empty" members --bogus
expect_cli_error "meshcc keygen without a file" keygen --dir "$T/empty" keygen

# --- a running node: JSON, the lock, a config file ---------------------------
alloc_port P_N1
printf '# a meshccd config file\nslots = "3"\nlisten = "127.0.0.1:%s"\n' "$P_N1" >"$T/n1.conf"
start_node n1 --config "$T/n1.conf" --discovery off
check_within 5 "a node started from a config file answers" sees_exactly n1 n1
check "the config file's slots (3) are in effect" test "$(member_field n1 n1 slots)" = 3
check "the config file's listen address is in effect" \
    test "$(member_field n1 n1 addr)" = "127.0.0.1:$P_N1"

mc n1 members --json >"$T/members.json" 2>"$T/members.err"
check "meshcc members --json exits 0" test $? = 0
if "$PY" - "$T/members.json" n1 "127.0.0.1:$P_N1" >"$T/json.diag" 2>&1 <<'EOF'
import json, re, sys
members = json.load(open(sys.argv[1]))
assert isinstance(members, list), "not a JSON array"
assert len(members) == 1, "expected only the node itself, got %d" % len(members)
types = {"id": str, "name": str, "addr": str, "state": str, "slots": int,
         "running": int, "queued": int, "load": (int, float), "last_seen_ms": int,
         "version": int, "incarnation": int, "self": bool}
for m in members:
    for field, kind in types.items():
        assert field in m, "field %s missing" % field
        assert isinstance(m[field], kind) and not (kind is int and isinstance(m[field], bool)), \
            "field %s is %r" % (field, m[field])
    assert re.fullmatch(r"[0-9a-f]{32}", m["id"]), "id %r" % m["id"]
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", m["addr"]), "addr %r" % m["addr"]
    assert m["state"] in ("alive", "suspect", "dead", "left"), "state %r" % m["state"]
me = [m for m in members if m["self"]]
assert len(me) == 1, "exactly one member has self true"
assert me[0]["name"] == sys.argv[2] and me[0]["addr"] == sys.argv[3], me[0]
assert me[0]["state"] == "alive" and me[0]["incarnation"] >= 1, me[0]
EOF
then
    ok "members --json: an array of objects with every field, typed"
else
    not_ok "members --json: an array of objects with every field, typed"
    sed 's/^/#   | /' "$T/json.diag" "$T/members.json"
fi

mc n1 status --json >"$T/status.json" 2>"$T/status.err"
if "$PY" - "$T/status.json" "${NODE_DIR[n1]}" "${NODE_PID[n1]}" >"$T/json.diag" 2>&1 <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert isinstance(s, dict), "not a JSON object"
text = ["id", "name", "addr", "dir", "security", "discovery"]
numbers = ["pid", "incarnation", "refused", "refused_auth", "refused_protocol",
           "dropped", "dropped_truncated", "dropped_oversized", "dropped_bad_magic",
           "dropped_bad_version", "dropped_bad_type", "dropped_malformed",
           "dropped_rejected", "msgs_in"]
for f in text:
    assert isinstance(s.get(f), str), "field %s is %r" % (f, s.get(f))
for f in numbers:
    assert isinstance(s.get(f), int) and not isinstance(s.get(f), bool), \
        "field %s is %r" % (f, s.get(f))
assert s["dir"] == sys.argv[2], "dir %r" % s["dir"]
assert s["pid"] == int(sys.argv[3]), "pid %r, expected %s" % (s["pid"], sys.argv[3])
assert s["discovery"] == "off", "discovery %r" % s["discovery"]
assert s["security"] == "loopback", "security %r" % s["security"]
EOF
then
    ok "status --json: an object with every field, dir and pid right"
else
    not_ok "status --json: an object with every field, dir and pid right"
    sed 's/^/#   | /' "$T/json.diag" "$T/status.json"
fi

mc n1 members >"$T/members.txt" 2>&1
check "meshcc members (table) exits 0 and names the node" grep -q n1 "$T/members.txt"
mc n1 status >"$T/status.txt" 2>&1
check "meshcc status (text) exits 0 and names the dir" grep -q -F "${NODE_DIR[n1]}" "$T/status.txt"

# A second node on the same dir refuses, and the first keeps running.
alloc_port P_DUP
rc=0
timeout 10 "$MESHCCD" --foreground --dir "${NODE_DIR[n1]}" --listen "127.0.0.1:$P_DUP" \
    --discovery off >"$T/dup.out" 2>&1 || rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] \
    && grep -q -e "${NODE_PID[n1]}" -e "${NODE_DIR[n1]}" "$T/dup.out"; then
    ok "a second meshccd on the same dir refuses (exit $rc), naming the pid or dir"
else
    not_ok "a second meshccd on the same dir refuses, naming the pid or dir (got exit $rc)"
    sed 's/^/#   | /' "$T/dup.out"
fi
check "...and the first keeps running and answering" \
    eval 'node_running n1 && sees_exactly n1 n1 && [ "$(status_field n1 pid)" = "${NODE_PID[n1]}" ]'
check "...and the refused one left nothing listening on $P_DUP" port_free "$P_DUP"

signal_node n1 TERM
check_within 5 "n1 stops on SIGTERM" node_stopped n1
check "n1 exits 0 on SIGTERM" test "$(node_exit_code n1)" = 0
expect_no_node "meshcc members after the node stopped" "${NODE_DIR[n1]}" members

# --- daemon mode ---------------------------------------------------------------
alloc_port P_D
D=$T/daemon
rc=0
timeout 10 "$MESHCCD" --dir "$D" --name daemon --listen "127.0.0.1:$P_D" --discovery off \
    >"$T/daemon.out" 2>"$T/daemon.err" || rc=$?
daemon_pid=$(sed -n 's/.*started, pid \([0-9][0-9]*\).*/\1/p' "$T/daemon.out" | head -n 1)
[ -n "$daemon_pid" ] && track_pid "$daemon_pid"
if [ $rc -eq 0 ] && [ -n "$daemon_pid" ]; then
    ok "meshccd without --foreground: the parent exits 0, printing 'started, pid $daemon_pid'"
else
    not_ok "meshccd without --foreground: the parent exits 0, printing 'started, pid N' (got exit $rc)"
    sed 's/^/#   stdout: /' "$T/daemon.out"; sed 's/^/#   stderr: /' "$T/daemon.err"
fi
NODE_DIR[daemon]=$D
NODES+=(daemon)
# "started" is printed once the node is bound, so it must answer at once.
check "members answers right after the parent exited" sees_exactly daemon daemon
status_pid=$(status_field daemon pid)
if [ -n "$status_pid" ]; then
    track_pid "$status_pid"
    NODE_PID[daemon]=$status_pid
fi
check "status --json pid ($status_pid) is the pid printed ($daemon_pid)" \
    test "$status_pid" = "$daemon_pid"
check "the daemon logs to $D/meshccd.log" test -s "$D/meshccd.log"
# Field 6 of /proc/PID/stat is the session id (the name in field 2 has no
# spaces here: "meshccd").
check "the daemon runs in a session of its own (setsid)" \
    test "$(awk '{ print $6 }' "/proc/$status_pid/stat" 2>/dev/null)" = "$status_pid"
if [ -n "$status_pid" ]; then
    kill -TERM "$status_pid"
    check_within 5 "the daemon stops on SIGTERM" eval '! pid_running "$status_pid"'
else
    not_ok "the daemon stops on SIGTERM (no pid to signal)"
fi
expect_no_node "meshcc members after the daemon stopped" "$D" members

done_testing
