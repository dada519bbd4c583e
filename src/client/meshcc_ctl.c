//  meshcc-ctl: the commands of `meshcc` that need czmq (members, status,
//  stats, keygen, help). `meshcc` itself is the compiler wrapper and links
//  only libc (meshcc.c); for anything that is not a compile it execs this
//  program with its own arguments, so users only ever type `meshcc`. It
//  talks to the node of its data directory (control.h) and manages mesh
//  keys: exits 0 on success, 1 when no node is running, 128 on other
//  failures (die), 129 on bad usage.

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "meshcc/control.h"
#include "meshcc/control_client.h"
#include "meshcc/datadir.h"
#include "meshcc/limits.h"
#include "meshcc/meshkey.h"
#include "meshcc/usage.h"
#include "meshcc/version.h"

#define USAGE_LINE "meshcc [--dir DIR] <keygen FILE | members [--json] | status [--json] | " \
                   "stats [--json] | toolchains [--json] | help>\n       meshcc COMPILER ARGS..."

static const char *s_help =
"usage: meshcc [--dir DIR] COMMAND [options]\n"
"       meshcc COMPILER ARGS...\n"
"\n"
"Compiling: 'meshcc gcc -c foo.c', 'meshcc /usr/bin/cc ...' (as a launcher:\n"
"CMAKE_C_COMPILER_LAUNCHER=meshcc, CCACHE_PREFIX=meshcc), or links named gcc,\n"
"cc, g++, c++, clang, clang++ to meshcc in a directory first on PATH (make\n"
"install puts them in PREFIX/lib/meshcc/bin). Jobs go to the node of\n"
"$MESHCC_DIR (else ~/.meshcc); without one they compile locally.\n"
"MESHCC_QUIET=1 silences the fallback warning, MESHCC_STRICT=1 makes a mesh\n"
"failure an error, MESHCC_VERBOSE=1 says where each job ran.\n"
"\n"
"Commands:\n"
"  members [--json]   the nodes this machine's node knows, with their state and load\n"
"  status [--json]    this machine's node: identity, security, counters\n"
"  stats [--json]     compile counters: jobs local/sent/executed, fallbacks, transfers, times\n"
"  toolchains [--json]  packaged and fetched compilers: hash, compiler, version, target,\n"
"                     size, holders, last used\n"
"  keygen FILE        make a new mesh key (copy it to every node as DIR/mesh.key)\n"
"  help               this text\n"
"\n"
"  --dir DIR          the node's data directory (default: $MESHCC_DIR, else ~/.meshcc)\n"
"  --version          print the version\n";

static void
s_no_node (const char *dir)
{
    fprintf (stderr, "meshcc: no node is running for %s: start one with 'meshccd --dir %s' "
             "(or 'make run')\n", dir, dir);
    exit (1);
}

//  Parses the options after a query command: only --json.
static bool
s_json_option (int argc, char *argv [], int first)
{
    bool json = false;
    for (int i = first; i < argc; i++) {
        if (streq (argv [i], "--json"))
            json = true;
        else {
            error ("%s: unknown %s '%s'", argv [first - 1],
                   argv [i][0] == '-'? "option": "argument", argv [i]);
            usage_die (USAGE_LINE);
        }
    }
    return json;
}

static int
s_query (const char *dir, const char *command, bool json)
{
    zlist_t *records = NULL;
    char err [512];
    control_client_result_t result = control_client_request (dir, command, CONTROL_TIMEOUT_MS,
                                                             &records, err, sizeof err);
    if (result == CONTROL_CLIENT_NO_NODE)
        s_no_node (dir);
    if (result != CONTROL_CLIENT_OK)
        die ("%s", err);
    if (streq (command, CONTROL_MEMBERS))
        control_client_print_members (stdout, records, json);
    else
    if (streq (command, CONTROL_TOOLCHAINS))
        control_client_print_toolchains (stdout, records, json);
    else {
        zhash_t *record = (zhash_t *) zlist_first (records);
        if (!record)
            die ("the node sent an empty %s", streq (command, CONTROL_STATS)? "stats": "status");
        if (streq (command, CONTROL_STATS))
            control_client_print_stats (stdout, record, json);
        else
            control_client_print_status (stdout, record, json);
    }
    control_client_records_destroy (&records);
    return 0;
}

int
main (int argc, char *argv [])
{
    //  Users call this as `meshcc`: messages say so.
    usage_set_program ("meshcc");
    const char *dir_option = NULL;
    int arg = 1;
    //  Global options come before the command, like git's.
    for (; arg < argc && argv [arg][0] == '-'; arg++) {
        if (streq (argv [arg], "--dir")) {
            if (arg + 1 >= argc) {
                error ("option '--dir' needs a value");
                usage_die (USAGE_LINE);
            }
            dir_option = argv [++arg];
        }
        else
        if (strncmp (argv [arg], "--dir=", 6) == 0)
            dir_option = argv [arg] + 6;
        else
        if (streq (argv [arg], "--version")) {
            printf ("meshcc %s (protocol %d)\n", MESHCC_VERSION, MESHCC_PROTO_VERSION);
            return 0;
        }
        else
        if (streq (argv [arg], "--help") || streq (argv [arg], "-h")) {
            fputs (s_help, stdout);
            return 0;
        }
        else {
            error ("unknown option '%s'", argv [arg]);
            usage_die (USAGE_LINE);
        }
    }
    if (arg >= argc) {
        error ("no command given");
        usage_die (USAGE_LINE);
    }
    const char *command = argv [arg++];
    if (streq (command, "help")) {
        fputs (s_help, stdout);
        return 0;
    }
    if (streq (command, "keygen")) {
        if (arg + 1 != argc || argv [arg][0] == '-') {
            error ("keygen takes exactly one argument, the key file to create");
            usage_die (USAGE_LINE);
        }
        char err [512];
        if (meshkey_generate (argv [arg], err, sizeof err))
            die ("%s", err);
        printf ("meshcc: wrote a new mesh key to %s; give every node a copy "
                "(as DIR/mesh.key, or with 'meshccd --mesh-key FILE')\n", argv [arg]);
        return 0;
    }
    if (streq (command, "members") || streq (command, "status") || streq (command, "stats")
    ||  streq (command, "toolchains")) {
        bool json = s_json_option (argc, argv, arg);
        char *dir = datadir_resolve (dir_option);
        if (!dir)
            die ("cannot find a data directory: no --dir, $MESHCC_DIR or home directory");
        int rc = s_query (dir, streq (command, "members")? CONTROL_MEMBERS:
                               streq (command, "stats")? CONTROL_STATS:
                               streq (command, "toolchains")? CONTROL_TOOLCHAINS: CONTROL_STATUS,
                          json);
        free (dir);
        return rc;
    }
    error ("unknown command '%s'", command);
    usage_die (USAGE_LINE);
}
