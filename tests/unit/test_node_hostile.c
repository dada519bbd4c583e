//  Unit tests of a node facing a hostile peer (issue 3, acceptance: "a
//  hostile peer sending -fplugin=..., .. or absolute escapes, symlinked
//  manifest entries or oversized payloads is refused with a clear error;
//  nothing is written outside the job root").
//
//  One real node (loopback security, 2 slots, a temp data dir) is driven
//  in-process with node_run_for; the hostile peer is a DEALER connected
//  to its listen endpoint sending frames made with job_wire_encode, or raw
//  bytes. Every case asserts the reply (REFUSED, or RESULT with `failure`
//  set) names the problem, and that the node still answers. Paths a job
//  could escape to live in a sentinel directory that must stay empty, and
//  the job's "origin" tree (its cwd and inputs) must never appear on the
//  host. A benign compile at the start and at the end shows the refusals
//  are the checks, not a broken node.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <ftw.h>
#include <cmocka.h>
#include <czmq.h>
#include "meshcc/control.h"
#include "meshcc/executor.h"
#include "meshcc/job.h"
#include "meshcc/job_wire.h"
#include "meshcc/limits.h"
#include "meshcc/node.h"
#include "meshcc/node_config.h"
#include "meshcc/node_log.h"
#include "meshcc/wire.h"

typedef struct {
    char dir [64];                  //  node data dir: /tmp/meshcc-hostile-XXXXXX
    char outside [64];              //  sentinel: /tmp/meshcc-hostile-outside-XXXXXX
    char origin [128];              //  the job's tree at the origin (never on this host)
    char planted [128];             //  programs "planted" on the host by the test
    char cwd [256];                 //  origin/a/b/c (deep)
    node_config_t *config;
    node_t *node;
    int port;
    zsock_t *control;               //  REQ to the control socket
    zsock_t *peer;                  //  the hostile DEALER
    compiler_identity_t gcc;        //  this machine's gcc
    bool have_gcc;
    bool sandbox;                   //  the node runs peers' jobs
    char why [256];                 //  if not, why (from STATUS)
    uint64_t next_id;
} fixture_t;

static fixture_t s_fx;

static const char s_source [] = "int hostile_x = 42;\n";

// ---------------------------------------------------------------------
//  Helpers

static int s_entries;

static int
s_count_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path; (void) st; (void) flag; (void) ftw;
    s_entries++;
    return 0;
}

//  Entries in the tree at `path` (0 if it does not exist; the root counts).
static int
s_tree_size (const char *path)
{
    s_entries = 0;
    if (access (path, F_OK))
        return 0;
    nftw (path, s_count_entry, 16, FTW_PHYS);
    return s_entries;
}

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) ftw;
    if (flag == FTW_DP)
        rmdir (path);
    else
        unlink (path);
    return 0;
}

static void
s_rm_tree (const char *path)
{
    if (*path)
        nftw (path, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

//  Nothing escaped: the sentinel directory is empty, the origin tree
//  was never created here.
static void
s_assert_nothing_outside (void)
{
    if (s_tree_size (s_fx.outside) != 1) {
        print_error ("something was written in %s\n", s_fx.outside);
        fail ();
    }
    if (access (s_fx.origin, F_OK) == 0) {
        print_error ("the origin tree %s appeared on the host\n", s_fx.origin);
        fail ();
    }
}

//  One STATUS or STATS field from the control socket.
static char *
s_control (const char *command, const char *key)
{
    zstr_send (s_fx.control, command);
    zmsg_t *reply = NULL;
    for (int i = 0; i < 100 && !reply; i++) {
        node_run_for (s_fx.node, 10);
        reply = zmsg_recv_nowait (s_fx.control);
    }
    assert_non_null (reply);
    char *ok = zmsg_popstr (reply);
    assert_string_equal (ok, CONTROL_OK);
    free (ok);
    zframe_t *frame = zmsg_pop (reply);
    zhash_t *record = zhash_unpack (frame);
    assert_non_null (record);
    const char *value = (const char *) zhash_lookup (record, key);
    if (!value)
        print_error ("%s has no field %s\n", command, key);
    assert_non_null (value);
    char *copy = strdup (value);
    zhash_destroy (&record);
    zframe_destroy (&frame);
    zmsg_destroy (&reply);
    return copy;
}

static uint64_t
s_number (const char *command, const char *key)
{
    char *value = s_control (command, key);
    uint64_t number = strtoull (value, NULL, 10);
    free (value);
    return number;
}

static void
s_send_raw (zsock_t *peer, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    assert_int_equal (zframe_send (&frame, peer, 0), 0);
}

static void
s_send (zsock_t *peer, const job_msg_t *msg)
{
    uint8_t *data;
    size_t size;
    assert_int_equal (job_wire_encode (msg, &data, &size), 0);
    s_send_raw (peer, data, size);
    free (data);
}

//  The next job message for `id` other than ACCEPTED, running the node
//  meanwhile; NULL after `timeout_ms`.
static job_msg_t *
s_recv (zsock_t *peer, uint64_t id, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        node_run_for (s_fx.node, 10);
        zframe_t *frame;
        while ((frame = zframe_recv_nowait (peer))) {
            job_msg_t *msg = NULL;
            wire_error_t error = WIRE_BAD_TYPE;
            if (job_wire_is_job (zframe_data (frame), zframe_size (frame)))
                error = job_wire_decode (zframe_data (frame), zframe_size (frame), &msg);
            zframe_destroy (&frame);
            if (error != WIRE_OK)
                continue;           //  gossip, not ours
            if (msg->job_id == id && msg->type != JOB_WIRE_ACCEPTED)
                return msg;
            job_msg_destroy (&msg);
        }
    }
    return NULL;
}

static char **
s_strings (const char *const *strings)
{
    size_t count = 0;
    while (strings [count])
        count++;
    char **copy = (char **) zmalloc ((count + 1) * sizeof (char *));
    for (size_t i = 0; i < count; i++)
        copy [i] = strdup (strings [i]);
    return copy;
}

static void
s_add_entry (job_spec_t *spec, const char *path, manifest_kind_t kind, const char *target,
             const uint8_t *hash, uint64_t size, uint32_t mode)
{
    spec->entries = (manifest_entry_t *) realloc (spec->entries,
                                                  (spec->entry_count + 1) * sizeof (manifest_entry_t));
    assert_non_null (spec->entries);
    manifest_entry_t *e = &spec->entries [spec->entry_count++];
    memset (e, 0, sizeof (*e));
    e->path = strdup (path);
    e->kind = kind;
    e->mode = mode;
    e->size = size;
    e->target = target ? strdup (target) : NULL;
    if (hash)
        memcpy (e->hash, hash, BLOB_HASH_SIZE);
}

//  A JOB for `argv` (NULL-terminated) in cwd, with this machine's gcc,
//  the source cwd/x.c in the manifest and its blob inlined.
static job_msg_t *
s_job (const char *const *argv, const char *cwd)
{
    job_spec_t *spec = job_spec_new ();
    spec->id = ++s_fx.next_id;
    spec->argv = s_strings (argv);
    while (spec->argv [spec->argc])
        spec->argc++;
    spec->cwd = strdup (cwd ? cwd : s_fx.cwd);
    const char *env [] = { "LANG=C", NULL };
    spec->envp = s_strings (env);
    spec->compiler = s_fx.gcc;
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (s_source, strlen (s_source), hash);
    char path [512];
    snprintf (path, sizeof (path), "%s/x.c", s_fx.cwd);
    s_add_entry (spec, path, MANIFEST_FILE, NULL, hash, strlen (s_source), 0644);
    job_msg_t *msg = job_msg_new (JOB_WIRE_JOB, spec->id);
    msg->spec = spec;
    uint8_t *data = (uint8_t *) strdup (s_source);
    job_msg_add_blob (msg, hash, &data, strlen (s_source));
    return msg;
}

//  Sends the job and returns the final reply's reason: REFUSED's reason
//  or RESULT's failure (NULL for a RESULT without one, *result_p then
//  holds it if asked for).
static char *
s_run (job_msg_t **msg_p, job_result_t **result_p)
{
    job_msg_t *msg = *msg_p;
    uint64_t id = msg->job_id;
    s_send (s_fx.peer, msg);
    job_msg_destroy (msg_p);
    job_msg_t *reply = s_recv (s_fx.peer, id, 8000);
    if (!reply) {
        print_error ("no reply to job %llu\n", (unsigned long long) id);
        fail ();
    }
    char *reason = NULL;
    if (reply->type == JOB_WIRE_REFUSED)
        reason = strdup (reply->reason ? reply->reason : "");
    else
    if (reply->type == JOB_WIRE_RESULT) {
        if (reply->result->failure)
            reason = strdup (reply->result->failure);
        else
        if (result_p) {
            *result_p = reply->result;
            reply->result = NULL;
        }
    }
    else {
        print_error ("unexpected %s for job %llu\n", job_wire_type_name (reply->type),
                     (unsigned long long) id);
        fail ();
    }
    job_msg_destroy (&reply);
    return reason;
}

//  The job is refused (REFUSED, or RESULT with a failure) with a reason
//  containing `expected` (or one of its "|"-separated alternatives);
//  nothing is written outside.
static void
s_expect (job_msg_t *msg, const char *label, const char *expected)
{
    char *reason = s_run (&msg, NULL);
    //  `expected` may list alternatives: "a|b"
    bool named = false;
    char alternatives [256];
    snprintf (alternatives, sizeof (alternatives), "%s", expected);
    char *save = NULL;
    for (char *one = strtok_r (alternatives, "|", &save); one && reason;
         one = strtok_r (NULL, "|", &save))
        named |= strstr (reason, one) != NULL;
    if (!*expected && reason)
        named = true;
    if (!named) {
        print_error ("%s: expected a refusal naming \"%s\", got \"%s\"\n",
                     label, expected, reason ? reason : "(a successful result)");
        fail ();
    }
    print_message ("  %-28s -> %s\n", label, reason);
    free (reason);
    s_assert_nothing_outside ();
}

#define SKIP_WITHOUT_SANDBOX() do { \
    if (!s_fx.sandbox) { \
        print_message ("skipped: the node runs no jobs for peers here (%s)\n", s_fx.why); \
        skip (); \
    } \
    if (!s_fx.have_gcc) { \
        print_message ("skipped: no gcc on this machine\n"); \
        skip (); \
    } \
} while (0)

// ---------------------------------------------------------------------
//  Group setup: the node, its control socket, the hostile peer

static int
s_group_setup (void **state)
{
    (void) state;
    node_log_open (NULL, NODE_LOG_ERROR, true);
    memset (&s_fx, 0, sizeof (s_fx));
    snprintf (s_fx.dir, sizeof (s_fx.dir), "/tmp/meshcc-hostile-XXXXXX");
    snprintf (s_fx.outside, sizeof (s_fx.outside), "/tmp/meshcc-hostile-outside-XXXXXX");
    if (!mkdtemp (s_fx.dir) || !mkdtemp (s_fx.outside))
        return -1;
    //  A path no one creates on this host: the job's tree at its origin
    snprintf (s_fx.origin, sizeof (s_fx.origin), "/tmp/meshcc-hostile-origin-%ld-%.16s",
              (long) getpid (), s_fx.dir + strlen ("/tmp/meshcc-hostile-"));
    snprintf (s_fx.cwd, sizeof (s_fx.cwd), "%s/a/b/c", s_fx.origin);

    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    s_fx.port = zsock_bind (probe, "tcp://127.0.0.1:*");
    zsock_destroy (&probe);
    if (s_fx.port <= 0)
        return -1;
    s_fx.config = node_config_new ();
    char err [512], note [256], value [64];
    snprintf (value, sizeof (value), "127.0.0.1:%d", s_fx.port);
    if (node_config_set (s_fx.config, "listen", value, NODE_CONFIG_CMDLINE, err, sizeof (err))
    ||  node_config_set (s_fx.config, "slots", "2", NODE_CONFIG_CMDLINE, err, sizeof (err)))
        return -1;
    s_fx.config->dir = strdup (s_fx.dir);
    if (node_config_finish (s_fx.config, false, err, sizeof (err), note, sizeof (note))) {
        print_error ("config: %s\n", err);
        return -1;
    }
    zcert_t *cert = NULL;
    s_fx.node = node_new (s_fx.config, &cert, err, sizeof (err));
    if (!s_fx.node) {
        print_error ("node_new: %s\n", err);
        return -1;
    }
    s_fx.control = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (s_fx.control, 2000);
    if (zsock_connect (s_fx.control, "ipc://%s/%s", s_fx.dir, CONTROL_SOCKET_NAME))
        return -1;
    s_fx.peer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (s_fx.peer, 0);
    if (zsock_connect (s_fx.peer, "tcp://127.0.0.1:%d", s_fx.port))
        return -1;
    s_fx.have_gcc = compiler_identity_get ("gcc", &s_fx.gcc) == 0;
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    zsock_destroy (&s_fx.peer);
    zsock_destroy (&s_fx.control);
    node_destroy (&s_fx.node);
    node_config_destroy (&s_fx.config);
    s_rm_tree (s_fx.dir);
    s_rm_tree (s_fx.outside);
    s_rm_tree (s_fx.origin);
    s_rm_tree (s_fx.planted);
    return 0;
}

// ---------------------------------------------------------------------
//  Tests

//  The node tells whether it runs peers' jobs. Without a sandbox it must
//  refuse every job with an "unavailable" reason.
static void
test_availability (void **state)
{
    (void) state;
    char *executor = s_control (CONTROL_STATUS, "executor");
    s_fx.sandbox = streq (executor, "available");
    if (!s_fx.sandbox) {
        snprintf (s_fx.why, sizeof (s_fx.why), "%s", executor);
        assert_true (strncmp (executor, "unavailable: ", 13) == 0);
    }
    free (executor);
    if (!s_fx.have_gcc) {
        print_message ("skipped: no gcc on this machine\n");
        skip ();
    }
    if (!s_fx.sandbox) {
        const char *argv [] = { "gcc", "-c", "x.c", "-o", "x.o", NULL };
        s_expect (s_job (argv, NULL), "no sandbox", "unavailable");
        print_message ("the rest is skipped: %s\n", s_fx.why);
    }
}

//  A benign job runs: the refusals below are the checks, not a broken
//  node. The object comes back for the origin's path; nothing here.
static void
test_benign (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    const char *argv [] = { "gcc", "-O2", "-c", "x.c", "-o", "x.o", NULL };
    job_msg_t *msg = s_job (argv, NULL);
    job_result_t *result = NULL;
    char *reason = s_run (&msg, &result);
    if (reason)
        print_error ("a benign job failed: %s\n", reason);
    assert_null (reason);
    assert_non_null (result);
    assert_int_equal (result->status, 0);
    assert_int_equal (result->output_count, 1);
    char expected [512];
    snprintf (expected, sizeof (expected), "%s/x.o", s_fx.cwd);
    assert_string_equal (result->outputs [0].path, expected);
    assert_true (result->outputs [0].size > 0);
    job_result_destroy (&result);
    s_assert_nothing_outside ();
}

//  Options that load code or read files the peer chooses.
static void
test_hostile_arguments (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char plugin [256], specs [256], bdir [256], wrapper [256];
    snprintf (plugin, sizeof (plugin), "-fplugin=%s/x.so", s_fx.outside);
    snprintf (specs, sizeof (specs), "-specs=%s/x.specs", s_fx.outside);
    snprintf (bdir, sizeof (bdir), "-B%s", s_fx.outside);
    snprintf (wrapper, sizeof (wrapper), "/bin/sh,-c,touch %s/wrapped", s_fx.outside);
    struct {
        const char *label;
        const char *argv [10];
        const char *expected;
    } cases [] = {
        { "-fplugin=", { "gcc", plugin, "-c", "x.c", "-o", "x.o", NULL }, "-fplugin" },
        { "-fplugin-arg", { "gcc", "-fplugin-arg-x-y=z", "-c", "x.c", "-o", "x.o", NULL }, "-fplugin" },
        { "-specs=", { "gcc", specs, "-c", "x.c", "-o", "x.o", NULL }, "-specs" },
        { "--specs=", { "gcc", "--specs=/etc/passwd", "-c", "x.c", "-o", "x.o", NULL }, "specs" },
        { "-B", { "gcc", bdir, "-c", "x.c", "-o", "x.o", NULL }, "-B" },
        { "-B DIR", { "gcc", "-B", "/tmp", "-c", "x.c", "-o", "x.o", NULL }, "-B" },
        { "-wrapper", { "gcc", "-wrapper", wrapper, "-c", "x.c", "-o", "x.o", NULL }, "wrapper" },
        { "@/etc/passwd", { "gcc", "@/etc/passwd", "-c", "x.c", "-o", "x.o", NULL }, "response" },
        { "--sysroot=/", { "gcc", "--sysroot=/", "-c", "x.c", "-o", "x.o", NULL }, "sysroot" },
        { "-fdump-tree-all", { "gcc", "-fdump-tree-all", "-c", "x.c", "-o", "x.o", NULL }, "refused" },
        { "-save-temps", { "gcc", "-save-temps", "-c", "x.c", "-o", "x.o", NULL }, "save-temps" },
        { "link (no -c)", { "gcc", "x.c", "-o", "x", NULL }, "" },
        { "no output", { "gcc", "-c", "x.c", "-o", "-", NULL }, "" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++)
        s_expect (s_job (cases [i].argv, NULL), cases [i].label, cases [i].expected);
}

//  argv[0] and the compiler identity: only this machine's gcc, as the
//  peer names it, runs.
static void
test_hostile_identity (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    const char *argv [] = { "gcc", "-c", "x.c", "-o", "x.o", NULL };
    const char *sh [] = { "sh", "-c", "touch x.o", NULL };
    //  The identity names /bin/sh
    job_msg_t *msg = s_job (sh, NULL);
    snprintf (msg->spec->compiler.path, sizeof (msg->spec->compiler.path), "/bin/sh");
    s_expect (msg, "identity /bin/sh", "identity");
    //  gcc's identity, argv[0] another program
    msg = s_job (sh, NULL);
    s_expect (msg, "argv[0] sh", "not the compiler|not what the command runs");
    const char *abs_sh [] = { "/bin/sh", "-c", "touch x.o", NULL };
    s_expect (s_job (abs_sh, NULL), "argv[0] /bin/sh", "not the compiler|not what the command runs");
    const char *rel [] = { "./gcc", "-c", "x.c", "-o", "x.o", NULL };
    s_expect (s_job (rel, NULL), "argv[0] ./gcc", "not the compiler|not a compiler path");
    //  A wrong hash, a wrong version
    msg = s_job (argv, NULL);
    msg->spec->compiler.hash [0] ^= 0x5a;
    s_expect (msg, "identity hash", "identity");
    msg = s_job (argv, NULL);
    snprintf (msg->spec->compiler.version, sizeof (msg->spec->compiler.version), "99.9.9");
    s_expect (msg, "identity version", "identity");
    msg = s_job (argv, NULL);
    snprintf (msg->spec->compiler.path, sizeof (msg->spec->compiler.path), "/nonexistent/gcc");
    s_expect (msg, "identity missing", "identity");
}

//  To learn "this machine's identity" of the compiler a peer names, the
//  node runs it (-dumpfullversion, -dumpmachine) outside any sandbox. A
//  program the peer planted must never run that way: one not named like
//  a compiler, one argv[0] does not reach, and the real remote attack, a
//  0555 raw copy the node's own blob store made of a peer's blob.
static void
s_planted_refused (const char *label, const char *argv0, const char *compiler,
                   const char *marker)
{
    const char *argv [] = { argv0, "-c", "x.c", "-o", "x.o", NULL };
    job_msg_t *msg = s_job (argv, NULL);
    snprintf (msg->spec->compiler.path, sizeof (msg->spec->compiler.path), "%s", compiler);
    char *reason = s_run (&msg, NULL);
    bool ran = access (marker, F_OK) == 0;
    unlink (marker);
    if (ran || !reason || !strstr (reason, "identity")) {
        print_error ("%s: compiler %s: reason \"%s\"; %s\n", label, compiler,
                     reason ? reason : "(none)",
                     ran ? "the planted program RAN on the host" : "not run");
        free (reason);
        fail ();
    }
    print_message ("  %-28s -> %s\n", label, reason);
    free (reason);
}

static void
test_hostile_identity_probe (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char *planted_dir = s_fx.planted, planted [192], marker [192], script [256];
    snprintf (planted_dir, sizeof (s_fx.planted), "/tmp/meshcc-hostile-planted-%ld",
              (long) getpid ());
    assert_int_equal (mkdir (planted_dir, 0700), 0);
    snprintf (marker, sizeof (marker), "%s/ran", s_fx.outside);
    snprintf (script, sizeof (script), "#!/bin/sh\ntouch '%s'\necho 12\n", marker);
    const char *names [] = { "evil", "gcc" };
    for (size_t i = 0; i < 2; i++) {
        snprintf (planted, sizeof (planted), "%s/%s", planted_dir, names [i]);
        FILE *file = fopen (planted, "w");
        assert_non_null (file);
        fputs (script, file);
        fclose (file);
        assert_int_equal (chmod (planted, 0755), 0);
        if (i == 0)
            s_planted_refused ("planted, not a compiler", planted, planted, marker);
        else
            s_planted_refused ("planted gcc, argv[0] gcc", "gcc", planted, marker);
        unlink (planted);
    }
    rmdir (planted_dir);

    //  Over the mesh: a benign job ships the script as an executable
    //  input; the node materialises it from a 0555 raw copy in its store
    const char *argv [] = { "gcc", "-c", "x.c", "-o", "x.o", NULL };
    job_msg_t *msg = s_job (argv, NULL);
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (script, strlen (script), hash);
    char path [512];
    snprintf (path, sizeof (path), "%s/tool.sh", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, strlen (script), 0755);
    uint8_t *data = (uint8_t *) strdup (script);
    job_msg_add_blob (msg, hash, &data, strlen (script));
    char *reason = s_run (&msg, NULL);
    assert_null (reason);
    char hex [BLOB_HASH_HEX_SIZE + 1], raw [512];
    blob_hash_hex (hash, hex);
    snprintf (raw, sizeof (raw), "%s/cache/blobs-raw/%.2s/%s.0555", s_fx.dir, hex, hex + 2);
    if (access (raw, X_OK) == 0)
        s_planted_refused ("0555 raw copy in the store", raw, raw, marker);
    else
        print_message ("  (no raw copy at %s: the store layout changed; case not run)\n", raw);
    s_assert_nothing_outside ();
}

//  Output paths: ".." escapes and absolute paths. Inside the job root
//  every absolute path is inside the root, so an absolute -o may run;
//  whatever the verdict, the host path is not written.
static void
test_hostile_outputs (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    //  Climbing above / from the deep cwd
    const char *climb [] = { "gcc", "-c", "x.c", "-o",
                             "../../../../../../../../../../../../../../../../tmp/escape.o", NULL };
    s_expect (s_job (climb, NULL), "-o ../../ above /", "climbs above /");
    const char *climb_mf [] = { "gcc", "-c", "x.c", "-o", "x.o", "-MD", "-MF",
                                "../../../../../../../../../../../../../../../../tmp/escape.d", NULL };
    s_expect (s_job (climb_mf, NULL), "-MF ../../ above /", "climbs above /");
    //  Into system directories
    const char *sys [] = { "gcc", "-c", "x.c", "-o", "/usr/bin/gcc", NULL };
    s_expect (s_job (sys, NULL), "-o /usr/bin/gcc", "system directory");
    char cron [512] = "";
    int up = 0;
    for (const char *c = s_fx.cwd; *c; c++)
        up += *c == '/';
    for (int i = 0; i < up; i++)
        strcat (cron, "../");
    strcat (cron, "etc/cron.d/meshcc-hostile");
    const char *etc [] = { "gcc", "-c", "x.c", "-o", cron, NULL };
    s_expect (s_job (etc, NULL), "-o ../../etc/cron.d", "system directory");
    assert_int_equal (access ("/etc/cron.d/meshcc-hostile", F_OK), -1);
    const char *proc [] = { "gcc", "-c", "x.c", "-o", "/proc/self/mem", NULL };
    s_expect (s_job (proc, NULL), "-o /proc/self/mem", "system directory|device");
    //  An output that is an input (a shared hard link of the store)
    const char *input [] = { "gcc", "-c", "x.c", "-o", "x.c", NULL };
    s_expect (s_job (input, NULL), "-o the input", "overwrite an input");

    //  ".." that lands in the sentinel directory, and an absolute path
    //  there: the host path is never written; if the job runs, the object
    //  comes back for the origin to write at that path.
    char escape [512], absolute [512], dep [512];
    int depth = 0;
    for (const char *c = s_fx.cwd; *c; c++)
        depth += *c == '/';
    escape [0] = 0;
    for (int i = 0; i < depth; i++)
        strcat (escape, "../");
    strcat (escape, s_fx.outside + 1);
    strcat (escape, "/escape.o");
    snprintf (absolute, sizeof (absolute), "%s/abs.o", s_fx.outside);
    snprintf (dep, sizeof (dep), "%s/abs.d", s_fx.outside);
    const char *rel [] = { "gcc", "-c", "x.c", "-o", escape, NULL };
    const char *abs [] = { "gcc", "-c", "x.c", "-o", absolute, "-MD", "-MF", dep, NULL };
    const char *const *argvs [] = { rel, abs };
    const char *labels [] = { "-o ../../outside/escape.o", "-o /outside/abs.o" };
    for (size_t i = 0; i < 2; i++) {
        job_msg_t *msg = s_job (argvs [i], NULL);
        job_result_t *result = NULL;
        char *reason = s_run (&msg, &result);
        print_message ("  %-28s -> %s\n", labels [i], reason ? reason : "ran inside the job root");
        if (result) {
            char expected [512];
            snprintf (expected, sizeof (expected), "%s/%s", s_fx.outside,
                      i == 0 ? "escape.o" : "abs.o");
            assert_true (result->output_count >= 1);
            bool found = false;
            for (size_t k = 0; k < result->output_count; k++)
                found |= streq (result->outputs [k].path, expected);
            assert_true (found);
        }
        free (reason);
        job_result_destroy (&result);
        s_assert_nothing_outside ();
    }
}

//  Manifest paths and symlinks that would place or reach files outside
//  the job root.
static void
test_hostile_manifest (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    const char *argv [] = { "gcc", "-c", "x.c", "-o", "x.o", NULL };
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (s_source, strlen (s_source), hash);
    uint64_t size = strlen (s_source);
    char path [512], target [512];

    job_msg_t *msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/../../../../../../../../../../etc/x.h", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "path with ..", "not normalised");

    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/../x.h", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "path with .. (inside)", "not normalised");

    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, "relative/x.h", MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "relative path", "not absolute");

    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, "/proc/self/environ", MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "path under /proc", "/proc");

    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, "/sys/kernel/x", MANIFEST_DIR, NULL, NULL, 0, 0755);
    s_expect (msg, "dir under /sys", "/sys");

    //  A symlink climbing out
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/up", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK,
                 "../../../../../../../../../../../../../..", NULL, 0, 0777);
    s_expect (msg, "symlink ../../ above /", "points above /");

    //  A symlink to /etc with a file placed under it
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/etc", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK, "/etc", NULL, 0, 0777);
    snprintf (path, sizeof (path), "%s/etc/meshcc-hostile", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "file under symlink to /etc", "below symlink");
    assert_int_equal (access ("/etc/meshcc-hostile", F_OK), -1);

    //  A symlink to the sentinel with a file under it
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/out", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK, s_fx.outside, NULL, 0, 0777);
    snprintf (path, sizeof (path), "%s/out/planted.h", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "file under symlink out", "below symlink");

    //  A symlink climbing with .. to the sentinel, a directory under it
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/climb", s_fx.cwd);
    int depth = 0;
    for (const char *c = s_fx.cwd; *c; c++)
        depth += *c == '/';
    target [0] = 0;
    for (int i = 0; i < depth - 1; i++)
        strcat (target, "../");
    strcat (target, s_fx.outside + 1);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK, target, NULL, 0, 0777);
    snprintf (path, sizeof (path), "%s/climb/dir", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_DIR, NULL, NULL, 0, 0755);
    s_expect (msg, "dir under symlink ../out", "below symlink");

    //  A symlink into /dev
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/disk", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK, "/dev/sda", NULL, 0, 0777);
    s_expect (msg, "symlink into /dev", "points into");

    //  A symlink replacing a toolchain directory, and /lib
    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, "/usr/lib", MANIFEST_SYMLINK, s_fx.outside, NULL, 0, 0777);
    s_expect (msg, "symlink over /usr/lib", "shadows");

    //  The same path twice; a file replacing /
    msg = s_job (argv, NULL);
    snprintf (path, sizeof (path), "%s/x.c", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "duplicate path", "twice");
    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, "/", MANIFEST_FILE, NULL, hash, size, 0644);
    s_expect (msg, "file replacing /", "replaces /");

    //  The working directory itself
    msg = s_job (argv, "relative/cwd");
    s_expect (msg, "relative cwd", "working directory");
    msg = s_job (argv, "/proc/self");
    s_expect (msg, "cwd /proc/self", "working directory");
    snprintf (path, sizeof (path), "%s/../../b/c", s_fx.cwd);
    msg = s_job (argv, path);
    s_expect (msg, "cwd with ..", "working directory");

    //  An output through a symlink of the manifest that points out: it
    //  resolves inside the root; the host sentinel stays empty.
    snprintf (target, sizeof (target), "%s/obj", s_fx.outside);
    const char *through [] = { "gcc", "-c", "x.c", "-o", "out/x.o", NULL };
    msg = s_job (through, NULL);
    snprintf (path, sizeof (path), "%s/out", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_SYMLINK, target, NULL, 0, 0777);
    job_result_t *result = NULL;
    char *reason = s_run (&msg, &result);
    print_message ("  %-28s -> %s\n", "-o through symlink out",
                   reason ? reason : "ran inside the job root");
    free (reason);
    job_result_destroy (&result);
    s_assert_nothing_outside ();
}

//  Blobs whose data does not hash to their name are not stored: the job
//  fails with "missing input" and the bytes are not used.
static void
test_hostile_blobs (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    uint64_t received = s_number (CONTROL_STATS, "blobs_received");
    static const char claimed [] = "int claimed_by_the_manifest = 1;\n";
    static const char forged [] = "#include </etc/shadow>\n";
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (claimed, strlen (claimed), hash);
    const char *argv [] = { "gcc", "-c", "y.c", "-o", "y.o", NULL };

    //  Inlined in the JOB
    job_msg_t *msg = s_job (argv, NULL);
    char path [512];
    snprintf (path, sizeof (path), "%s/y.c", s_fx.cwd);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, strlen (claimed), 0644);
    uint8_t *data = (uint8_t *) strdup (forged);
    job_msg_add_blob (msg, hash, &data, strlen (forged));
    uint64_t id = msg->job_id;
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    job_msg_t *reply = s_recv (s_fx.peer, id, 8000);
    assert_non_null (reply);
    //  The node asks for the blob it could not store
    assert_int_equal (reply->type, JOB_WIRE_NEED);
    assert_int_equal (reply->hash_count, 1);
    assert_memory_equal (reply->hashes [0], hash, BLOB_HASH_SIZE);
    job_msg_destroy (&reply);

    //  ...and gets forged bytes again, in BLOBS (last)
    msg = job_msg_new (JOB_WIRE_BLOBS, id);
    msg->last = true;
    data = (uint8_t *) strdup (forged);
    job_msg_add_blob (msg, hash, &data, strlen (forged));
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    reply = s_recv (s_fx.peer, id, 8000);
    assert_non_null (reply);
    assert_int_equal (reply->type, JOB_WIRE_RESULT);
    assert_non_null (reply->result->failure);
    print_message ("  %-28s -> %s\n", "forged blob", reply->result->failure);
    assert_non_null (strstr (reply->result->failure, "missing input"));
    job_msg_destroy (&reply);
    //  Only x.c (a genuine blob, maybe already stored) may have counted
    assert_true (s_number (CONTROL_STATS, "blobs_received") <= received + 1);

    //  The hash is still unknown: a new job needs it again
    msg = s_job (argv, NULL);
    s_add_entry (msg->spec, path, MANIFEST_FILE, NULL, hash, strlen (claimed), 0644);
    id = msg->job_id;
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    reply = s_recv (s_fx.peer, id, 8000);
    assert_non_null (reply);
    assert_int_equal (reply->type, JOB_WIRE_NEED);
    job_msg_destroy (&reply);
    //  BLOBS for it from another peer (another routing id) are not taken
    zsock_t *other = zsock_new (ZMQ_DEALER);
    assert_int_equal (zsock_connect (other, "tcp://127.0.0.1:%d", s_fx.port), 0);
    uint64_t unknown = s_number (CONTROL_STATUS, "dropped_unknown_job");
    msg = job_msg_new (JOB_WIRE_BLOBS, id);
    msg->last = true;
    data = (uint8_t *) strdup (claimed);
    job_msg_add_blob (msg, hash, &data, strlen (claimed));
    s_send (other, msg);
    job_msg_destroy (&msg);
    int64_t deadline = zclock_mono () + 3000;
    while (s_number (CONTROL_STATUS, "dropped_unknown_job") == unknown && zclock_mono () < deadline)
        node_run_for (s_fx.node, 20);
    assert_int_equal (s_number (CONTROL_STATUS, "dropped_unknown_job"), unknown + 1);
    zsock_destroy (&other);
    //  The real peer ends it with empty last BLOBS: missing input
    msg = job_msg_new (JOB_WIRE_BLOBS, id);
    msg->last = true;
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    reply = s_recv (s_fx.peer, id, 8000);
    assert_non_null (reply);
    assert_int_equal (reply->type, JOB_WIRE_RESULT);
    assert_non_null (reply->result->failure);
    assert_non_null (strstr (reply->result->failure, "missing input"));
    job_msg_destroy (&reply);
    s_assert_nothing_outside ();
}

//  A frame header for a job message of `type`.
static size_t
s_header (uint8_t *out, int type, uint8_t flags)
{
    out [0] = 'M';
    out [1] = 'C';
    out [2] = MESHCC_PROTO_VERSION;
    out [3] = (uint8_t) type;
    out [4] = flags;
    return WIRE_HEADER_SIZE;
}

static void
s_put32 (uint8_t *out, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        out [i] = (uint8_t) (value >> (8 * (3 - i)));
}

//  Waits until STATUS `key` reaches `value`.
static void
s_await (const char *key, uint64_t value)
{
    int64_t deadline = zclock_mono () + 3000;
    uint64_t now;
    while ((now = s_number (CONTROL_STATUS, key)) < value && zclock_mono () < deadline)
        node_run_for (s_fx.node, 20);
    if (now != value)
        print_error ("%s is %llu, expected %llu\n", key, (unsigned long long) now,
                     (unsigned long long) value);
    assert_int_equal (now, value);
}

//  Oversized payloads, garbage and truncated frames: dropped and counted,
//  the node answers afterwards. Runs with or without a sandbox.
static void
test_hostile_frames (void **state)
{
    (void) state;
    uint64_t oversized = s_number (CONTROL_STATUS, "dropped_oversized");
    uint64_t truncated = s_number (CONTROL_STATUS, "dropped_truncated");
    uint64_t malformed = s_number (CONTROL_STATUS, "dropped_malformed");
    uint64_t bad_version = s_number (CONTROL_STATUS, "dropped_bad_version");
    uint8_t frame [64];
    size_t size;

    //  A compressed payload announcing 4 GiB - 1 when decompressed
    size = s_header (frame, JOB_WIRE_JOB, WIRE_FLAG_ZSTD);
    s_put32 (frame + size, 0xffffffffu);
    size += 4;
    memset (frame + size, 0x28, 8);
    size += 8;
    s_send_raw (s_fx.peer, frame, size);
    //  JOB with an argc above JOB_MAX_ARGS
    size = s_header (frame, JOB_WIRE_JOB, 0);
    memset (frame + size, 0, 8);
    size += 8;
    s_put32 (frame + size, JOB_MAX_ARGS + 1);
    size += 4;
    s_send_raw (s_fx.peer, frame, size);
    //  BLOBS with one blob claiming 4 GiB - 1 bytes
    size = s_header (frame, JOB_WIRE_BLOBS, 0);
    memset (frame + size, 0, 8);
    size += 8;
    frame [size++] = 1;
    s_put32 (frame + size, 1);
    size += 4;
    memset (frame + size, 0xab, BLOB_HASH_SIZE);
    size += BLOB_HASH_SIZE;
    s_put32 (frame + size, 0xffffffffu);
    size += 4;
    s_send_raw (s_fx.peer, frame, size);
    s_await ("dropped_oversized", oversized + 3);

    //  Truncated: a header and half a job id; a JOB whose argv string
    //  says 1000 bytes and has 3
    size = s_header (frame, JOB_WIRE_JOB, 0);
    memset (frame + size, 0, 4);
    size += 4;
    s_send_raw (s_fx.peer, frame, size);
    size = s_header (frame, JOB_WIRE_JOB, 0);
    memset (frame + size, 0, 8);
    size += 8;
    s_put32 (frame + size, 1);
    size += 4;
    s_put32 (frame + size, 1000);
    size += 4;
    memcpy (frame + size, "gcc", 3);
    size += 3;
    s_send_raw (s_fx.peer, frame, size);
    s_await ("dropped_truncated", truncated + 2);

    //  Malformed: unknown flags; zstd garbage; a valid JOB with trailing
    //  bytes; argc 0; a NUL inside a string; an unknown manifest kind
    size = s_header (frame, JOB_WIRE_RESULT, 0x80);
    memset (frame + size, 0, 8);
    size += 8;
    s_send_raw (s_fx.peer, frame, size);
    size = s_header (frame, JOB_WIRE_JOB, WIRE_FLAG_ZSTD);
    s_put32 (frame + size, 100);
    size += 4;
    memcpy (frame + size, "not zstd at all!", 16);
    size += 16;
    s_send_raw (s_fx.peer, frame, size);
    size = s_header (frame, JOB_WIRE_JOB, 0);
    memset (frame + size, 0, 8);
    size += 8;
    s_put32 (frame + size, 0);
    size += 4;
    s_send_raw (s_fx.peer, frame, size);
    size = s_header (frame, JOB_WIRE_REFUSED, 0);
    memset (frame + size, 0, 8);
    size += 8;
    frame [size++] = 0;
    frame [size++] = 3;
    memcpy (frame + size, "a\0b", 3);
    size += 3;
    s_send_raw (s_fx.peer, frame, size);
    {
        compiler_identity_t none;
        memset (&none, 0, sizeof (none));
        job_spec_t *spec = job_spec_new ();
        const char *argv [] = { "gcc", NULL };
        spec->argv = s_strings (argv);
        spec->argc = 1;
        spec->cwd = strdup ("/");
        spec->compiler = none;
        s_add_entry (spec, "/x", MANIFEST_DIR, NULL, NULL, 0, 0755);
        job_msg_t *msg = job_msg_new (JOB_WIRE_JOB, 999999);
        msg->spec = spec;
        uint8_t *data;
        size_t data_size;
        assert_int_equal (job_wire_encode (msg, &data, &data_size), 0);
        job_msg_destroy (&msg);
        //  Trailing bytes
        uint8_t *longer = (uint8_t *) malloc (data_size + 3);
        memcpy (longer, data, data_size);
        memcpy (longer + data_size, "xyz", 3);
        s_send_raw (s_fx.peer, longer, data_size + 3);
        free (longer);
        //  The kind byte of the only entry ('d', str16 "/x"): -> 'q'
        assert_int_equal (data [4], 0);         //  not compressed
        uint8_t *kind = NULL;
        for (size_t i = WIRE_HEADER_SIZE; i + 5 <= data_size; i++)
            if (data [i] == 'd' && data [i + 1] == 0 && data [i + 2] == 2
            &&  data [i + 3] == '/' && data [i + 4] == 'x') {
                kind = data + i;
                break;
            }
        assert_non_null (kind);
        *kind = 'q';
        s_send_raw (s_fx.peer, data, data_size);
        free (data);
    }
    s_await ("dropped_malformed", malformed + 6);

    //  Another protocol version
    size = s_header (frame, JOB_WIRE_JOB, 0);
    frame [2] = MESHCC_PROTO_VERSION + 1;
    memset (frame + size, 0, 8);
    size += 8;
    s_send_raw (s_fx.peer, frame, size);
    s_await ("dropped_bad_version", bad_version + 1);

    //  Peer-to-origin messages on the node's ROUTER: not ours, counted
    uint64_t unknown = s_number (CONTROL_STATUS, "dropped_unknown_job");
    job_msg_t *msg = job_msg_new (JOB_WIRE_RESULT, 12345);
    msg->result = job_result_new ();
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    msg = job_msg_new (JOB_WIRE_ACCEPTED, 12345);
    s_send (s_fx.peer, msg);
    job_msg_destroy (&msg);
    s_await ("dropped_unknown_job", unknown + 2);

    //  Still serving: a job gets an answer
    if (s_fx.have_gcc) {
        const char *argv [] = { "gcc", "-fplugin=x.so", "-c", "x.c", "-o", "x.o", NULL };
        s_expect (s_job (argv, NULL), "after garbage",
                  s_fx.sandbox ? "-fplugin" : "unavailable");
    }
}

//  A frame above JOB_WIRE_MAX_FRAME never reaches the node (ZMQ_MAXMSGSIZE
//  drops the connection); the node keeps serving everyone else.
static void
test_hostile_huge_frame (void **state)
{
    (void) state;
    zsock_t *big = zsock_new (ZMQ_DEALER);
    zsock_set_linger (big, 0);
    assert_int_equal (zsock_connect (big, "tcp://127.0.0.1:%d", s_fx.port), 0);
    uint64_t bytes_in = s_number (CONTROL_STATUS, "bytes_in");
    size_t size = (size_t) JOB_WIRE_MAX_FRAME + 1;
    zframe_t *frame = zframe_new (NULL, size);
    assert_non_null (frame);
    uint8_t *data = zframe_data (frame);
    memset (data, 0, size);
    s_header (data, JOB_WIRE_JOB, 0);
    assert_int_equal (zframe_send (&frame, big, 0), 0);
    for (int i = 0; i < 50; i++)
        node_run_for (s_fx.node, 20);
    //  Not delivered
    assert_true (s_number (CONTROL_STATUS, "bytes_in") - bytes_in < JOB_WIRE_MAX_FRAME);
    zsock_destroy (&big);
    //  The node still answers peers
    if (s_fx.have_gcc) {
        const char *argv [] = { "gcc", "-B/tmp", "-c", "x.c", "-o", "x.o", NULL };
        s_expect (s_job (argv, NULL), "after a huge frame", s_fx.sandbox ? "-B" : "unavailable");
    }
}

//  After all of it: the node is alive, compiles a benign job, holds no
//  slot, and nothing was written outside.
static void
test_still_alive (void **state)
{
    (void) state;
    char *executor = s_control (CONTROL_STATUS, "executor");
    free (executor);
    if (s_fx.sandbox && s_fx.have_gcc)
        test_benign (state);
    int64_t deadline = zclock_mono () + 3000;
    while (s_number (CONTROL_STATUS, "running_for_peers") && zclock_mono () < deadline)
        node_run_for (s_fx.node, 20);
    assert_int_equal (s_number (CONTROL_STATUS, "running_for_peers"), 0);
    s_assert_nothing_outside ();
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_availability),
        cmocka_unit_test (test_benign),
        cmocka_unit_test (test_hostile_arguments),
        cmocka_unit_test (test_hostile_identity),
        cmocka_unit_test (test_hostile_identity_probe),
        cmocka_unit_test (test_hostile_outputs),
        cmocka_unit_test (test_hostile_manifest),
        cmocka_unit_test (test_hostile_blobs),
        cmocka_unit_test (test_hostile_frames),
        cmocka_unit_test (test_hostile_huge_frame),
        cmocka_unit_test (test_still_alive),
    };
    return cmocka_run_group_tests_name ("node_hostile", tests, s_group_setup, s_group_teardown);
}
