//  meshccd: the node daemon. Reads its options and config files, takes
//  the data directory's lock, daemonizes (unless --foreground) and runs
//  the node until SIGTERM/SIGINT. Configuration errors are reported here,
//  git-style, before anything starts; once the node runs it only logs.

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "meshcc/datadir.h"
#include "meshcc/limits.h"
#include "meshcc/meshkey.h"
#include "meshcc/node.h"
#include "meshcc/node_config.h"
#include "meshcc/node_log.h"
#include "meshcc/usage.h"
#include "meshcc/version.h"

#define USAGE_LINE "meshccd [--dir DIR] [--listen IP:PORT] [--join IP:PORT]... [options] " \
                   "(meshccd --help lists them)"

static const char *s_help =
"usage: meshccd [options]\n"
"\n"
"Runs a meshcc node: joins the mesh, gossips membership and load, and\n"
"answers 'meshcc' on this machine.\n"
"\n"
"  --dir DIR             data directory (default: $MESHCC_DIR, else ~/.meshcc)\n"
"  --listen IP:PORT      mesh address to bind (default 0.0.0.0:7370 with a mesh\n"
"                        key, 127.0.0.1:7370 without)\n"
"  --advertise IP:PORT   address other nodes use to reach this one (default: the\n"
"                        listen address, or the first non-loopback IPv4 address)\n"
"  --join IP:PORT        a node to contact first (repeatable)\n"
"  --slots N             compile slots to offer (default: online CPUs); 0 compiles\n"
"                        nothing here and sends every job to peers\n"
"  --cache-size SIZE     bound of the blob store in DIR/cache, e.g. 2G (default 2G)\n"
"  --toolchain-cache-size SIZE\n"
"                        bound of the toolchains in DIR/toolchains (archives and\n"
"                        unpacked trees; least recently used out, never one a job\n"
"                        needs now), e.g. 2G (default 4G)\n"
"  --name NAME           node name (default: host name)\n"
"  --mesh-key FILE       the mesh's key (default: DIR/mesh.key if present);\n"
"                        make one with 'meshcc keygen FILE'\n"
"  --insecure            without a key, allow listening beyond loopback (plain TCP,\n"
"                        anyone on the network can join)\n"
"  --discovery on|off    UDP beacons to find nodes on the subnet (default: on,\n"
"                        off when listening on loopback)\n"
"  --beacon-port N       UDP port of the beacons (default 7371)\n"
"  --config FILE         settings file: key = \"value\" lines with the keys above\n"
"                        (default: DIR/meshccd.cfg if present; options win)\n"
"  --log-level LEVEL     error, warn, info (default) or debug\n"
"  --foreground          stay in the foreground and log to stderr too\n"
"  --help, --version\n";

//  Long options that take the same names as config file keys; the
//  others are handled here.
enum { OPT_CONFIG = 256, OPT_HELP, OPT_VERSION, OPT_TOOLCHAIN_CACHE };

static struct option s_options [] = {
    { "dir",         required_argument, NULL, 'd' },
    { "listen",      required_argument, NULL, 'l' },
    { "advertise",   required_argument, NULL, 'a' },
    { "join",        required_argument, NULL, 'j' },
    { "slots",       required_argument, NULL, 's' },
    { "name",        required_argument, NULL, 'n' },
    { "mesh-key",    required_argument, NULL, 'k' },
    { "insecure",    no_argument,       NULL, 'i' },
    { "discovery",   required_argument, NULL, 'D' },
    { "beacon-port", required_argument, NULL, 'b' },
    { "log-level",   required_argument, NULL, 'L' },
    { "foreground",  no_argument,       NULL, 'f' },
    { "cache-size",  required_argument, NULL, 'C' },
    { "toolchain-cache-size", required_argument, NULL, OPT_TOOLCHAIN_CACHE },
    { "config",      required_argument, NULL, OPT_CONFIG },
    { "help",        no_argument,       NULL, OPT_HELP },
    { "version",     no_argument,       NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 }
};

static void
s_parse_args (node_config_t *config, int argc, char *argv [])
{
    char err [512];
    opterr = 0;             //  we word the messages ourselves
    int index = 0;
    while (true) {
        int previous = optind;
        int c = getopt_long (argc, argv, ":", s_options, &index);
        if (c == -1)
            break;
        if (c == '?') {
            error ("unknown option '%s'", argv [previous]);
            usage_die (USAGE_LINE);
        }
        if (c == ':') {
            error ("option '%s' needs a value", argv [previous]);
            usage_die (USAGE_LINE);
        }
        if (c == OPT_HELP) {
            fputs (s_help, stdout);
            exit (0);
        }
        if (c == OPT_VERSION) {
            printf ("meshccd %s (protocol %d)\n", MESHCC_VERSION, MESHCC_PROTO_VERSION);
            exit (0);
        }
        if (c == OPT_CONFIG) {
            free (config->config_file);
            config->config_file = strdup (optarg);
            continue;
        }
        if (node_config_set (config, s_options [index].name, optarg, NODE_CONFIG_CMDLINE,
                             err, sizeof err)) {
            error ("--%s", err);
            usage_die (USAGE_LINE);
        }
    }
    if (optind < argc) {
        error ("unexpected argument '%s' (meshccd takes only options)", argv [optind]);
        usage_die (USAGE_LINE);
    }
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0;
}

//  Reads a whole small file; returns a new buffer or NULL.
static char *
s_slurp (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *data = (char *) malloc (65536);
    size_t size = fread (data, 1, 65535, file);
    fclose (file);
    *size_p = size;
    return data;
}

//  With --mesh-key naming a file outside the data directory, keep a copy
//  as DIR/mesh.key (mode 0600), so the directory alone holds everything
//  a restart needs. Written beside and renamed, so a crash never leaves
//  half a key.
static void
s_keep_key (const char *source, const char *dir)
{
    char *target = datadir_path (dir, DATADIR_KEY_NAME);
    struct stat a, b;
    if (stat (target, &b) == 0 && stat (source, &a) == 0
    &&  a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        free (target);
        return;
    }
    size_t size = 0, old_size = 0;
    char *data = s_slurp (source, &size);
    char *old = s_slurp (target, &old_size);
    bool same = old && data && old_size == size && memcmp (old, data, size) == 0;
    free (old);
    if (data && !same) {
        char *temp = datadir_path (dir, DATADIR_KEY_NAME ".new");
        unlink (temp);
        int fd = open (temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write (fd, data, size) != (ssize_t) size || fsync (fd)
        ||  close (fd) || rename (temp, target)) {
            log_warn ("cannot copy the mesh key to %s: %s", target, strerror (errno));
            unlink (temp);
        }
        else
            log_info ("mesh key %s copied to %s", source, target);
        free (temp);
    }
    free (data);
    free (target);
}

//  Forks the node into the background. The parent waits on a pipe until
//  the child has bound its sockets: the child's stderr is that pipe until
//  then, so any die() in the child reaches the user through the parent,
//  which exits with the child's status. The child says READY, then points
//  stderr at its log file.
static int s_ready_fd = -1;

static void
s_daemonize (const char *dir)
{
    int fds [2];
    if (pipe (fds))
        die ("cannot create a pipe: %s", strerror (errno));
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0)
        die ("cannot fork: %s", strerror (errno));
    if (pid > 0) {
        close (fds [1]);
        char buffer [4096];
        size_t size = 0;
        ssize_t got;
        while (size < sizeof buffer - 1
           &&  (got = read (fds [0], buffer + size, sizeof buffer - 1 - size)) != 0) {
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                break;
            size += (size_t) got;
        }
        buffer [size] = 0;
        //  The parent leaves with _exit: everything it holds belongs to the
        //  child now, and exit handlers (czmq's, the sanitizers') are the
        //  child's business.
        if (strstr (buffer, "READY\n")) {
            printf ("meshccd: started, pid %ld, data directory %s\n", (long) pid, dir);
            fflush (stdout);
            _exit (0);
        }
        int status = 0;
        waitpid (pid, &status, 0);
        if (size)
            fputs (buffer, stderr);
        else
            fprintf (stderr, "meshccd: fatal: the node exited during start-up; see %s/%s\n",
                     dir, DATADIR_LOG_NAME);
        fflush (stderr);
        _exit (WIFEXITED (status) && WEXITSTATUS (status)? WEXITSTATUS (status): 128);
    }
    close (fds [0]);
    setsid ();
    int null = open ("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2 (null, STDIN_FILENO);
        dup2 (null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close (null);
    }
    dup2 (fds [1], STDERR_FILENO);
    close (fds [1]);
    s_ready_fd = STDERR_FILENO;
    if (chdir ("/")) {
        //  The data directory is absolute; nothing depends on the cwd.
    }
}

static void
s_ready (void)
{
    if (s_ready_fd < 0)
        return;
    if (write (s_ready_fd, "READY\n", 6) != 6) {
        //  The parent is gone; nothing to tell.
    }
    int log_fd = node_log_fd ();
    if (log_fd >= 0)
        dup2 (log_fd, STDERR_FILENO);
    else {
        int null = open ("/dev/null", O_WRONLY);
        dup2 (null, STDERR_FILENO);
        close (null);
    }
    s_ready_fd = -1;
}

int
main (int argc, char *argv [])
{
    usage_set_program ("meshccd");
    //  Everything the node writes (database, log, sockets) is its own.
    umask (077);
    node_config_t *config = node_config_new ();
    char err [1024], note [512];
    s_parse_args (config, argc, argv);

    //  An explicit --config is read first: it may name the directory.
    if (config->config_file
    &&  node_config_load (config, config->config_file, true, err, sizeof err))
        die ("%s", err);
    char *dir = datadir_resolve (config->dir);
    if (!dir)
        die ("cannot find a data directory: no --dir, $MESHCC_DIR or home directory");
    free (config->dir);
    config->dir = dir;
    if (datadir_create (dir))
        die ("cannot create data directory %s: %s", dir, strerror (errno));
    if (!config->config_file) {
        char *path = datadir_path (dir, "meshccd.cfg");
        if (s_exists (path) && node_config_load (config, path, false, err, sizeof err))
            die ("%s", err);
        free (path);
    }

    char *key_path = config->mesh_key? strdup (config->mesh_key)
                                     : datadir_path (dir, DATADIR_KEY_NAME);
    zcert_t *cert = NULL;
    if (config->mesh_key || s_exists (key_path)) {
        cert = meshkey_load (key_path, err, sizeof err);
        if (!cert)
            die ("%s", err);
    }
    free (key_path);
    //  The daemon changes to / before it copies the key into the data
    //  directory, so a relative --mesh-key must be made absolute now.
    if (config->mesh_key && config->mesh_key [0] != '/') {
        char *absolute = realpath (config->mesh_key, NULL);
        if (absolute) {
            free (config->mesh_key);
            config->mesh_key = absolute;
        }
    }
    if (node_config_finish (config, cert != NULL, err, sizeof err, note, sizeof note))
        die ("%s", err);

    pid_t holder = 0;
    int lock = datadir_lock (dir, &holder);
    if (lock < 0 && holder)
        die ("a node is already running for %s (pid %ld); stop it with 'kill %ld' first",
             dir, (long) holder, (long) holder);
    if (lock < 0)
        die ("cannot lock data directory %s: %s", dir, strerror (errno));

    if (!config->foreground) {
        s_daemonize (dir);
        //  The lock survived the fork (an OFD lock); record the new pid.
        if (datadir_lock_set_pid (lock))
            die ("cannot write the pid to the lock file in %s: %s", dir, strerror (errno));
    }
    char *log_path = datadir_path (dir, DATADIR_LOG_NAME);
    if (node_log_open (log_path, config->log_level, config->foreground))
        die ("cannot open log file %s: %s", log_path, strerror (errno));
    free (log_path);

    log_info ("meshccd %s starting, data directory %s, pid %ld", MESHCC_VERSION, dir,
              (long) getpid ());
    if (*note)
        log_warn ("%s", note);
    if (config->mesh_key && cert)
        s_keep_key (config->mesh_key, dir);
    if (config->security == NODE_SECURITY_LOOPBACK)
        log_info ("no mesh key: listening on loopback only (%s); to join other machines, "
                  "make a key with 'meshcc keygen %s/%s' and copy it to every node",
                  config->listen, dir, DATADIR_KEY_NAME);
    else
    if (config->security == NODE_SECURITY_INSECURE)
        log_warn ("INSECURE: no mesh key and --insecure: listening on %s with plain TCP; "
                  "anyone who can reach this port can join the mesh and read its traffic",
                  config->listen);

    node_t *node = node_new (config, &cert, err, sizeof err);
    if (!node) {
        log_error ("%s", err);
        die ("%s", err);
    }
    s_ready ();
    node_run (node);
    node_destroy (&node);
    log_info ("stopped");
    node_log_close ();
    node_config_destroy (&config);
    close (lock);
    return 0;
}
