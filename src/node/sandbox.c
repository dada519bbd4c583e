//  sandbox: bubblewrap around one program, and capturing spawns (sandbox.h).
//
//  Processes are started with vfork + execve rather than posix_spawn
//  because the limits (setrlimit) and the process group must be set in
//  the child between the two; the child makes system calls only, which is
//  what makes vfork safe in the node's multi-threaded process.
//  Pipes are created close-on-exec so that a compile started by another
//  thread at the same moment does not inherit them (it would hold our
//  pipes open and we would never see end-of-file).

#include <czmq.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "meshcc/limits.h"
#include "meshcc/sandbox.h"

#define SANDBOX_OUTPUT_DEFAULT  (16 * 1024 * 1024)
#define SANDBOX_PATH_MAX        8192

typedef struct {
    uint8_t *data;
    size_t size, cap;
} s_buffer_t;

static void
s_append (s_buffer_t *buffer, const uint8_t *data, size_t size)
{
    if (buffer->size + size > buffer->cap) {
        size_t cap = buffer->cap ? buffer->cap : 4096;
        while (cap < buffer->size + size)
            cap *= 2;
        buffer->data = (uint8_t *) realloc (buffer->data, cap);
        if (!buffer->data)
            abort ();
        buffer->cap = cap;
    }
    memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static void
s_set_limit (int resource, uint64_t soft, uint64_t hard)
{
    struct rlimit limit = { .rlim_cur = (rlim_t) soft, .rlim_max = (rlim_t) hard };
    setrlimit (resource, &limit);
}

//  The child of s_spawn, between vfork and execve: system calls only (it
//  runs on the parent's stack; nothing here may touch shared state).
static void __attribute__ ((noinline, noreturn))
s_child (char *const argv [], char *const envp [], const char *cwd,
         const sandbox_limits_t *limits, int out_fd, int err_fd)
{
    struct sigaction dfl;
    memset (&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sigaction (sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL
        &&  old.sa_handler != SIG_IGN)
            sigaction (sig, &dfl, NULL);
    }
    setpgid (0, 0);
    sigset_t none;
    sigemptyset (&none);
    int null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2 (null_fd, 0) < 0 || dup2 (out_fd, 1) < 0 || dup2 (err_fd, 2) < 0)
        _exit (127);
    if (cwd && chdir (cwd))
        _exit (127);
    if (limits->cpu_seconds)
        s_set_limit (RLIMIT_CPU, limits->cpu_seconds, limits->cpu_seconds + 1);
    if (limits->memory_bytes)
        s_set_limit (RLIMIT_AS, limits->memory_bytes, limits->memory_bytes);
    if (limits->file_bytes)
        s_set_limit (RLIMIT_FSIZE, limits->file_bytes, limits->file_bytes);
    s_set_limit (RLIMIT_CORE, 0, 0);
    sigprocmask (SIG_SETMASK, &none, NULL);
    execve (argv [0], argv, envp);
    _exit (127);
}

//  vfork/exec with captured stdout/stderr; argv[0] is the program.
static int
s_spawn (char *const argv [], char *const envp [], const char *cwd,
         const sandbox_limits_t *limits, sandbox_result_t *result,
         char *err, size_t err_size)
{
    memset (result, 0, sizeof (*result));
    int out_pipe [2], err_pipe [2];
    if (pipe2 (out_pipe, O_CLOEXEC)) {
        snprintf (err, err_size, "pipe: %s", strerror (errno));
        return -1;
    }
    if (pipe2 (err_pipe, O_CLOEXEC)) {
        snprintf (err, err_size, "pipe: %s", strerror (errno));
        close (out_pipe [0]);
        close (out_pipe [1]);
        return -1;
    }
    uint64_t started = s_now_us ();
    //  vfork: the child borrows our memory until it execs, so starting a
    //  compile does not copy the page tables of this large multi-threaded
    //  process (0.9 ms from fork to the child's exec, seen with strace). Signals stay
    //  blocked across it, so none of our handlers can run on the borrowed
    //  stack; the child resets them before unblocking (as posix_spawn does).
    sigset_t all, saved;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &saved);
    pid_t pid = vfork ();
    if (pid == 0)
        s_child (argv, envp, cwd, limits, out_pipe [1], err_pipe [1]);
    pthread_sigmask (SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        snprintf (err, err_size, "vfork: %s", strerror (errno));
        close (out_pipe [0]); close (out_pipe [1]);
        close (err_pipe [0]); close (err_pipe [1]);
        return -1;
    }
    close (out_pipe [1]);
    close (err_pipe [1]);

    size_t budget = limits->output_bytes ? (size_t) limits->output_bytes : SANDBOX_OUTPUT_DEFAULT;
    s_buffer_t out = { 0 }, errs = { 0 };
    struct pollfd fds [2] = {
        { .fd = out_pipe [0], .events = POLLIN },
        { .fd = err_pipe [0], .events = POLLIN }
    };
    int open_count = 2;
    uint64_t deadline = limits->wall_ms ? started + (uint64_t) limits->wall_ms * 1000 : 0;
    while (open_count > 0) {
        int timeout = -1;
        if (deadline && !result->wall_killed) {
            uint64_t now = s_now_us ();
            if (now >= deadline) {
                kill (-pid, SIGKILL);
                kill (pid, SIGKILL);
                result->wall_killed = true;
            }
            else
                timeout = (int) ((deadline - now) / 1000) + 1;
        }
        int rc = poll (fds, 2, result->wall_killed ? 1000 : timeout);
        if (rc < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (fds [i].fd < 0 || !(fds [i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            uint8_t chunk [65536];
            ssize_t got = read (fds [i].fd, chunk, sizeof (chunk));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                close (fds [i].fd);
                fds [i].fd = -1;
                open_count--;
                continue;
            }
            if (out.size + errs.size + (size_t) got > budget) {
                result->output_truncated = true;
                continue;           //  keep draining, drop the bytes
            }
            s_append (i == 0 ? &out : &errs, chunk, (size_t) got);
        }
        if (rc == 0 && result->wall_killed) {
            //  Killed, but something inherited our pipes and lingers:
            //  stop reading.
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds [i].fd >= 0)
            close (fds [i].fd);

    int status = 0;
    struct rusage usage;
    memset (&usage, 0, sizeof (usage));
    while (wait4 (pid, &status, 0, &usage) < 0 && errno == EINTR)
        ;
    result->wall_us = s_now_us () - started;
    result->cpu_us = (uint64_t) usage.ru_utime.tv_sec * 1000000 + (uint64_t) usage.ru_utime.tv_usec
                   + (uint64_t) usage.ru_stime.tv_sec * 1000000 + (uint64_t) usage.ru_stime.tv_usec;
    if (WIFSIGNALED (status)) {
        result->signalled = true;
        result->status = 128 + WTERMSIG (status);
    }
    else
        result->status = WEXITSTATUS (status);
    result->out = out.data;
    result->out_size = out.size;
    result->err = errs.data;
    result->err_size = errs.size;
    return 0;
}

int
sandbox_spawn (char *const argv [], char *const envp [], const char *cwd,
               const sandbox_limits_t *limits, sandbox_result_t *result,
               char *err, size_t err_size)
{
    sandbox_limits_t none = { 0 };
    return s_spawn (argv, envp, cwd, limits ? limits : &none, result, err, err_size);
}

void
sandbox_result_clear (sandbox_result_t *result)
{
    free (result->out);
    free (result->err);
    memset (result, 0, sizeof (*result));
}

const char *
sandbox_bwrap (void)
{
    static const char *candidates [] = { "/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap", NULL };
    for (const char **c = candidates; *c; c++)
        if (access (*c, X_OK) == 0)
            return *c;
    return NULL;
}

//  The namespace flags, shared by the probe and real runs so that the probe
//  answers for exactly what a job needs. --unshare-all is user (where
//  possible), ipc, pid, net, uts and cgroup (where possible).
#define S_BWRAP_FLAGS "--die-with-parent", "--unshare-all", "--new-session", \
                      "--cap-drop", "ALL"

//  Makes `path` (inside the root, absolute) exist in the root as a
//  directory, or as an empty file when `file`: bubblewrap cannot create
//  mount points in a root it has already bound read-only. Refuses (-1,
//  ELOOP) a symlink anywhere on the way: the host would follow it, and an
//  absolute target leads out of the root. With `create` false it only
//  checks that the path exists without symlinks.
static int
s_mount_point (const char *root, const char *path, bool file, bool create)
{
    char host [SANDBOX_PATH_MAX];
    if ((size_t) snprintf (host, sizeof host, "%s%s", root, path) >= sizeof host)
        return -1;
    size_t root_len = strlen (root);
    struct stat st;
    for (char *p = host + root_len + 1; ; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        bool last = saved == 0;
        if (lstat (host, &st) == 0) {
            if (S_ISLNK (st.st_mode)) {
                errno = ELOOP;
                return -1;
            }
        }
        else
        if (!create)
            return -1;
        else
        if (last && file) {
            int fd = open (host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
            if (fd < 0)
                return -1;
            close (fd);
        }
        else
        if (mkdir (host, 0755))
            return -1;
        *p = saved;
        if (last)
            return 0;
    }
}

//  The argument list grows as it is built.
typedef struct {
    const char **argv;
    size_t count, cap;
    zlist_t *strings;               //  owned copies made for it
} s_args_t;

static void
s_arg (s_args_t *a, const char *arg)
{
    if (a->count + 1 >= a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->argv = (const char **) realloc (a->argv, a->cap * sizeof (char *));
        if (!a->argv)
            abort ();
    }
    a->argv [a->count++] = arg;
    a->argv [a->count] = NULL;
}

static const char *
s_own (s_args_t *a, char *string)
{
    zlist_append (a->strings, string);
    return string;
}

static void
s_args_free (s_args_t *a)
{
    char *string;
    while ((string = (char *) zlist_pop (a->strings)))
        free (string);
    zlist_destroy (&a->strings);
    free (a->argv);
}

int
sandbox_run (const sandbox_spec_t *spec, char *const argv [],
             const sandbox_limits_t *limits, sandbox_result_t *result,
             char *err, size_t err_size)
{
    memset (result, 0, sizeof (*result));
    const char *bwrap = sandbox_bwrap ();
    if (!bwrap) {
        snprintf (err, err_size, "bubblewrap (bwrap) is not installed");
        return -1;
    }
    s_args_t a = { .strings = zlist_new () };
    const char *head [] = { bwrap, S_BWRAP_FLAGS, "--ro-bind", spec->root, "/" };
    for (size_t i = 0; i < sizeof (head) / sizeof (head [0]); i++)
        s_arg (&a, head [i]);
    int rc = 0;
    for (size_t i = 0; rc == 0 && spec->tree && spec->tree_binds && spec->tree_binds [i]; i++) {
        const char *path = spec->tree_binds [i];
        char *host = NULL;
        if (asprintf (&host, "%s%s", spec->tree, path) < 0)
            abort ();
        rc = s_mount_point (spec->root, path, false, true);
        s_arg (&a, "--ro-bind");
        s_arg (&a, s_own (&a, host));
        s_arg (&a, path);
    }
    for (size_t i = 0; rc == 0 && spec->ro_binds && spec->ro_binds [i]; i++) {
        struct stat st;
        const char *path = spec->ro_binds [i];
        if (stat (path, &st))
            continue;
        rc = s_mount_point (spec->root, path, !S_ISDIR (st.st_mode), true);
        s_arg (&a, "--ro-bind");
        s_arg (&a, path);
        s_arg (&a, path);
    }
    //  A private /tmp: a fresh tmpfs, with whatever the root holds there
    //  (inputs of a project under /tmp) bound back read-only.
    if (rc == 0 && spec->private_tmp) {
        rc = s_mount_point (spec->root, "/tmp", false, true);
        s_arg (&a, "--tmpfs");
        s_arg (&a, "/tmp");
        char tmp [SANDBOX_PATH_MAX];
        snprintf (tmp, sizeof tmp, "%s/tmp", spec->root);
        DIR *dir = opendir (tmp);
        struct dirent *entry;
        while (rc == 0 && dir && (entry = readdir (dir))) {
            if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
                continue;
            char *inside = NULL, *host = NULL;
            if (asprintf (&inside, "/tmp/%s", entry->d_name) < 0
            ||  asprintf (&host, "%s/tmp/%s", spec->root, entry->d_name) < 0)
                abort ();
            struct stat st;
            if (lstat (host, &st) == 0 && S_ISLNK (st.st_mode)) {
                char target [SANDBOX_PATH_MAX];
                ssize_t len = readlink (host, target, sizeof target - 1);
                if (len > 0) {
                    target [len] = 0;
                    s_arg (&a, "--symlink");
                    s_arg (&a, s_own (&a, strdup (target)));
                    s_arg (&a, s_own (&a, inside));
                }
                else
                    free (inside);
                free (host);
                continue;
            }
            s_arg (&a, "--ro-bind");
            s_arg (&a, s_own (&a, host));
            s_arg (&a, s_own (&a, inside));
        }
        if (dir)
            closedir (dir);
    }
    //  The writable directories, last: they may lie below any of the above.
    for (size_t i = 0; rc == 0 && spec->rw_dirs && spec->rw_dirs [i]; i++) {
        char *host = NULL;
        if (asprintf (&host, "%s%s", spec->root, spec->rw_dirs [i]) < 0)
            abort ();
        rc = s_mount_point (spec->root, spec->rw_dirs [i], false, false);
        s_arg (&a, "--bind");
        s_arg (&a, s_own (&a, host));
        s_arg (&a, spec->rw_dirs [i]);
    }
    if (rc == 0)
        rc = s_mount_point (spec->root, "/proc", false, true)
          || s_mount_point (spec->root, "/dev", false, true);
    if (rc) {
        snprintf (err, err_size, "cannot create mount points in the job root: %s", strerror (errno));
        s_args_free (&a);
        return -1;
    }
    s_arg (&a, "--proc");
    s_arg (&a, "/proc");
    s_arg (&a, "--dev");
    s_arg (&a, "/dev");
    s_arg (&a, "--chdir");
    s_arg (&a, spec->cwd ? spec->cwd : "/");
    s_arg (&a, "--clearenv");
    for (size_t i = 0; spec->envp && spec->envp [i]; i++) {
        const char *eq = strchr (spec->envp [i], '=');
        if (!eq)
            continue;
        s_arg (&a, "--setenv");
        s_arg (&a, s_own (&a, strndup (spec->envp [i], (size_t) (eq - spec->envp [i]))));
        s_arg (&a, eq + 1);
    }
    s_arg (&a, "--");
    for (size_t i = 0; argv [i]; i++)
        s_arg (&a, argv [i]);
    char *bwrap_env [] = { "PATH=" INPUTS_SANDBOX_PATH, NULL };
    rc = s_spawn ((char *const *) a.argv, bwrap_env, NULL, limits, result, err, err_size);
    s_args_free (&a);
    return rc;
}

static pthread_once_t s_probe_once = PTHREAD_ONCE_INIT;
static const char *s_probe_why;

static void
s_probe (void)
{
    const char *bwrap = sandbox_bwrap ();
    if (!bwrap) {
        s_probe_why = "bubblewrap (bwrap) is not installed";
        return;
    }
    //  The same namespace flags as a job, "/" read-only, running true.
    char *argv [] = { (char *) bwrap, S_BWRAP_FLAGS, "--ro-bind", "/", "/",
                      "--proc", "/proc", "--dev", "/dev", "--", "true", NULL };
    char *envp [] = { "PATH=" INPUTS_SANDBOX_PATH, NULL };
    sandbox_limits_t limits = { .wall_ms = 10000, .output_bytes = 64 * 1024 };
    sandbox_result_t result;
    char err [256];
    if (s_spawn (argv, envp, NULL, &limits, &result, err, sizeof (err))) {
        s_probe_why = "cannot start bwrap";
        return;
    }
    if (result.status != 0) {
        static char why [512];
        int len = (int) (result.err_size > 300 ? 300 : result.err_size);
        while (len > 0 && (result.err [len - 1] == '\n' || result.err [len - 1] == '\r'))
            len--;
        snprintf (why, sizeof (why), "bwrap cannot create namespaces here (exit %d%s%.*s)",
                  result.status, len ? ": " : "", len, result.err ? (char *) result.err : "");
        s_probe_why = why;
    }
    sandbox_result_clear (&result);
}

bool
sandbox_available (const char **why_p)
{
    pthread_once (&s_probe_once, s_probe);
    if (why_p)
        *why_p = s_probe_why;
    return s_probe_why == NULL;
}
