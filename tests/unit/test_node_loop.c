//  Unit tests of the node's event loop (one node on loopback driven by raw
//  sockets: garbage counted, a SYN answered, the control protocol, COMPILE
//  in a local slot and the fallback of a node with no slot and no peer,
//  STATS), its worker pool, its log and its reads of the machine.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include <czmq.h>
#include "meshcc/control.h"
#include "meshcc/node.h"
#include "meshcc/worker.h"
#include "meshcc/node_log.h"
#include "meshcc/sysinfo.h"

static void
test_node_log_selftest (void **state)
{
    (void) state;
    node_log_test (false);
}

static void
test_sysinfo_selftest (void **state)
{
    (void) state;
    sysinfo_test (false);
}

static void
test_node_selftest (void **state)
{
    (void) state;
    node_test (false);
}

static void
test_worker_selftest (void **state)
{
    (void) state;
    worker_test (false);
}

//  A node on a fresh directory and port with `slots` slots.
static node_t *
s_node (const char *dir, const char *slots, node_config_t **config_p)
{
    zsock_t *probe = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (probe, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    zsock_destroy (&probe);
    node_config_t *config = node_config_new ();
    char err [512], note [256], value [64];
    snprintf (value, sizeof value, "127.0.0.1:%d", port);
    assert_int_equal (node_config_set (config, "listen", value, NODE_CONFIG_CMDLINE, err, sizeof err), 0);
    assert_int_equal (node_config_set (config, "slots", slots, NODE_CONFIG_CMDLINE, err, sizeof err), 0);
    config->dir = strdup (dir);
    assert_int_equal (node_config_finish (config, false, err, sizeof err, note, sizeof note), 0);
    zcert_t *cert = NULL;
    node_t *node = node_new (config, &cert, err, sizeof err);
    assert_non_null (node);
    *config_p = config;
    return node;
}

//  Sends COMPILE and runs the loop until the reply comes.
static zmsg_t *
s_compile (node_t *node, zsock_t *cli, const char *cwd, const char *compiler,
           const char *argv, size_t argv_size)
{
    zmsg_t *request = zmsg_new ();
    zmsg_addstr (request, CONTROL_COMPILE);
    zmsg_addstr (request, cwd);
    zmsg_addmem (request, argv, argv_size);
    const char env [] = "PATH=/usr/bin:/bin\0LANG=C";
    zmsg_addmem (request, env, sizeof env);
    zmsg_addstr (request, compiler);
    zmsg_addstr (request, "022");
    zmsg_send (&request, cli);
    zmsg_t *reply = NULL;
    for (int i = 0; i < 50 && !reply; i++) {
        node_run_for (node, 50);
        reply = zmsg_recv_nowait (cli);
    }
    assert_non_null (reply);
    return reply;
}

static char *
s_stat (node_t *node, zsock_t *cli, const char *key)
{
    zstr_send (cli, CONTROL_STATS);
    node_run_for (node, 30);
    zmsg_t *reply = zmsg_recv (cli);
    assert_non_null (reply);
    char *ok = zmsg_popstr (reply);
    assert_string_equal (ok, CONTROL_OK);
    free (ok);
    zframe_t *frame = zmsg_pop (reply);
    zhash_t *record = zhash_unpack (frame);
    assert_non_null (record);
    const char *value = (const char *) zhash_lookup (record, key);
    assert_non_null (value);
    char *copy = strdup (value);
    zhash_destroy (&record);
    zframe_destroy (&frame);
    zmsg_destroy (&reply);
    return copy;
}

//  A node with a slot runs the "compiler" itself: status, stdout and
//  stderr come back as they are, where = local.
static void
test_node_compile_local (void **state)
{
    (void) state;
    node_log_open (NULL, NODE_LOG_ERROR, true);
    char dir [] = "/tmp/node-compile-XXXXXX";
    assert_non_null (mkdtemp (dir));
    node_config_t *config;
    node_t *node = s_node (dir, "1", &config);
    zsock_t *cli = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (cli, 2000);
    assert_int_equal (zsock_connect (cli, "ipc://%s/%s", dir, CONTROL_SOCKET_NAME), 0);

    const char argv [] = "sh\0-c\0echo out; pwd >&2; exit 3";
    zmsg_t *reply = s_compile (node, cli, "/tmp", "/bin/sh", argv, sizeof argv);
    char *kind = zmsg_popstr (reply);
    char *status = zmsg_popstr (reply);
    char *out = zmsg_popstr (reply);
    char *err = zmsg_popstr (reply);
    char *where = zmsg_popstr (reply);
    assert_string_equal (kind, CONTROL_RESULT);
    assert_string_equal (status, "3");
    assert_string_equal (out, "out\n");
    assert_string_equal (err, "/tmp\n");
    assert_string_equal (where, "local");
    free (kind); free (status); free (out); free (err); free (where);
    zmsg_destroy (&reply);

    //  A malformed request falls back rather than run anything.
    reply = s_compile (node, cli, "relative/dir", "/bin/sh", argv, sizeof argv);
    kind = zmsg_popstr (reply);
    assert_string_equal (kind, CONTROL_FALLBACK);
    free (kind);
    zmsg_destroy (&reply);

    char *value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "1");
    free (value);
    value = s_stat (node, cli, "fallback_error");
    assert_string_equal (value, "1");
    free (value);
    zsock_destroy (&cli);
    node_destroy (&node);
    node_config_destroy (&config);
    char cleanup [128];
    snprintf (cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert_int_equal (system (cleanup), 0);
}

//  --slots 0 and no peer: nothing runs here, the wrapper is told to
//  compile itself, at once.
static void
test_node_compile_no_slot (void **state)
{
    (void) state;
    node_log_open (NULL, NODE_LOG_ERROR, true);
    char dir [] = "/tmp/node-compile-XXXXXX";
    assert_non_null (mkdtemp (dir));
    node_config_t *config;
    node_t *node = s_node (dir, "0", &config);
    zsock_t *cli = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (cli, 2000);
    assert_int_equal (zsock_connect (cli, "ipc://%s/%s", dir, CONTROL_SOCKET_NAME), 0);
    char source [256];
    snprintf (source, sizeof source, "%s/x.c", dir);
    FILE *file = fopen (source, "w");
    assert_non_null (file);
    fputs ("int x;\n", file);
    fclose (file);
    const char argv [] = "gcc\0-c\0x.c";
    zmsg_t *reply = s_compile (node, cli, dir, "/usr/bin/gcc", argv, sizeof argv);
    char *kind = zmsg_popstr (reply);
    char *reason = zmsg_popstr (reply);
    assert_string_equal (kind, CONTROL_FALLBACK);
    assert_non_null (reason);
    free (kind);
    free (reason);
    zmsg_destroy (&reply);
    char object [256];
    snprintf (object, sizeof object, "%s/x.o", dir);
    assert_int_not_equal (access (object, F_OK), 0);        //  nothing written
    char *value = s_stat (node, cli, "fallback_no_peer");
    assert_string_equal (value, "1");
    free (value);
    value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "0");
    free (value);
    zsock_destroy (&cli);
    node_destroy (&node);
    node_config_destroy (&config);
    char cleanup [128];
    snprintf (cleanup, sizeof cleanup, "rm -rf '%s'", dir);
    assert_int_equal (system (cleanup), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_node_log_selftest),
        cmocka_unit_test (test_sysinfo_selftest),
        cmocka_unit_test (test_node_selftest),
        cmocka_unit_test (test_worker_selftest),
        cmocka_unit_test (test_node_compile_local),
        cmocka_unit_test (test_node_compile_no_slot),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
