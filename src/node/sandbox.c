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

int
sandbox_run (const sandbox_spec_t *spec, char *const argv [],
             const sandbox_limits_t *limits, sandbox_result_t *result,
             char *err, size_t err_size)
{
    const char *bwrap = sandbox_bwrap ();
    if (!bwrap) {
        memset (result, 0, sizeof (*result));
        snprintf (err, err_size, "bubblewrap (bwrap) is not installed");
        return -1;
    }
    size_t binds = 0, envs = 0, args = 0;
    while (spec->ro_binds && spec->ro_binds [binds])
        binds++;
    while (spec->envp && spec->envp [envs])
        envs++;
    while (argv [args])
        args++;
    const char *head [] = { bwrap, S_BWRAP_FLAGS, "--bind", spec->root, "/" };
    size_t head_count = sizeof (head) / sizeof (head [0]);
    size_t total = head_count + binds * 3 + 4 + 2 + 1 + envs * 3 + 1 + args + 1;
    const char **full = (const char **) zmalloc (total * sizeof (char *));
    char **env_names = (char **) zmalloc ((envs + 1) * sizeof (char *));
    size_t n = 0;
    for (size_t i = 0; i < head_count; i++)
        full [n++] = head [i];
    for (size_t i = 0; i < binds; i++) {
        full [n++] = "--ro-bind";
        full [n++] = spec->ro_binds [i];
        full [n++] = spec->ro_binds [i];
    }
    full [n++] = "--proc";
    full [n++] = "/proc";
    full [n++] = "--dev";
    full [n++] = "/dev";
    full [n++] = "--chdir";
    full [n++] = spec->cwd ? spec->cwd : "/";
    full [n++] = "--clearenv";
    for (size_t i = 0; i < envs; i++) {
        const char *eq = strchr (spec->envp [i], '=');
        if (!eq)
            continue;
        env_names [i] = strndup (spec->envp [i], (size_t) (eq - spec->envp [i]));
        full [n++] = "--setenv";
        full [n++] = env_names [i];
        full [n++] = eq + 1;
    }
    full [n++] = "--";
    for (size_t i = 0; i < args; i++)
        full [n++] = argv [i];
    full [n] = NULL;
    char *bwrap_env [] = { "PATH=" INPUTS_SANDBOX_PATH, NULL };
    int rc = s_spawn ((char *const *) full, bwrap_env, NULL, limits, result, err, err_size);
    for (size_t i = 0; i < envs; i++)
        free (env_names [i]);
    free (env_names);
    free (full);
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
