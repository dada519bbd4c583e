//  Unit tests of the node's event loop (one node on loopback driven by raw
//  sockets: garbage counted, a SYN answered, the control protocol, COMPILE
//  on the compile socket (LOCAL with a free slot, malformed requests) and
//  the fallback of a node with no slot and no peer,
//  STATS), its worker pool, its log and its reads of the machine.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>
#include <czmq.h>
#include "meshcc/control.h"
#include "meshcc/limits.h"
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

//  A node on a fresh directory and port with `slots` slots. The port is
//  an ephemeral one probed free, which another process may take before the
//  node binds it: then the node is made again on another port.
static node_t *
s_node (const char *dir, const char *slots, node_config_t **config_p)
{
    char err [512] = "", note [256], value [64];
    for (int attempt = 0; attempt < 5; attempt++) {
        zsock_t *probe = zsock_new (ZMQ_ROUTER);
        int port = zsock_bind (probe, "tcp://127.0.0.1:*");
        assert_true (port > 0);
        zsock_destroy (&probe);
        node_config_t *config = node_config_new ();
        snprintf (value, sizeof value, "127.0.0.1:%d", port);
        assert_int_equal (node_config_set (config, "listen", value, NODE_CONFIG_CMDLINE, err, sizeof err), 0);
        assert_int_equal (node_config_set (config, "slots", slots, NODE_CONFIG_CMDLINE, err, sizeof err), 0);
        config->dir = strdup (dir);
        assert_int_equal (node_config_finish (config, false, err, sizeof err, note, sizeof note), 0);
        zcert_t *cert = NULL;
        node_t *node = node_new (config, &cert, err, sizeof err);
        if (node) {
            *config_p = config;
            return node;
        }
        print_message ("node_new on port %d: %s; trying another port\n", port, err);
        node_config_destroy (&config);
    }
    fail_msg ("cannot make a node: %s", err);
    return NULL;
}

//  Connects to the node's compile socket (control.h).
static int
s_connect (const char *dir)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf (address.sun_path, sizeof address.sun_path, "%s/%s", dir, COMPILE_SOCKET_NAME);
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    assert_int_equal (connect (fd, (struct sockaddr *) &address, sizeof address), 0);
    return fd;
}

//  Runs the loop until `fd` has a whole reply; returns its body (caller
//  frees) and its size.
static uint8_t *
s_reply (node_t *node, int fd, size_t *size_p)
{
    uint8_t prefix [4];
    size_t got = 0;
    uint8_t *body = NULL;
    size_t size = 0, body_got = 0;
    for (int i = 0; i < 100; i++) {
        node_run_for (node, 20);
        while (true) {
            ssize_t rc = body? recv (fd, body + body_got, size - body_got, MSG_DONTWAIT)
                             : recv (fd, prefix + got, 4 - got, MSG_DONTWAIT);
            if (rc <= 0)
                break;
            if (!body) {
                got += (size_t) rc;
                if (got == 4) {
                    size = control_get_u32 (prefix);
                    body = (uint8_t *) malloc (size + 1);
                }
            }
            else
                body_got += (size_t) rc;
            if (body && body_got == size) {
                *size_p = size;
                return body;
            }
        }
    }
    fail_msg ("no reply from the node");
    return NULL;
}

//  Sends COMPILE on a new connection and runs the loop until the reply
//  comes. Returns the connection (still open) and the reply's fields.
static int
s_compile (node_t *node, const char *dir, const char *cwd, const char *compiler,
           const char *argv, size_t argv_size, uint8_t **body_p, control_field_t *fields,
           int *count_p)
{
    const char env [] = "PATH=/usr/bin:/bin\0LANG=C";
    const void *data [6] = { CONTROL_COMPILE, cwd, argv, env, compiler, "022" };
    size_t sizes [6] = { strlen (CONTROL_COMPILE), strlen (cwd), argv_size, sizeof env,
                         strlen (compiler), 3 };
    size_t size = 0;
    uint8_t *message = control_message_new (6, data, sizes, &size);
    int fd = s_connect (dir);
    assert_int_equal (send (fd, message, size, 0), (ssize_t) size);
    free (message);
    *body_p = s_reply (node, fd, &size);
    *count_p = control_fields_parse (*body_p, size, fields, CONTROL_MAX_FIELDS);
    assert_true (*count_p >= 1);
    return fd;
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

//  A node with a free slot answers LOCAL at once and counts the slot busy
//  while the connection stays open (the wrapper's compiler holds it); its
//  end frees the slot and counts a local job.
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
    char path [256];
    snprintf (path, sizeof path, "%s/%s", dir, COMPILE_SOCKET_NAME);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (S_ISSOCK (st.st_mode));
    assert_int_equal (st.st_mode & 0777, 0600);

    const char argv [] = "sh\0-c\0exit 3";
    uint8_t *body;
    control_field_t fields [CONTROL_MAX_FIELDS];
    int count;
    int fd = s_compile (node, dir, "/tmp", "/bin/sh", argv, sizeof argv, &body, fields, &count);
    assert_int_equal (count, 1);
    assert_true (control_field_is (&fields [0], CONTROL_LOCAL));
    free (body);
    char *value = s_stat (node, cli, "running_local");
    assert_string_equal (value, "1");
    free (value);
    value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "0");
    free (value);
    close (fd);
    node_run_for (node, 30);
    value = s_stat (node, cli, "running_local");
    assert_string_equal (value, "0");
    free (value);
    value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "1");
    free (value);

    //  A malformed request falls back rather than run anything.
    fd = s_compile (node, dir, "relative/dir", "/bin/sh", argv, sizeof argv, &body, fields, &count);
    assert_int_equal (count, 2);
    assert_true (control_field_is (&fields [0], CONTROL_FALLBACK));
    free (body);
    close (fd);
    //  So does one announcing more than COMPILE_REQUEST_MAX bytes.
    fd = s_connect (dir);
    uint8_t huge [4];
    control_put_u32 (huge, COMPILE_REQUEST_MAX + 1);
    assert_int_equal (send (fd, huge, 4, 0), 4);
    size_t size;
    body = s_reply (node, fd, &size);
    count = control_fields_parse (body, size, fields, CONTROL_MAX_FIELDS);
    assert_int_equal (count, 2);
    assert_true (control_field_is (&fields [0], CONTROL_FALLBACK));
    free (body);
    close (fd);
    //  A connection that closes half-way through its request costs nothing.
    fd = s_connect (dir);
    assert_int_equal (send (fd, huge, 2, 0), 2);
    close (fd);
    node_run_for (node, 30);

    value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "1");
    free (value);
    value = s_stat (node, cli, "fallback_error");
    assert_string_equal (value, "2");
    free (value);
    //  COMPILE is not a command of the control socket any more.
    zstr_send (cli, CONTROL_COMPILE);
    node_run_for (node, 30);
    char *status = zstr_recv (cli);
    assert_string_equal (status, CONTROL_ERROR);
    free (status);
    char *message = zstr_recv (cli);
    free (message);
    zsock_destroy (&cli);
    node_destroy (&node);
    node_config_destroy (&config);
    assert_int_not_equal (access (path, F_OK), 0);      //  the socket file is gone
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
    uint8_t *body;
    control_field_t fields [CONTROL_MAX_FIELDS];
    int count;
    int fd = s_compile (node, dir, dir, "/usr/bin/gcc", argv, sizeof argv, &body, fields, &count);
    assert_int_equal (count, 2);
    assert_true (control_field_is (&fields [0], CONTROL_FALLBACK));
    assert_true (fields [1].size > 0);
    free (body);
    //  The node closes the connection after its reply.
    uint8_t byte;
    assert_int_equal (recv (fd, &byte, 1, 0), 0);
    close (fd);
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

//  Sends COMPILE on a new connection without waiting for the reply.
static int
s_send_compile (const char *dir, const char *cwd, const char *compiler,
                const char *argv, size_t argv_size)
{
    const char env [] = "PATH=/usr/bin:/bin\0LANG=C";
    const void *data [6] = { CONTROL_COMPILE, cwd, argv, env, compiler, "022" };
    size_t sizes [6] = { strlen (CONTROL_COMPILE), strlen (cwd), argv_size, sizeof env,
                         strlen (compiler), 3 };
    size_t size = 0;
    uint8_t *message = control_message_new (6, data, sizes, &size);
    int fd = s_connect (dir);
    assert_int_equal (send (fd, message, size, 0), (ssize_t) size);
    free (message);
    return fd;
}

//  One slot, held by a LOCAL connection: the next job waits in the queue
//  and gets LOCAL when that connection ends; a queued job whose wrapper
//  goes away leaves the queue without an answer.
static void
test_node_compile_queued (void **state)
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
    char source [256];
    snprintf (source, sizeof source, "%s/x.c", dir);
    FILE *file = fopen (source, "w");
    assert_non_null (file);
    fputs ("int x;\n", file);
    fclose (file);

    const char sh_argv [] = "sh\0-c\0exit 0";
    uint8_t *body;
    control_field_t fields [CONTROL_MAX_FIELDS];
    int count;
    int holder = s_compile (node, dir, "/tmp", "/bin/sh", sh_argv, sizeof sh_argv,
                            &body, fields, &count);
    assert_true (count == 1 && control_field_is (&fields [0], CONTROL_LOCAL));
    free (body);

    const char argv [] = "gcc\0-c\0x.c";
    int queued = s_send_compile (dir, dir, "/usr/bin/gcc", argv, sizeof argv);
    char *value = NULL;
    for (int i = 0; i < 100; i++) {
        free (value);
        value = s_stat (node, cli, "queued");
        if (streq (value, "1"))
            break;
    }
    assert_string_equal (value, "1");
    free (value);
    //  The slot frees: the queued job is told LOCAL.
    close (holder);
    size_t size;
    body = s_reply (node, queued, &size);
    count = control_fields_parse (body, size, fields, CONTROL_MAX_FIELDS);
    assert_true (count == 1 && control_field_is (&fields [0], CONTROL_LOCAL));
    free (body);
    value = s_stat (node, cli, "jobs_queued");
    assert_string_equal (value, "1");
    free (value);
    value = s_stat (node, cli, "running_local");
    assert_string_equal (value, "1");
    free (value);

    //  Another job queues behind it, and its wrapper dies.
    int gone = s_send_compile (dir, dir, "/usr/bin/gcc", argv, sizeof argv);
    value = NULL;
    for (int i = 0; i < 100; i++) {
        free (value);
        value = s_stat (node, cli, "queued");
        if (streq (value, "1"))
            break;
    }
    assert_string_equal (value, "1");
    free (value);
    close (gone);
    node_run_for (node, 30);
    value = s_stat (node, cli, "queued");
    assert_string_equal (value, "0");
    free (value);
    value = s_stat (node, cli, "jobs_open");
    assert_string_equal (value, "0");
    free (value);
    close (queued);
    node_run_for (node, 30);
    value = s_stat (node, cli, "jobs_local");
    assert_string_equal (value, "2");
    free (value);
    value = s_stat (node, cli, "running_local");
    assert_string_equal (value, "0");
    free (value);
    value = s_stat (node, cli, "fallbacks");
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
        cmocka_unit_test (test_node_compile_queued),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
