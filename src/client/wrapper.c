//  wrapper: meshcc as a compiler (see wrapper.h). The local fast path is
//  resolve + classify + exec and nothing else; a distributable job opens
//  one Unix socket to the node (control.h). The wrapper links only libc:
//  czmq's zsys layer would install SIGINT/SIGTERM handlers (make's Ctrl-C
//  must kill the wrapper like it kills gcc) and loading libczmq/libzmq
//  alone costs several times the 1 ms a local job may add.

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
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
    //  Field 22 (starttime) counts from the one after "comm" (field 2),
    //  whose closing parenthesis is the last one on the line (comm may hold
    //  spaces). `at` starts on the space before field 3 and each step moves
    //  it to the space before the next field.
    char *at = strrchr (line, ')');
    if (!at)
        return;
    at++;
    for (int field = 3; field < 22 && at; field++)
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

//  Writes a whole buffer to a blocking socket (SO_SNDTIMEO bounds it).
static int
s_send_all (int fd, const uint8_t *data, size_t size)
{
    while (size) {
        ssize_t sent = send (fd, data, size, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += sent;
        size -= (size_t) sent;
    }
    return 0;
}

//  Reads exactly `size` bytes. Returns 0, or -1 (errno 0 at end of file).
static int
s_recv_all (int fd, uint8_t *data, size_t size)
{
    while (size) {
        ssize_t got = recv (fd, data, size, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = 0;
            return -1;
        }
        data += got;
        size -= (size_t) got;
    }
    return 0;
}

//  A field as a bounded C string.
static void
s_field_text (const control_field_t *field, char *out, size_t out_size)
{
    size_t size = field->size;
    if (size >= out_size)
        size = out_size - 1;
    memcpy (out, field->data, size);
    out [size] = 0;
    for (char *c = out; *c; c++)
        if ((unsigned char) *c < 0x20)
            *c = ' ';
}

//  The exit status field: decimal 0..255, nothing else.
static int
s_parse_status (const control_field_t *field)
{
    if (field->size == 0 || field->size > 3)
        return -1;
    int status = 0;
    for (size_t i = 0; i < field->size; i++) {
        if (field->data [i] < '0' || field->data [i] > '9')
            return -1;
        status = status * 10 + (field->data [i] - '0');
    }
    return status <= 255? status: -1;
}

//  Connects to DIR/compile.sock. The socket stays open across exec (no
//  SOCK_CLOEXEC): on LOCAL the compiler holds it, and its end tells the
//  node the slot is free.
static int
s_connect (const char *dir, char *reason, size_t reason_size)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if ((size_t) snprintf (address.sun_path, sizeof address.sun_path, "%s/%s", dir,
                           COMPILE_SOCKET_NAME) >= sizeof address.sun_path) {
        snprintf (reason, reason_size, "the data directory path %s is too long for a socket", dir);
        return -1;
    }
    int fd = socket (AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf (reason, reason_size, "cannot create a socket: %s", strerror (errno));
        return -1;
    }
    struct timeval timeout = { WRAPPER_SEND_TIMEOUT_MS / 1000, (WRAPPER_SEND_TIMEOUT_MS % 1000) * 1000 };
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    while (connect (fd, (struct sockaddr *) &address, sizeof address)) {
        if (errno == EINTR)
            continue;
        int saved = errno;
        close (fd);
        //  No socket, or nobody listening on it: no node (or an old one).
        if (saved == ENOENT || saved == ECONNREFUSED)
            snprintf (reason, reason_size, "no node is running for %s", dir);
        else
            snprintf (reason, reason_size, "cannot connect to the node of %s: %s", dir,
                      strerror (saved));
        return -1;
    }
    return fd;
}

//  Sends the job to the node. On LOCAL, execs the compiler (the socket
//  stays open in it); on RESULT, replays it and exits. Returns only when
//  the mesh failed, with the reason; the caller compiles locally.
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
    int fd = s_connect (dir, reason, reason_size);
    if (fd < 0) {
        free (dir);
        return;
    }
    //  umask() is the only way to read the mask: set it back at once.
    mode_t mask = umask (022);
    umask (mask);
    char umask_text [8];
    snprintf (umask_text, sizeof umask_text, "%03o", (unsigned) (mask & 0777));
    size_t argv_size, env_size;
    char *argv_packed = wrapper_pack_strings (argv, &argv_size);
    char *env_packed = wrapper_pack_strings (environ, &env_size);
    const void *data [CONTROL_COMPILE_FIELDS] = {
        CONTROL_COMPILE, cwd, argv_packed, env_packed, compiler, umask_text
    };
    size_t sizes [CONTROL_COMPILE_FIELDS] = {
        strlen (CONTROL_COMPILE), strlen (cwd), argv_size, env_size, strlen (compiler),
        strlen (umask_text)
    };
    size_t request_size = 0;
    uint8_t *request = control_message_new (CONTROL_COMPILE_FIELDS, data, sizes, &request_size);
    free (argv_packed);
    free (env_packed);
    uint8_t *reply = NULL;
    if (!request || request_size - 4 > COMPILE_REQUEST_MAX) {
        snprintf (reason, reason_size, "the command and environment are too large for the node");
        goto done;
    }
    int sent = s_send_all (fd, request, request_size);
    int send_errno = errno;
    free (request);
    if (sent) {
        snprintf (reason, reason_size, "cannot send the job to the node of %s: %s", dir,
                  send_errno == EAGAIN? "it does not read it": strerror (send_errno));
        goto done;
    }
    //  The job may queue for a long time when the mesh is busy, so there is
    //  no deadline: a node that dies closes the connection.
    uint8_t prefix [4];
    if (s_recv_all (fd, prefix, sizeof prefix)) {
        snprintf (reason, reason_size, "lost the node of %s while compiling%s%s", dir,
                  errno? ": ": "", errno? strerror (errno): "");
        goto done;
    }
    uint32_t size = control_get_u32 (prefix);
    if (size > CONTROL_REPLY_MAX) {
        snprintf (reason, reason_size, "the node of %s sent a malformed reply", dir);
        goto done;
    }
    reply = (uint8_t *) malloc (size? size: 1);
    if (!reply)
        abort ();
    if (s_recv_all (fd, reply, size)) {
        snprintf (reason, reason_size, "lost the node's reply: %s",
                  errno? strerror (errno): "end of file");
        goto done;
    }
    control_field_t fields [CONTROL_MAX_FIELDS];
    int count = control_fields_parse (reply, size, fields, CONTROL_MAX_FIELDS);
    if (count == 1 && control_field_is (&fields [0], CONTROL_LOCAL)) {
        //  The slot is ours for as long as this descriptor lives: exec
        //  hands it to the compiler, exactly as a direct run.
        if (s_env_flag ("MESHCC_VERBOSE"))
            fprintf (stderr, "meshcc: %s: compiling in a local slot\n", source);
        free (reply);
        free (dir);
        s_exec_local (compiler, argv);
    }
    if (count >= 4 && control_field_is (&fields [0], CONTROL_RESULT)) {
        int status = s_parse_status (&fields [1]);
        if (status >= 0) {
            //  From here on, the job is answered: whatever happens while
            //  replaying, a local compile would be a second answer.
            close (fd);
            int write_failed = s_write_all (STDOUT_FILENO, fields [2].data, fields [2].size);
            s_write_all (STDERR_FILENO, fields [3].data, fields [3].size);
            if (s_env_flag ("MESHCC_VERBOSE")) {
                char where [MESHCC_NAME_MAX + 1] = "?";
                if (count >= 5)
                    s_field_text (&fields [4], where, sizeof where);
                fprintf (stderr, "meshcc: %s: compiled on %s (status %d)\n",
                         source, where, status);
            }
            free (reply);
            free (dir);
            if (write_failed && status == 0)
                die ("cannot write the compiler's output: %s", strerror (errno));
            exit (status);
        }
    }
    if (count >= 2 && control_field_is (&fields [0], CONTROL_FALLBACK)) {
        char why [256];
        s_field_text (&fields [1], why, sizeof why);
        snprintf (reason, reason_size, "%s", *why? why: "the mesh could not compile");
    }
    else
        snprintf (reason, reason_size, "the node of %s sent a malformed reply", dir);
done:
    free (reply);
    close (fd);
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
