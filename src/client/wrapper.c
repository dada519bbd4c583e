//  wrapper: meshcc as a compiler (see wrapper.h). The local fast path is
//  resolve + classify + exec and nothing else; only a distributable job
//  creates a ZeroMQ context, and then a bare libzmq one: czmq's zsys layer
//  would install SIGINT/SIGTERM handlers (make's Ctrl-C must kill the
//  wrapper like it kills gcc) and an atexit hook, for no gain here.

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>
#include "meshcc/compile_args.h"
#include "meshcc/control.h"
#include "meshcc/datadir.h"
#include "meshcc/limits.h"
#include "meshcc/usage.h"
#include "meshcc/wrapper.h"

extern char **environ;

//  czmq's streq, without czmq's header (see above).
static inline bool
streq (const char *a, const char *b)
{
    return strcmp (a, b) == 0;
}

//  ------------------------------------------------------------------
//  Finding the real compiler

static bool
s_executable_file (const char *path, struct stat *st)
{
    return stat (path, st) == 0 && S_ISREG (st->st_mode) && access (path, X_OK) == 0;
}

int
wrapper_path_search (const char *name, const char *path_env, const char *skip_dir,
                     wrapper_is_self_fn *is_self, void *arg, char *out, size_t out_size)
{
    struct stat skip;
    bool have_skip = skip_dir && stat (skip_dir, &skip) == 0;
    const char *entry = path_env? path_env: "";
    while (true) {
        const char *end = strchrnul (entry, ':');
        int length = (int) (end - entry);
        const char *dir = length? entry: ".";
        if (!length)
            length = 1;
        char candidate [PATH_MAX];
        int size = snprintf (candidate, sizeof candidate, "%.*s/%s", length, dir, name);
        struct stat st;
        if (size > 0 && (size_t) size < sizeof candidate && s_executable_file (candidate, &st)) {
            bool skipped = false;
            if (have_skip) {
                char directory [PATH_MAX];
                snprintf (directory, sizeof directory, "%.*s", length, dir);
                struct stat dst;
                skipped = stat (directory, &dst) == 0
                       && dst.st_dev == skip.st_dev && dst.st_ino == skip.st_ino;
            }
            if (!skipped && !(is_self && is_self (candidate, arg))) {
                if ((size_t) size >= out_size)
                    return -1;
                memcpy (out, candidate, size + 1);
                return 0;
            }
        }
        if (*end == 0)
            return -1;
        entry = end + 1;
    }
}

bool
wrapper_is_self (const char *candidate, void *arg)
{
    (void) arg;
    //  Resolved once per process: the wrapper calls this a few times at most.
    static bool known = false;
    static struct stat self_st;
    static char self_path [PATH_MAX];
    if (!known) {
        if (stat ("/proc/self/exe", &self_st))
            memset (&self_st, 0, sizeof self_st);
        if (!realpath ("/proc/self/exe", self_path))
            self_path [0] = 0;
        known = true;
    }
    struct stat st;
    if (stat (candidate, &st) == 0 && self_st.st_ino
    &&  st.st_dev == self_st.st_dev && st.st_ino == self_st.st_ino)
        return true;
    char resolved [PATH_MAX];
    if (!realpath (candidate, resolved))
        return false;
    if (self_path [0] && streq (resolved, self_path))
        return true;
    const char *slash = strrchr (resolved, '/');
    return streq (slash? slash + 1: resolved, "meshcc");
}

int
wrapper_resolve_compiler (const char *name, const char *skip_dir,
                          char *out, size_t out_size, char *err, size_t err_size)
{
    if (strchr (name, '/')) {
        char absolute [PATH_MAX];
        if (name [0] == '/')
            snprintf (absolute, sizeof absolute, "%s", name);
        else {
            char cwd [PATH_MAX];
            if (!getcwd (cwd, sizeof cwd)) {
                snprintf (err, err_size, "cannot find the current directory: %s",
                          strerror (errno));
                return -1;
            }
            if ((size_t) snprintf (absolute, sizeof absolute, "%s/%s", cwd, name)
                >= sizeof absolute) {
                snprintf (err, err_size, "compiler path too long: %s", name);
                return -1;
            }
        }
        struct stat st;
        errno = 0;
        if (!s_executable_file (absolute, &st)) {
            snprintf (err, err_size, "cannot run the compiler %s: %s", name,
                      errno? strerror (errno): "not an executable file");
            return -1;
        }
        if (wrapper_is_self (absolute, NULL)) {
            snprintf (err, err_size, "%s is meshcc itself, not a compiler: name the real "
                      "compiler (e.g. 'meshcc gcc' or 'meshcc /usr/bin/gcc')", name);
            return -1;
        }
        if (strlen (absolute) >= out_size) {
            snprintf (err, err_size, "compiler path too long: %s", name);
            return -1;
        }
        strcpy (out, absolute);
        return 0;
    }
    if (wrapper_path_search (name, getenv ("PATH"), skip_dir, wrapper_is_self, NULL,
                             out, out_size)) {
        snprintf (err, err_size, "cannot find the real '%s' on PATH (only meshcc itself "
                  "answers to that name there): install it or fix PATH", name);
        return -1;
    }
    return 0;
}

//  ------------------------------------------------------------------
//  Packing string vectors (control.h: NUL-terminated, back to back)

char *
wrapper_pack_strings (char *const strings [], size_t *size_p)
{
    size_t size = 0;
    for (int i = 0; strings [i]; i++)
        size += strlen (strings [i]) + 1;
    char *buffer = (char *) malloc (size? size: 1);
    if (!buffer)
        abort ();
    char *at = buffer;
    for (int i = 0; strings [i]; i++) {
        size_t length = strlen (strings [i]) + 1;
        memcpy (at, strings [i], length);
        at += length;
    }
    *size_p = size;
    return buffer;
}

char **
wrapper_unpack_strings (const char *data, size_t size)
{
    if (size && data [size - 1] != 0)
        return NULL;
    size_t count = 0;
    for (size_t i = 0; i < size; i++)
        if (data [i] == 0)
            count++;
    char **strings = (char **) calloc (count + 1, sizeof (char *));
    if (!strings)
        abort ();
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        strings [i] = strdup (data + at);
        if (!strings [i])
            abort ();
        at += strlen (data + at) + 1;
    }
    return strings;
}

void
wrapper_strings_free (char ***strings_p)
{
    if (*strings_p) {
        for (char **s = *strings_p; *s; s++)
            free (*s);
        free (*strings_p);
        *strings_p = NULL;
    }
}

//  ------------------------------------------------------------------
//  One warning per build

void
wrapper_group_stamp (pid_t pgid, char *out, size_t out_size)
{
    snprintf (out, out_size, "0");
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/stat", (long) pgid);
    FILE *file = fopen (path, "re");
    if (!file)
        return;
    char line [1024];
    size_t size = fread (line, 1, sizeof line - 1, file);
    fclose (file);
    line [size] = 0;
    //  Field 22 (starttime) counts from the one after "comm", whose closing
    //  parenthesis is the last one on the line (comm may hold spaces).
    char *at = strrchr (line, ')');
    if (!at)
        return;
    at++;
    for (int field = 2; field < 22 && at; field++)
        at = strchr (at + 1, ' ');
    if (!at)
        return;
    unsigned long long start = strtoull (at + 1, NULL, 10);
    snprintf (out, out_size, "%llu", start);
}

bool
wrapper_warn_claim (const char *tmpdir, uid_t uid, pid_t pgid, const char *stamp)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/meshcc-%lu-warned-%ld-%s",
              tmpdir && *tmpdir? tmpdir: "/tmp", (unsigned long) uid, (long) pgid, stamp);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close (fd);
        return true;
    }
    return errno != EEXIST;
}

//  ------------------------------------------------------------------
//  Running the job

static bool
s_env_flag (const char *name)
{
    const char *value = getenv (name);
    return value && *value && !streq (value, "0");
}

//  The local compile: the real compiler with the user's arguments. argv[0]
//  becomes the compiler's path as found on PATH (like ccache does): gcc
//  looks up a bare argv[0] on PATH to find its own installation, and that
//  would find the masquerade link, not gcc. The basename is unchanged, so
//  messages still say "gcc:".
static noreturn void
s_exec_local (const char *compiler, char *argv [])
{
    argv [0] = (char *) compiler;
    execv (compiler, argv);
    die ("cannot run %s: %s", compiler, strerror (errno));
}

static noreturn void
s_fallback (const char *reason, const char *compiler, char *argv [])
{
    if (s_env_flag ("MESHCC_STRICT")) {
        error ("%s (MESHCC_STRICT is set: not compiling locally)", reason);
        exit (1);
    }
    if (!s_env_flag ("MESHCC_QUIET")) {
        pid_t pgid = getpgrp ();
        char stamp [32];
        wrapper_group_stamp (pgid, stamp, sizeof stamp);
        if (wrapper_warn_claim (getenv ("TMPDIR"), getuid (), pgid, stamp))
            warning ("%s; compiling locally", reason);
    }
    s_exec_local (compiler, argv);
}

static int
s_write_all (int fd, const void *data, size_t size)
{
    const char *at = (const char *) data;
    while (size) {
        ssize_t written = write (fd, at, size);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        at += written;
        size -= (size_t) written;
    }
    return 0;
}

//  The reply, frame by frame.
enum { REPLY_MAX_FRAMES = 8 };
typedef struct {
    int        count;
    zmq_msg_t  frames [REPLY_MAX_FRAMES];
} s_reply_t;

static void
s_reply_close (s_reply_t *reply)
{
    for (int i = 0; i < reply->count; i++)
        zmq_msg_close (&reply->frames [i]);
    reply->count = 0;
}

//  Receives every frame of one reply; -1 with a reason when it fails or
//  has too many or too large frames.
static int
s_reply_recv (void *sock, s_reply_t *reply, char *reason, size_t reason_size)
{
    reply->count = 0;
    bool more = true;
    bool malformed = false;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, sock, 0) < 0) {
            zmq_msg_close (&frame);
            s_reply_close (reply);
            snprintf (reason, reason_size, "lost the node's reply: %s",
                      zmq_strerror (zmq_errno ()));
            return -1;
        }
        more = zmq_msg_more (&frame);
        if (reply->count < REPLY_MAX_FRAMES && zmq_msg_size (&frame) <= WRAPPER_MAX_REPLY_FRAME)
            reply->frames [reply->count++] = frame;
        else {
            malformed = true;
            zmq_msg_close (&frame);
        }
    }
    if (malformed) {
        s_reply_close (reply);
        snprintf (reason, reason_size, "the node sent a malformed reply");
        return -1;
    }
    return 0;
}

static bool
s_frame_is (zmq_msg_t *frame, const char *text)
{
    size_t length = strlen (text);
    return zmq_msg_size (frame) == length && memcmp (zmq_msg_data (frame), text, length) == 0;
}

//  A frame as a bounded C string.
static void
s_frame_text (zmq_msg_t *frame, char *out, size_t out_size)
{
    size_t size = zmq_msg_size (frame);
    if (size >= out_size)
        size = out_size - 1;
    memcpy (out, zmq_msg_data (frame), size);
    out [size] = 0;
    for (char *c = out; *c; c++)
        if ((unsigned char) *c < 0x20)
            *c = ' ';
}

//  The exit status frame: decimal 0..255, nothing else.
static int
s_parse_status (zmq_msg_t *frame)
{
    size_t size = zmq_msg_size (frame);
    const char *data = (const char *) zmq_msg_data (frame);
    if (size == 0 || size > 3)
        return -1;
    int status = 0;
    for (size_t i = 0; i < size; i++) {
        if (data [i] < '0' || data [i] > '9')
            return -1;
        status = status * 10 + (data [i] - '0');
    }
    return status <= 255? status: -1;
}

static bool
s_same_socket (const char *path, const struct stat *before)
{
    struct stat now;
    return stat (path, &now) == 0 && now.st_dev == before->st_dev && now.st_ino == before->st_ino;
}

//  Sends the job to the node and, on RESULT, replays it and exits. Returns
//  only when the mesh failed, with the reason; the caller compiles locally.
static void
s_compile_on_mesh (const char *compiler, const char *cwd, char *argv [], const char *source,
                   char *reason, size_t reason_size)
{
    char *dir = datadir_resolve (NULL);
    if (!dir) {
        snprintf (reason, reason_size, "cannot find meshcc's data directory "
                  "(no $MESHCC_DIR or home directory)");
        return;
    }
    if (!datadir_locked (dir)) {
        snprintf (reason, reason_size, "no node is running for %s", dir);
        free (dir);
        return;
    }
    char *socket_path = datadir_path (dir, CONTROL_SOCKET_NAME);
    struct stat socket_st;
    if (stat (socket_path, &socket_st)) {
        snprintf (reason, reason_size, "the node of %s has no control socket", dir);
        free (socket_path);
        free (dir);
        return;
    }
    void *context = zmq_ctx_new ();
    void *sock = context? zmq_socket (context, ZMQ_REQ): NULL;
    if (!sock) {
        snprintf (reason, reason_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        goto done;
    }
    int zero = 0, one = 1, send_timeout = WRAPPER_SEND_TIMEOUT_MS;
    zmq_setsockopt (sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (sock, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt (sock, ZMQ_SNDTIMEO, &send_timeout, sizeof send_timeout);
    char endpoint [PATH_MAX + 8];
    snprintf (endpoint, sizeof endpoint, "ipc://%s", socket_path);
    if (zmq_connect (sock, endpoint)) {
        snprintf (reason, reason_size, "cannot connect to the node of %s: %s", dir,
                  zmq_strerror (zmq_errno ()));
        goto done;
    }
    //  umask() is the only way to read the mask: set it back at once.
    mode_t mask = umask (022);
    umask (mask);
    char umask_text [8];
    snprintf (umask_text, sizeof umask_text, "%03o", (unsigned) (mask & 0777));
    size_t argv_size, env_size;
    char *argv_packed = wrapper_pack_strings (argv, &argv_size);
    char *env_packed = wrapper_pack_strings (environ, &env_size);
    bool sent = zmq_send (sock, CONTROL_COMPILE, strlen (CONTROL_COMPILE), ZMQ_SNDMORE) >= 0
             && zmq_send (sock, cwd, strlen (cwd), ZMQ_SNDMORE) >= 0
             && zmq_send (sock, argv_packed, argv_size, ZMQ_SNDMORE) >= 0
             && zmq_send (sock, env_packed, env_size, ZMQ_SNDMORE) >= 0
             && zmq_send (sock, compiler, strlen (compiler), ZMQ_SNDMORE) >= 0
             && zmq_send (sock, umask_text, strlen (umask_text), 0) >= 0;
    int send_errno = zmq_errno ();
    free (argv_packed);
    free (env_packed);
    if (!sent) {
        snprintf (reason, reason_size, "cannot send the job to the node of %s: %s", dir,
                  send_errno == EAGAIN? "it does not accept connections": zmq_strerror (send_errno));
        goto done;
    }
    //  The job may queue for a long time when the mesh is busy, so there is
    //  no deadline; only a node that went away ends the wait.
    while (true) {
        zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, WRAPPER_POLL_MS);
        if (rc < 0 && zmq_errno () == EINTR)
            continue;
        if (rc < 0) {
            snprintf (reason, reason_size, "lost the node of %s: %s", dir,
                      zmq_strerror (zmq_errno ()));
            goto done;
        }
        if (rc > 0)
            break;
        if (!datadir_locked (dir) || !s_same_socket (socket_path, &socket_st)) {
            snprintf (reason, reason_size, "the node of %s stopped while compiling", dir);
            goto done;
        }
    }
    s_reply_t reply;
    if (s_reply_recv (sock, &reply, reason, reason_size))
        goto done;
    if (reply.count >= 4 && s_frame_is (&reply.frames [0], CONTROL_RESULT)) {
        int status = s_parse_status (&reply.frames [1]);
        if (status >= 0) {
            //  From here on, the job is answered: whatever happens while
            //  replaying, a local compile would be a second answer.
            zmq_msg_t *out = &reply.frames [2], *err = &reply.frames [3];
            int write_failed = s_write_all (STDOUT_FILENO, zmq_msg_data (out), zmq_msg_size (out));
            s_write_all (STDERR_FILENO, zmq_msg_data (err), zmq_msg_size (err));
            if (s_env_flag ("MESHCC_VERBOSE")) {
                char where [MESHCC_NAME_MAX + 1] = "?";
                if (reply.count >= 5)
                    s_frame_text (&reply.frames [4], where, sizeof where);
                fprintf (stderr, "meshcc: %s: compiled on %s (status %d)\n",
                         source, where, status);
            }
            s_reply_close (&reply);
            zmq_close (sock);
            zmq_ctx_term (context);
            free (socket_path);
            free (dir);
            if (write_failed && status == 0)
                die ("cannot write the compiler's output: %s", strerror (errno));
            exit (status);
        }
    }
    if (reply.count >= 2 && s_frame_is (&reply.frames [0], CONTROL_FALLBACK)) {
        char why [256];
        s_frame_text (&reply.frames [1], why, sizeof why);
        snprintf (reason, reason_size, "%s", *why? why: "the mesh could not compile");
    }
    else
    if (reply.count >= 2 && s_frame_is (&reply.frames [0], CONTROL_ERROR)) {
        char why [256];
        s_frame_text (&reply.frames [1], why, sizeof why);
        snprintf (reason, reason_size, "the node refused the job: %s", why);
    }
    else
        snprintf (reason, reason_size, "the node of %s sent a malformed reply", dir);
    s_reply_close (&reply);
done:
    if (sock)
        zmq_close (sock);
    if (context)
        zmq_ctx_term (context);
    free (socket_path);
    free (dir);
}

void
wrapper_main (int argc, char *argv [], bool masquerade)
{
    char compiler [PATH_MAX], err [PATH_MAX + 256];
    //  Through a link, the compiler is the next one of the link's name on
    //  PATH; when argv[0] names the link's directory, that directory is
    //  skipped outright (it might hold copies rather than links).
    const char *name = argv [0], *skip_dir = NULL;
    char link_dir [PATH_MAX];
    const char *slash = strrchr (argv [0], '/');
    if (masquerade && slash) {
        name = slash + 1;
        if (slash == argv [0])
            skip_dir = "/";
        else
        if ((size_t) (slash - argv [0]) < sizeof link_dir) {
            snprintf (link_dir, sizeof link_dir, "%.*s", (int) (slash - argv [0]), argv [0]);
            skip_dir = link_dir;
        }
    }
    if (wrapper_resolve_compiler (name, skip_dir, compiler, sizeof compiler, err, sizeof err))
        die ("%s", err);
    char cwd [PATH_MAX];
    if (!getcwd (cwd, sizeof cwd))
        s_exec_local (compiler, argv);      //  no job without a directory to name
    compile_args_t *args = compile_args_parse (argc, argv, cwd);
    if (!args || !args->distributable)
        s_exec_local (compiler, argv);
    char source [PATH_MAX];
    snprintf (source, sizeof source, "%s", args->source? args->source: "?");
    compile_args_destroy (&args);

    char reason [PATH_MAX + 512];
    s_compile_on_mesh (compiler, cwd, argv, source, reason, sizeof reason);
    s_fallback (reason, compiler, argv);
}

//  ------------------------------------------------------------------

static bool
s_test_is_self (const char *candidate, void *arg)
{
    return strstr (candidate, (const char *) arg) != NULL;
}

void
wrapper_test (bool verbose)
{
    if (verbose)
        printf (" * wrapper: ");
    char out [PATH_MAX];
    //  /bin/sh exists everywhere; a predicate can veto candidates.
    assert (wrapper_path_search ("sh", "/nonexistent:/bin", NULL, NULL, NULL, out, sizeof out) == 0);
    assert (streq (out, "/bin/sh"));
    assert (wrapper_path_search ("sh", "/bin", NULL, s_test_is_self, "/bin/", out, sizeof out) == -1);
    assert (wrapper_path_search ("sh", "/bin", "/bin", NULL, NULL, out, sizeof out) == -1);

    char *strings [] = { "gcc", "", "-c", NULL };
    size_t size;
    char *packed = wrapper_pack_strings (strings, &size);
    assert (size == 8 && memcmp (packed, "gcc\0\0-c\0", 8) == 0);
    char **back = wrapper_unpack_strings (packed, size);
    assert (back && streq (back [0], "gcc") && streq (back [1], "") && streq (back [2], "-c")
            && back [3] == NULL);
    wrapper_strings_free (&back);
    assert (back == NULL);
    assert (wrapper_unpack_strings ("abc", 3) == NULL);
    free (packed);
    if (verbose)
        printf ("OK\n");
}
