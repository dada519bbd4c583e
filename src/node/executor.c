//  executor: runs one job received from a peer (executor.h).
//
//  The job root is a fresh directory that becomes "/" inside bubblewrap
//  (made in advance by the reaper thread with the directories every root
//  has: its job directory, tmp, proc, dev; mkdir is the dearest call of a
//  job's set-up on ext4). It holds every input at its original absolute
//  path (hard links from the blob store), the symlinks the origin's paths
//  went through, the working, include and output directories, and a
//  private /tmp. The compiler comes from the job's unpacked toolchain
//  (its directories bound, or its files linked: s_place_tree), or else its
//  directories and the shared libraries of its programs are bound
//  read-only from this machine, which is only correct because the
//  requester's compiler identity (path, version, target, hash of the
//  binary) equals ours. /usr/include is never
//  bound: system headers are inputs like any other, so a peer with other
//  libc headers still compiles against the origin's.
//
//  Building the root must never write outside it. The order guarantees
//  that: directories and files first (no symlink exists in the root yet,
//  so mkdir and link cannot be redirected), symlinks last, and afterwards
//  every path is resolved with inputs_resolve inside the root (absolute
//  targets restart at the root, ".." stops at it), never by the host
//  kernel following a link the peer chose. The manifest is checked before
//  anything is created: no entry below a symlink, none in /proc, /sys or
//  /dev, no symlink whose target climbs above "/", none shadowing a path
//  bound from the host.

#include <czmq.h>
#include <elf.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <pthread.h>
#include <sys/stat.h>
#include "meshcc/compile_args.h"
#include "meshcc/executor.h"
#include "meshcc/tree_remove.h"
#include "meshcc/inputs.h"
#include "meshcc/limits.h"
#include "meshcc/sandbox.h"

typedef struct {
    compiler_identity_t identity;
    char **binds;                   //  NULL-terminated host paths, ro
    char **symlinks;                //  NULL-terminated path, target, path, target...
} s_toolchain_t;

//  An unpacked toolchain (issue 4): its files and symlinks, as paths
//  inside the sandbox ("/usr/bin/x86_64-linux-gnu-gcc-12"), walked once.
typedef struct {
    char  *tree;                    //  the host directory it was unpacked in
    char **files;                   //  NULL-terminated
    char **symlinks;                //  path, target, path, target..., NULL
    char **dirs;                    //  NULL-terminated, parents before children
} s_tree_t;

struct _executor_t {
    blob_store_t *store;
    char *work_dir;
    char *area;                     //  WORK/exec-PID-XXXXXX: this executor's
    char *trash;                    //  AREA/trash: finished job dirs
    executor_limits_t limits;
    pthread_mutex_t mutex;          //  guards toolchains and the reaper state
    s_toolchain_t toolchains [EXECUTOR_TOOLCHAIN_CACHE];
    size_t toolchain_count, toolchain_next;
    s_tree_t trees [EXECUTOR_TOOLCHAIN_CACHE];     //  unpacked toolchains walked
    size_t tree_count, tree_next;
    //  The reaper removes finished job roots off the job's critical path:
    //  unlinking a few hundred hard links costs 10-100 ms on a loaded
    //  ext4, as much as the compile of a small file.
    pthread_t reaper;
    pthread_cond_t wake, idle;
    size_t pending;                 //  job dirs moved to trash, not yet removed
    bool stopping;
    zlistx_t *spares;               //  job dirs made in advance (s_make_spare)
};

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int
s_mkdir_p (const char *path, mode_t mode)
{
    char buffer [JOB_MAX_PATH * 2];
    if (strlen (path) >= sizeof (buffer))
        return -1;
    strcpy (buffer, path);
    for (char *p = buffer + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (buffer, mode) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir (buffer, mode) && errno != EEXIST)
        return -1;
    struct stat st;
    return lstat (buffer, &st) == 0 && S_ISDIR (st.st_mode) ? 0 : -1;
}

//  s_mkdir_p for a directory inside a job root that exists: only the
//  components after the root's `root_len` bytes are made, each at most
//  once per job (`made` remembers them). A job root gets a few hundred
//  files in a few dozen directories; the root's own long path is never
//  walked again.
static int
s_root_dir (zhashx_t *made, const char *host, size_t root_len)
{
    if (zhashx_lookup (made, host))
        return 0;
    char buffer [JOB_MAX_PATH * 2];
    if (strlen (host) >= sizeof (buffer) || strlen (host) < root_len)
        return -1;
    strcpy (buffer, host);
    for (char *p = buffer + root_len + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (!zhashx_lookup (made, buffer)) {
            if (mkdir (buffer, 0755) && errno != EEXIST)
                return -1;
            zhashx_insert (made, buffer, (void *) 1);
        }
        *p = '/';
    }
    if (mkdir (buffer, 0755) && errno != EEXIST)
        return -1;
    struct stat st;
    if (lstat (buffer, &st) || !S_ISDIR (st.st_mode))
        return -1;
    zhashx_insert (made, buffer, (void *) 1);
    return 0;
}

void
executor_strings_free (char ***strings_p)
{
    if (strings_p && *strings_p) {
        for (char **s = *strings_p; *s; s++)
            free (*s);
        free (*strings_p);
        *strings_p = NULL;
    }
}

static char **
s_strings_copy (char **strings)
{
    size_t count = 0;
    while (strings && strings [count])
        count++;
    char **copy = (char **) zmalloc ((count + 1) * sizeof (char *));
    for (size_t i = 0; i < count; i++)
        copy [i] = strdup (strings [i]);
    return copy;
}

//  True if `path` is `dir` or below it.
static bool
s_under (const char *path, const char *dir)
{
    size_t len = strlen (dir);
    if (len == 1 && dir [0] == '/')
        return true;
    return strncmp (path, dir, len) == 0 && (path [len] == 0 || path [len] == '/');
}

static bool
s_under_any (const char *path, char **dirs)
{
    for (size_t i = 0; dirs && dirs [i]; i++)
        if (s_under (path, dirs [i]))
            return true;
    return false;
}

//  Lexical normalisation of `path` against `base` (both may be
//  relative to "/"); -1 if it climbs above "/" or does not fit.
static int
s_lexical (const char *base, const char *path, char *out, size_t out_size)
{
    char joined [JOB_MAX_PATH * 2];
    int len = path [0] == '/' ? snprintf (joined, sizeof (joined), "%s", path)
                              : snprintf (joined, sizeof (joined), "%s/%s", base, path);
    if (len < 0 || (size_t) len >= sizeof (joined))
        return -1;
    size_t n = 0;
    out [0] = 0;
    char *save = NULL;
    for (char *comp = strtok_r (joined, "/", &save); comp; comp = strtok_r (NULL, "/", &save)) {
        if (streq (comp, "."))
            continue;
        if (streq (comp, "..")) {
            if (n == 0)
                return -1;
            while (n > 0 && out [n - 1] != '/')
                n--;
            n = n > 0 ? n - 1 : 0;
            out [n] = 0;
            continue;
        }
        size_t comp_len = strlen (comp);
        if (n + 1 + comp_len + 1 > out_size)
            return -1;
        out [n++] = '/';
        memcpy (out + n, comp, comp_len + 1);
        n += comp_len;
    }
    if (n == 0) {
        if (out_size < 2)
            return -1;
        strcpy (out, "/");
    }
    return 0;
}

static bool
s_is_pseudo_fs (const char *path)
{
    return s_under (path, "/proc") || s_under (path, "/sys") || s_under (path, "/dev");
}

//  A manifest or cwd path: absolute, already normalised, within bounds,
//  not in a pseudo file system. NULL if fine, else why not.
static const char *
s_check_path (const char *path)
{
    if (!path || path [0] != '/')
        return "is not absolute";
    if (strlen (path) >= JOB_MAX_PATH)
        return "is too long";
    char normal [JOB_MAX_PATH];
    if (s_lexical ("/", path, normal, sizeof (normal)) || !streq (normal, path))
        return "is not normalised";
    if (s_is_pseudo_fs (path))
        return "is in /proc, /sys or /dev";
    return NULL;
}

// ---------------------------------------------------------------------
//  Toolchain: what of this machine the sandbox binds

typedef struct {
    zlistx_t *binds;                //  char * (owned)
    zhashx_t *bind_set;
    zlistx_t *links;                //  "path\0target" pairs as two strings
    zhashx_t *link_set;
} s_collect_t;

static void
s_collect_bind (s_collect_t *c, const char *path)
{
    if (!zhashx_lookup (c->bind_set, path)) {
        zhashx_insert (c->bind_set, path, (void *) 1);
        zlistx_add_end (c->binds, strdup (path));
    }
}

static void
s_collect_link (const char *link, const char *target, void *arg)
{
    s_collect_t *c = (s_collect_t *) arg;
    if (!zhashx_lookup (c->link_set, link)) {
        zhashx_insert (c->link_set, link, (void *) 1);
        zlistx_add_end (c->links, strdup (link));
        zlistx_add_end (c->links, strdup (target));
    }
}

//  Resolves a host path, recording the symlinks on the way; binds the
//  final file or directory when `bind` and it exists.
static void
s_collect_path (s_collect_t *c, const char *path, bool bind)
{
    char resolved [JOB_MAX_PATH];
    if (inputs_resolve (NULL, path, s_collect_link, c, resolved, sizeof (resolved)))
        return;
    struct stat st;
    if (bind && stat (resolved, &st) == 0)
        s_collect_bind (c, resolved);
}

static int
s_elf_interp (const char *path, char *out, size_t out_size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = -1;
    Elf64_Ehdr header;
    if (pread (fd, &header, sizeof (header), 0) != (ssize_t) sizeof (header)
    ||  memcmp (header.e_ident, ELFMAG, SELFMAG) != 0
    ||  header.e_ident [EI_CLASS] != ELFCLASS64
    ||  header.e_phentsize != sizeof (Elf64_Phdr))
        goto done;
    for (unsigned i = 0; i < header.e_phnum && i < 64; i++) {
        Elf64_Phdr ph;
        if (pread (fd, &ph, sizeof (ph), (off_t) (header.e_phoff + i * sizeof (ph)))
            != (ssize_t) sizeof (ph))
            break;
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz == 0 || ph.p_filesz >= out_size
        ||  pread (fd, out, ph.p_filesz, (off_t) ph.p_offset) != (ssize_t) ph.p_filesz)
            break;
        out [ph.p_filesz] = 0;
        rc = out [0] == '/' ? 0 : -1;
        break;
    }
done:
    close (fd);
    return rc;
}

//  The shared libraries `program` loads, as the dynamic loader's --list
//  names them (ldd without the shell script), plus the loader itself.
static void
s_collect_libraries (s_collect_t *c, const char *program)
{
    char interp [JOB_MAX_PATH];
    if (s_elf_interp (program, interp, sizeof (interp)))
        return;                     //  static, script or foreign: nothing to add
    s_collect_path (c, interp, true);
    char *argv [] = { interp, "--list", (char *) program, NULL };
    char *envp [] = { "PATH=" INPUTS_SANDBOX_PATH, NULL };
    sandbox_limits_t limits = { .wall_ms = COMPILER_PROBE_TIMEOUT_MS,
                                .output_bytes = COMPILER_PROBE_OUTPUT_MAX };
    sandbox_result_t result;
    char err [256];
    if (sandbox_spawn (argv, envp, NULL, &limits, &result, err, sizeof (err)))
        return;
    if (result.status == 0 && result.out) {
        char *text = strndup ((char *) result.out, result.out_size);
        char *save = NULL;
        for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
            char *start = strstr (line, "=> ");
            start = start ? start + 3 : line;
            while (*start == ' ' || *start == '\t')
                start++;
            if (*start != '/')
                continue;           //  vdso, "not found"
            char *end = strstr (start, " (0x");
            if (end)
                *end = 0;
            s_collect_path (c, start, true);
        }
        free (text);
    }
    sandbox_result_clear (&result);
}

static int
s_compare_strings (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

//  Probes the toolchain of `identity` (its path must be ours).
static void
s_toolchain_build (const compiler_identity_t *identity, s_toolchain_t *toolchain)
{
    s_collect_t c = {
        .binds = zlistx_new (), .bind_set = zhashx_new (),
        .links = zlistx_new (), .link_set = zhashx_new ()
    };
    const char *compiler = identity->path;
    //  The compiler's own directory (gcc finds `as` through PATH there)
    char dir [JOB_MAX_PATH];
    snprintf (dir, sizeof (dir), "%s", compiler);
    char *slash = strrchr (dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        s_collect_bind (&c, dir);
    }
    //  gcc's private programs, specs and headers; clang looks there for
    //  the GCC installation whose libstdc++ headers it uses.
    s_collect_path (&c, "/usr/lib/gcc", true);
    s_collect_path (&c, "/usr/libexec/gcc", true);
    //  A prefix like /usr/lib/llvm-14 or /opt/gcc-13 holding bin/
    if (strncmp (compiler, "/usr/lib/llvm", 13) == 0 || strncmp (compiler, "/opt/", 5) == 0) {
        const char *after = strchr (compiler + (compiler [1] == 'o' ? 5 : 9), '/');
        if (after) {
            snprintf (dir, sizeof (dir), "%.*s", (int) (after - compiler), compiler);
            s_collect_bind (&c, dir);
        }
    }
    s_collect_libraries (&c, compiler);
    static const char *programs [] = { "cc1", "cc1plus", "cc1obj", "cc1objplus", "as", NULL };
    for (const char **p = programs; *p; p++) {
        char program [JOB_MAX_PATH];
        if (compiler_identity_program (compiler, *p, program, sizeof (program)))
            continue;
        snprintf (dir, sizeof (dir), "%s", program);
        *strrchr (dir, '/') = 0;
        if (*dir)
            s_collect_bind (&c, dir);
        s_collect_libraries (&c, program);
    }
    //  The loader's cache, locales (LANG/LC_* are shipped), distribution
    //  files clang reads, and merged-/usr top-level links.
    static const char *files [] = {
        "/etc/ld.so.cache", "/usr/lib/locale", "/usr/share/locale",
        "/etc/os-release", "/etc/lsb-release", "/etc/debian_version", NULL
    };
    for (const char **f = files; *f; f++)
        s_collect_path (&c, *f, true);
    static const char *tops [] = { "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL };
    for (const char **t = tops; *t; t++)
        s_collect_path (&c, *t, false);

    //  Binds: sorted, without any inside another
    size_t count = zlistx_size (c.binds);
    char **binds = (char **) zmalloc ((count + 1) * sizeof (char *));
    size_t n = 0;
    for (char *b = (char *) zlistx_first (c.binds); b; b = (char *) zlistx_next (c.binds))
        binds [n++] = b;
    qsort (binds, n, sizeof (char *), s_compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 && s_under (binds [i], binds [kept - 1]))
            free (binds [i]);
        else
        if (kept < EXECUTOR_MAX_BINDS)
            binds [kept++] = binds [i];
        else
            free (binds [i]);
    }
    binds [kept] = NULL;
    //  Symlinks: those not inside a bound directory (those come with it)
    size_t link_count = zlistx_size (c.links);
    char **links = (char **) zmalloc ((link_count + 1) * sizeof (char *));
    n = 0;
    for (char *l = (char *) zlistx_first (c.links); l; l = (char *) zlistx_next (c.links)) {
        char *target = (char *) zlistx_next (c.links);
        if (s_under_any (l, binds)) {
            free (l);
            free (target);
            continue;
        }
        links [n++] = l;
        links [n++] = target;
    }
    links [n] = NULL;
    zlistx_destroy (&c.binds);      //  strings now owned by the arrays
    zlistx_destroy (&c.links);
    zhashx_destroy (&c.bind_set);
    zhashx_destroy (&c.link_set);
    toolchain->identity = *identity;
    toolchain->binds = binds;
    toolchain->symlinks = links;
}

//  Copies of the toolchain's lists for `identity`, probed once.
static void
s_toolchain_get (executor_t *self, const compiler_identity_t *identity,
                 char ***binds_p, char ***symlinks_p)
{
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->toolchain_count; i++) {
        s_toolchain_t *t = &self->toolchains [i];
        if (compiler_identity_equal (&t->identity, identity)) {
            *binds_p = s_strings_copy (t->binds);
            *symlinks_p = s_strings_copy (t->symlinks);
            pthread_mutex_unlock (&self->mutex);
            return;
        }
    }
    pthread_mutex_unlock (&self->mutex);
    s_toolchain_t fresh;
    s_toolchain_build (identity, &fresh);
    *binds_p = s_strings_copy (fresh.binds);
    *symlinks_p = s_strings_copy (fresh.symlinks);
    pthread_mutex_lock (&self->mutex);
    s_toolchain_t *slot = &self->toolchains [self->toolchain_next];
    if (self->toolchain_count == EXECUTOR_TOOLCHAIN_CACHE) {
        executor_strings_free (&slot->binds);
        executor_strings_free (&slot->symlinks);
    }
    else
        self->toolchain_count++;
    *slot = fresh;
    self->toolchain_next = (self->toolchain_next + 1) % EXECUTOR_TOOLCHAIN_CACHE;
    pthread_mutex_unlock (&self->mutex);
}

static void
s_strings_push (zlistx_t *list, const char *a, const char *b)
{
    zlistx_add_end (list, strdup (a));
    if (b)
        zlistx_add_end (list, strdup (b));
}

static char **
s_strings_from (zlistx_t *list)
{
    char **strings = (char **) zmalloc ((zlistx_size (list) + 1) * sizeof (char *));
    size_t n = 0;
    for (char *item = (char *) zlistx_first (list); item; item = (char *) zlistx_next (list))
        strings [n++] = item;
    return strings;
}

//  Walks `host` (inside = its path in the sandbox) without following
//  symlinks. Returns 0 or -1.
static int
s_tree_walk (const char *host, const char *inside, zlistx_t *files, zlistx_t *links,
             zlistx_t *dirs, int depth)
{
    if (depth > 64)
        return -1;
    DIR *dir = opendir (host);
    if (!dir)
        return -1;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        char child [JOB_MAX_PATH], child_inside [JOB_MAX_PATH];
        if ((size_t) snprintf (child, sizeof child, "%s/%s", host, entry->d_name) >= sizeof child
        ||  (size_t) snprintf (child_inside, sizeof child_inside, "%s/%s",
                               streq (inside, "/") ? "" : inside, entry->d_name)
            >= sizeof child_inside) {
            rc = -1;
            break;
        }
        struct stat st;
        if (lstat (child, &st)) {
            rc = -1;
            break;
        }
        if (S_ISDIR (st.st_mode)) {
            s_strings_push (dirs, child_inside, NULL);
            rc = s_tree_walk (child, child_inside, files, links, dirs, depth + 1);
        }
        else
        if (S_ISREG (st.st_mode))
            s_strings_push (files, child_inside, NULL);
        else
        if (S_ISLNK (st.st_mode)) {
            char target [JOB_MAX_PATH];
            ssize_t len = readlink (child, target, sizeof target - 1);
            if (len <= 0) {
                rc = -1;
                break;
            }
            target [len] = 0;
            s_strings_push (links, child_inside, target);
        }
    }
    closedir (dir);
    return rc;
}

//  Copies of the file, symlink and (when dirs_p) directory lists of the
//  unpacked toolchain `tree`, walked once. Returns 0 or -1.
static int
s_tree_get (executor_t *self, const char *tree, char ***files_p, char ***symlinks_p,
            char ***dirs_p)
{
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->tree_count; i++) {
        s_tree_t *t = &self->trees [i];
        if (streq (t->tree, tree)) {
            *files_p = s_strings_copy (t->files);
            *symlinks_p = s_strings_copy (t->symlinks);
            if (dirs_p)
                *dirs_p = s_strings_copy (t->dirs);
            pthread_mutex_unlock (&self->mutex);
            return 0;
        }
    }
    pthread_mutex_unlock (&self->mutex);
    zlistx_t *files = zlistx_new (), *links = zlistx_new (), *dirs = zlistx_new ();
    int rc = s_tree_walk (tree, "/", files, links, dirs, 0);
    s_tree_t fresh = {
        .tree = strdup (tree), .files = s_strings_from (files),
        .symlinks = s_strings_from (links), .dirs = s_strings_from (dirs)
    };
    zlistx_destroy (&files);        //  strings now owned by the arrays
    zlistx_destroy (&links);
    zlistx_destroy (&dirs);
    if (rc) {
        free (fresh.tree);
        executor_strings_free (&fresh.files);
        executor_strings_free (&fresh.symlinks);
        executor_strings_free (&fresh.dirs);
        return -1;
    }
    *files_p = s_strings_copy (fresh.files);
    *symlinks_p = s_strings_copy (fresh.symlinks);
    if (dirs_p)
        *dirs_p = s_strings_copy (fresh.dirs);
    pthread_mutex_lock (&self->mutex);
    s_tree_t *slot = &self->trees [self->tree_next];
    if (self->tree_count == EXECUTOR_TOOLCHAIN_CACHE) {
        free (slot->tree);
        executor_strings_free (&slot->files);
        executor_strings_free (&slot->symlinks);
        executor_strings_free (&slot->dirs);
    }
    else
        self->tree_count++;
    *slot = fresh;
    self->tree_next = (self->tree_next + 1) % EXECUTOR_TOOLCHAIN_CACHE;
    pthread_mutex_unlock (&self->mutex);
    return 0;
}

//  The binds (paths whose inputs come from the toolchain) and symlinks of
//  a job's toolchain: the unpacked `tree` when given, else this machine's
//  own compiler if identical. Returns 0 or -1.
static int
s_job_toolchain (executor_t *self, const job_spec_t *job, const char *tree,
                 char ***binds_p, char ***symlinks_p)
{
    if (tree)
        return s_tree_get (self, tree, binds_p, symlinks_p, NULL);
    return executor_toolchain (self, &job->compiler, binds_p, symlinks_p);
}

int
executor_toolchain (executor_t *self, const compiler_identity_t *identity,
                    char ***binds_p, char ***symlinks_p)
{
    compiler_identity_t ours;
    if (compiler_identity_get (identity->path, &ours)
    ||  !compiler_identity_equal (&ours, identity))
        return -1;
    s_toolchain_get (self, identity, binds_p, symlinks_p);
    return 0;
}

//  A spare job directory: AREA/spare-XXXXXX/root with tmp (01777), proc
//  and dev, the directories every job root has. Returns it, or NULL.
static char *
s_make_spare (executor_t *self)
{
    char dir [JOB_MAX_PATH], path [JOB_MAX_PATH + 16];
    snprintf (dir, sizeof dir, "%s/spare-XXXXXX", self->area);
    if (!mkdtemp (dir))
        return NULL;
    static const char *const parts [] = { "/root", "/root/tmp", "/root/proc", "/root/dev", NULL };
    for (const char *const *part = parts; *part; part++) {
        snprintf (path, sizeof path, "%s%s", dir, *part);
        if (mkdir (path, 0755)
        ||  (streq (*part, "/root/tmp") && chmod (path, 01777))) {
            tree_remove (dir);
            return NULL;
        }
    }
    return strdup (dir);
}

static void *
s_reaper (void *arg)
{
    executor_t *self = (executor_t *) arg;
    pthread_mutex_lock (&self->mutex);
    while (true) {
        while (self->pending == 0 && !self->stopping
        &&     zlistx_size (self->spares) >= EXECUTOR_SPARES)
            pthread_cond_wait (&self->wake, &self->mutex);
        if (self->pending == 0 && self->stopping)
            break;
        //  Spares first: a job may be waiting for its set-up right now.
        while (!self->stopping && zlistx_size (self->spares) < EXECUTOR_SPARES) {
            pthread_mutex_unlock (&self->mutex);
            char *spare = s_make_spare (self);
            pthread_mutex_lock (&self->mutex);
            if (!spare)
                break;
            zlistx_add_end (self->spares, spare);
        }
        if (self->pending == 0) {
            if (zlistx_size (self->spares) < EXECUTOR_SPARES && !self->stopping) {
                //  Making spares failed (a full disk?): retry later, not in a loop.
                pthread_mutex_unlock (&self->mutex);
                zclock_sleep (1000);
                pthread_mutex_lock (&self->mutex);
            }
            continue;
        }
        size_t claimed = self->pending;
        pthread_mutex_unlock (&self->mutex);
        DIR *dir = opendir (self->trash);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
                continue;
            char path [JOB_MAX_PATH];
            snprintf (path, sizeof (path), "%s/%s", self->trash, entry->d_name);
            tree_remove (path);
        }
        if (dir)
            closedir (dir);
        pthread_mutex_lock (&self->mutex);
        self->pending -= claimed;
        if (self->pending == 0)
            pthread_cond_broadcast (&self->idle);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}

//  Hands a finished job directory to the reaper.
static void
s_discard (executor_t *self, const char *job_dir)
{
    const char *base = strrchr (job_dir, '/');
    char target [JOB_MAX_PATH];
    snprintf (target, sizeof (target), "%s%s", self->trash, base);
    if (rename (job_dir, target)) {
        tree_remove (job_dir);
        return;
    }
    pthread_mutex_lock (&self->mutex);
    self->pending++;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->mutex);
}

//  Areas of executors of a process that no longer runs (a crashed node)
//  go to our trash.
static void
s_sweep_dead (executor_t *self)
{
    DIR *dir = opendir (self->work_dir);
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        int pid = 0;
        if (sscanf (entry->d_name, "exec-%d-", &pid) != 1 || pid <= 0)
            continue;
        if (pid == getpid () || kill (pid, 0) == 0 || errno != ESRCH)
            continue;
        char from [JOB_MAX_PATH], to [JOB_MAX_PATH];
        snprintf (from, sizeof (from), "%s/%s", self->work_dir, entry->d_name);
        snprintf (to, sizeof (to), "%s/%s", self->trash, entry->d_name);
        if (rename (from, to) == 0)
            self->pending++;
    }
    if (dir)
        closedir (dir);
}

void
executor_wait_idle (executor_t *self)
{
    pthread_mutex_lock (&self->mutex);
    while (self->pending > 0)
        pthread_cond_wait (&self->idle, &self->mutex);
    pthread_mutex_unlock (&self->mutex);
}

// ---------------------------------------------------------------------
//  Lifecycle

void
executor_limits_default (executor_limits_t *limits)
{
    limits->cpu_seconds = EXECUTOR_CPU_SECONDS;
    limits->memory_bytes = EXECUTOR_MEMORY_BYTES;
    limits->output_bytes = EXECUTOR_OUTPUT_BYTES;
    limits->wall_seconds = EXECUTOR_WALL_SECONDS;
}

executor_t *
executor_new (blob_store_t *store, const char *work_dir,
              const executor_limits_t *limits, char *err, size_t err_size)
{
    if (!store || !work_dir || work_dir [0] != '/') {
        snprintf (err, err_size, "executor needs a store and an absolute work directory");
        return NULL;
    }
    if (s_mkdir_p (work_dir, 0700)) {
        snprintf (err, err_size, "cannot create %s: %s", work_dir, strerror (errno));
        return NULL;
    }
    chmod (work_dir, 0700);
    if (strlen (work_dir) > JOB_MAX_PATH / 4) {
        snprintf (err, err_size, "work directory path too long");
        return NULL;
    }
    char area [JOB_MAX_PATH], trash [JOB_MAX_PATH + 8];
    snprintf (area, sizeof (area), "%s/exec-%d-XXXXXX", work_dir, (int) getpid ());
    if (!mkdtemp (area)) {
        snprintf (err, err_size, "cannot create a directory in %s: %s", work_dir, strerror (errno));
        return NULL;
    }
    snprintf (trash, sizeof (trash), "%s/trash", area);
    if (mkdir (trash, 0700)) {
        snprintf (err, err_size, "cannot create %s: %s", trash, strerror (errno));
        rmdir (area);
        return NULL;
    }
    executor_t *self = (executor_t *) zmalloc (sizeof (executor_t));
    self->store = store;
    self->work_dir = strdup (work_dir);
    self->area = strdup (area);
    self->trash = strdup (trash);
    if (limits)
        self->limits = *limits;
    else
        executor_limits_default (&self->limits);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    pthread_cond_init (&self->idle, NULL);
    self->spares = zlistx_new ();
    zlistx_set_destructor (self->spares, (czmq_destructor *) zstr_free);
    s_sweep_dead (self);
    if (pthread_create (&self->reaper, NULL, s_reaper, self)) {
        snprintf (err, err_size, "cannot start the executor's reaper thread");
        zlistx_destroy (&self->spares);
        tree_remove (area);
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->wake);
        pthread_cond_destroy (&self->idle);
        free (self->work_dir);
        free (self->area);
        free (self->trash);
        free (self);
        return NULL;
    }
    return self;
}

void
executor_destroy (executor_t **self_p)
{
    if (self_p && *self_p) {
        executor_t *self = *self_p;
        pthread_mutex_lock (&self->mutex);
        self->stopping = true;
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->mutex);
        pthread_join (self->reaper, NULL);
        zlistx_destroy (&self->spares);
        tree_remove (self->area);
        pthread_cond_destroy (&self->wake);
        pthread_cond_destroy (&self->idle);
        free (self->area);
        free (self->trash);
        for (size_t i = 0; i < self->tree_count; i++) {
            free (self->trees [i].tree);
            executor_strings_free (&self->trees [i].files);
            executor_strings_free (&self->trees [i].symlinks);
            executor_strings_free (&self->trees [i].dirs);
        }
        for (size_t i = 0; i < self->toolchain_count; i++) {
            executor_strings_free (&self->toolchains [i].binds);
            executor_strings_free (&self->toolchains [i].symlinks);
        }
        pthread_mutex_destroy (&self->mutex);
        free (self->work_dir);
        free (self);
        *self_p = NULL;
    }
}

bool
executor_available (executor_t *self, const char **why)
{
    (void) self;
    return sandbox_available (why);
}

// ---------------------------------------------------------------------
//  The plan: which manifest entries go into the root

typedef enum { S_USE, S_SKIP } s_use_t;

//  Inserts every proper ancestor of `path` (and `path` itself when
//  `self_too`) into `set`.
static void
s_block (zhashx_t *set, const char *path, bool self_too)
{
    char buffer [JOB_MAX_PATH * 2];
    if (!path || snprintf (buffer, sizeof buffer, "%s", path) >= (int) sizeof buffer)
        return;
    if (self_too)
        zhashx_insert (set, buffer, (void *) 1);
    for (char *slash = strrchr (buffer, '/'); slash && slash != buffer;
         slash = strrchr (buffer, '/')) {
        *slash = 0;
        zhashx_insert (set, buffer, (void *) 1);
    }
}

//  Checks the manifest against itself and the toolchain; fills use[]
//  (one per entry). Returns NULL or a reason (written into `why`).
static const char *
s_plan (const job_spec_t *job, char **binds, char **links, s_use_t *use,
        char *why, size_t why_size)
{
    zhashx_t *paths = zhashx_new ();
    zhashx_t *symlinks = zhashx_new ();         //  path -> target
    zhashx_t *bind_ancestors = zhashx_new ();
    zhashx_t *our_links = zhashx_new ();        //  this machine's, created by us
    const char *reason = NULL;
    for (size_t i = 0; links && links [i]; i += 2) {
        zhashx_insert (symlinks, links [i], links [i + 1]);
        zhashx_insert (our_links, links [i], links [i + 1]);
    }
    for (size_t i = 0; binds && binds [i]; i++)
        s_block (bind_ancestors, binds [i], false);
    //  First pass: paths well-formed, unique; symlink targets sane.
    for (size_t i = 0; i < job->entry_count && !reason; i++) {
        const manifest_entry_t *e = &job->entries [i];
        const char *bad = s_check_path (e->path);
        if (bad) {
            snprintf (why, why_size, "manifest path %.300s %s", e->path ? e->path : "(null)", bad);
            reason = why;
            break;
        }
        if (e->kind != MANIFEST_FILE && e->kind != MANIFEST_SYMLINK && e->kind != MANIFEST_DIR) {
            snprintf (why, why_size, "manifest entry %.300s has an unknown kind", e->path);
            reason = why;
            break;
        }
        if (zhashx_insert (paths, e->path, (void *) 1)) {
            snprintf (why, why_size, "manifest lists %.300s twice", e->path);
            reason = why;
            break;
        }
        if (e->kind != MANIFEST_DIR && streq (e->path, "/")) {
            snprintf (why, why_size, "manifest replaces /");
            reason = why;
            break;
        }
        if (e->kind != MANIFEST_SYMLINK && zhashx_lookup (our_links, e->path)) {
            snprintf (why, why_size, "manifest entry %.300s conflicts with this machine's symlink",
                      e->path);
            reason = why;
            break;
        }
        if (e->kind == MANIFEST_SYMLINK) {
            char dir [JOB_MAX_PATH], target [JOB_MAX_PATH];
            snprintf (dir, sizeof (dir), "%s", e->path);
            *strrchr (dir, '/') = 0;
            if (!e->target || !*e->target || strlen (e->target) >= JOB_MAX_PATH
            ||  s_lexical (*dir ? dir : "/", e->target, target, sizeof (target))) {
                snprintf (why, why_size, "symlink %.300s points above /", e->path);
                reason = why;
                break;
            }
            if (s_is_pseudo_fs (target)) {
                snprintf (why, why_size, "symlink %.300s points into %.300s", e->path, target);
                reason = why;
                break;
            }
            const char *ours = (const char *) zhashx_lookup (symlinks, e->path);
            if (ours && !streq (ours, e->target)) {
                snprintf (why, why_size, "symlink %.300s conflicts with this machine's", e->path);
                reason = why;
                break;
            }
            if (!ours)
                zhashx_insert (symlinks, e->path, e->target);
        }
    }
    //  Second pass: nothing below a symlink; toolchain paths not shadowed.
    for (size_t i = 0; i < job->entry_count && !reason; i++) {
        const manifest_entry_t *e = &job->entries [i];
        if (s_under_any (e->path, binds)) {
            use [i] = S_SKIP;       //  this machine's copy (same compiler) is used
            continue;
        }
        char prefix [JOB_MAX_PATH];
        snprintf (prefix, sizeof (prefix), "%s", e->path);
        for (char *slash = strrchr (prefix, '/'); slash && slash != prefix;
             slash = strrchr (prefix, '/')) {
            *slash = 0;
            if (zhashx_lookup (symlinks, prefix)) {
                snprintf (why, why_size, "manifest entry %.300s lies below symlink %.300s",
                          e->path, prefix);
                reason = why;
                break;
            }
        }
        if (reason)
            break;
        //  A symlink this machine has too (same target, checked above)
        use [i] = zhashx_lookup (our_links, e->path) ? S_SKIP : S_USE;
        if (e->kind != MANIFEST_DIR && zhashx_lookup (bind_ancestors, e->path)) {
            snprintf (why, why_size, "manifest entry %.300s shadows this machine's toolchain",
                      e->path);
            reason = why;
        }
    }
    zhashx_destroy (&paths);
    zhashx_destroy (&symlinks);
    zhashx_destroy (&bind_ancestors);
    zhashx_destroy (&our_links);
    return reason;
}

// ---------------------------------------------------------------------
//  Missing blobs

uint8_t (*executor_missing (executor_t *self, const job_spec_t *job, const char *tree,
                            size_t *count_p)) [BLOB_HASH_SIZE]
{
    char **binds = NULL, **links = NULL;
    s_job_toolchain (self, job, tree, &binds, &links);
    uint8_t (*missing) [BLOB_HASH_SIZE] = NULL;
    size_t count = 0, cap = 0;
    zhashx_t *seen = zhashx_new ();
    for (size_t i = 0; i < job->entry_count; i++) {
        const manifest_entry_t *e = &job->entries [i];
        if (e->kind != MANIFEST_FILE || !e->path || s_under_any (e->path, binds))
            continue;
        char hex [BLOB_HASH_HEX_SIZE + 1];
        blob_hash_hex (e->hash, hex);
        if (zhashx_lookup (seen, hex) || blob_store_has (self->store, e->hash))
            continue;
        zhashx_insert (seen, hex, (void *) 1);
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            missing = realloc (missing, cap * BLOB_HASH_SIZE);
            if (!missing)
                abort ();
        }
        memcpy (missing [count++], e->hash, BLOB_HASH_SIZE);
    }
    zhashx_destroy (&seen);
    executor_strings_free (&binds);
    executor_strings_free (&links);
    *count_p = count;
    return missing;
}

// ---------------------------------------------------------------------
//  Running

//  ROOT + path; -1 if it does not fit.
static int
s_in_root (const char *root, const char *path, char *out, size_t out_size)
{
    int len = snprintf (out, out_size, "%s%s", root, streq (path, "/") ? "" : path);
    return len < 0 || (size_t) len >= out_size ? -1 : 0;
}

//  Creates the directory `path` (joined to cwd if relative) inside the
//  root, following the root's own symlinks as the sandbox will.
static int
s_make_dir_in_root (const char *root, const char *cwd, const char *path, char **binds)
{
    char joined [JOB_MAX_PATH * 2], resolved [JOB_MAX_PATH], host [JOB_MAX_PATH * 2];
    int len = path [0] == '/' ? snprintf (joined, sizeof (joined), "%s", path)
                              : snprintf (joined, sizeof (joined), "%s/%s", cwd, path);
    if (len < 0 || (size_t) len >= sizeof (joined))
        return -1;
    if (inputs_resolve (root, joined, NULL, NULL, resolved, sizeof (resolved)))
        return -1;
    if (s_is_pseudo_fs (resolved))
        return -1;
    if (s_under_any (resolved, binds))
        return 0;                   //  exists read-only in the sandbox
    if (s_in_root (root, resolved, host, sizeof (host)))
        return -1;
    return s_mkdir_p (host, 0755);
}

//  Makes the directory of `host` (ROOT + path) in the root, each
//  directory once (s_root_dir). Returns 0 or -1.
static int
s_root_parent (zhashx_t *made, char *host, size_t root_len)
{
    char *slash = strrchr (host, '/');
    *slash = 0;
    int rc = s_root_dir (made, host, root_len);
    *slash = '/';
    return rc;
}

//  The symlink `path` -> `target` in the root, its directory made first.
//  Returns 0, or -1 with `why` set.
static int
s_root_symlink (zhashx_t *made, const char *root, const char *path, const char *target,
                char *why, size_t why_size)
{
    char host [JOB_MAX_PATH * 2];
    if (s_in_root (root, path, host, sizeof (host))) {
        snprintf (why, why_size, "path too long: %.300s", path);
        return -1;
    }
    if (s_root_parent (made, host, strlen (root)) || symlink (target, host)) {
        snprintf (why, why_size, "cannot create symlink %.300s", path);
        return -1;
    }
    return 0;
}

//  Builds the root's content. Returns NULL or a failure reason. The
//  outputs' directories, resolved in the root, go into rw_dirs (at most 3,
//  NULL-terminated, caller frees): the sandbox makes only those writable,
//  so every input below one is a private copy, never a hard link shared
//  with the blob store (a compiler could chmod and write it there).
static const char *
s_fill_root (executor_t *self, const job_spec_t *job, const compile_args_t *args,
             const char *root, char **binds, char **links, const s_use_t *use,
             char *rw_dirs [4], zhashx_t *made, char *why, size_t why_size)
{
    size_t root_len = strlen (root);
    char host [JOB_MAX_PATH * 2];           //  root, root/tmp, proc and dev exist
    //  Directories and files: no symlink exists in the root yet.
    for (size_t i = 0; i < job->entry_count; i++) {
        const manifest_entry_t *e = &job->entries [i];
        if (use [i] != S_USE || e->kind == MANIFEST_SYMLINK)
            continue;
        if (s_in_root (root, e->path, host, sizeof (host))) {
            snprintf (why, why_size, "path too long: %.300s", e->path);
            return why;
        }
        if (e->kind == MANIFEST_DIR) {
            if (s_root_dir (made, host, root_len)) {
                snprintf (why, why_size, "cannot create directory %.300s", e->path);
                return why;
            }
            continue;
        }
        if (s_root_parent (made, host, root_len)) {
            snprintf (why, why_size, "cannot create directory for %.300s", e->path);
            return why;
        }
        //  Write bits off: the file may be a hard link shared with the
        //  store and every other job.
        unsigned mode = (e->mode & 0555) | 0400;
        if (blob_store_materialize (self->store, e->hash, host, mode)) {
            char hex [BLOB_HASH_HEX_SIZE + 1];
            blob_hash_hex (e->hash, hex);
            if (!blob_store_has (self->store, e->hash))
                snprintf (why, why_size, "missing input %s", hex);
            else
                snprintf (why, why_size, "cannot materialize input %.300s (%s)", e->path, hex);
            return why;
        }
    }
    //  Symlinks last: this machine's (toolchain), then the manifest's.
    for (int pass = 0; pass < 2; pass++) {
        size_t count = pass == 0 ? 0 : job->entry_count;
        if (pass == 0)
            while (links && links [count])
                count += 2;
        for (size_t i = 0; i < count; i += pass == 0 ? 2 : 1) {
            const char *path, *target;
            if (pass == 0) {
                path = links [i];
                target = links [i + 1];
            }
            else {
                if (use [i] != S_USE || job->entries [i].kind != MANIFEST_SYMLINK)
                    continue;
                path = job->entries [i].path;
                target = job->entries [i].target;
            }
            if (s_root_symlink (made, root, path, target, why, why_size))
                return why;
        }
    }
    //  The working, include and output directories, through the root's
    //  symlinks (an -I dir that did not exist at the origin is not in the
    //  manifest and stays absent, as it was there).
    if (s_make_dir_in_root (root, "/", job->cwd, binds)) {
        snprintf (why, why_size, "cannot create the working directory %.300s", job->cwd);
        return why;
    }
    const char *outputs [] = { args->output, args->depfile, args->dwo };
    for (size_t i = 0; i < 3; i++) {
        if (!outputs [i])
            continue;
        char dir [JOB_MAX_PATH * 2];
        int len = outputs [i][0] == '/'
                ? snprintf (dir, sizeof (dir), "%s", outputs [i])
                : snprintf (dir, sizeof (dir), "%s/%s", job->cwd, outputs [i]);
        if (len < 0 || (size_t) len >= sizeof (dir)) {
            snprintf (why, why_size, "output path too long");
            return why;
        }
        char resolved [JOB_MAX_PATH];
        if (inputs_resolve (root, dir, NULL, NULL, resolved, sizeof (resolved))
        ||  s_is_pseudo_fs (resolved) || s_under_any (resolved, binds)) {
            snprintf (why, why_size, "output %.300s is outside the job root", outputs [i]);
            return why;
        }
        //  An output that already exists in the root is an input (or the
        //  toolchain): writing it would change a shared hard link.
        struct stat st;
        if (s_in_root (root, resolved, host, sizeof (host)) || lstat (host, &st) == 0) {
            snprintf (why, why_size, "output %.300s would overwrite an input", outputs [i]);
            return why;
        }
        *strrchr (dir, '/') = 0;
        if (s_make_dir_in_root (root, "/", *dir ? dir : "/", binds)) {
            snprintf (why, why_size, "cannot create the directory of %.300s", outputs [i]);
            return why;
        }
        *strrchr (resolved, '/') = 0;
        if (!*resolved || s_under_any (resolved, binds)) {
            snprintf (why, why_size, "output %.300s is outside the job root", outputs [i]);
            return why;
        }
        bool known = false;
        size_t count = 0;
        for (; rw_dirs [count]; count++)
            known |= streq (rw_dirs [count], resolved);
        if (!known)
            rw_dirs [count] = strdup (resolved);
    }
    //  Private copies of the inputs the writable directories expose.
    for (size_t i = 0; i < job->entry_count; i++) {
        const manifest_entry_t *e = &job->entries [i];
        if (use [i] != S_USE || e->kind != MANIFEST_FILE || !s_under_any (e->path, rw_dirs))
            continue;
        if (s_in_root (root, e->path, host, sizeof (host)) || unlink (host)
        ||  blob_store_materialize (self->store, e->hash, host, (e->mode & 0777) | 0600)) {
            snprintf (why, why_size, "cannot copy input %.300s", e->path);
            return why;
        }
    }
    return NULL;
}

//  Builds the root's content (s_fill_root), making each directory once.
static const char *
s_build_root (executor_t *self, const job_spec_t *job, const compile_args_t *args,
              const char *root, char **binds, char **links, const s_use_t *use,
              char *rw_dirs [4], char *why, size_t why_size)
{
    zhashx_t *made = zhashx_new ();
    const char *reason = s_fill_root (self, job, args, root, binds, links, use, rw_dirs,
                                      made, why, why_size);
    zhashx_destroy (&made);
    return reason;
}

//  Reads one output back from the root. Returns 1 if read, 0 if absent,
//  -1 on error (why set).
static int
s_collect_output (const char *root, const char *cwd, const char *output,
                  uint64_t *budget, job_output_t *out, char *why, size_t why_size)
{
    char joined [JOB_MAX_PATH * 2], origin [JOB_MAX_PATH], resolved [JOB_MAX_PATH];
    char host [JOB_MAX_PATH * 2];
    int len = output [0] == '/' ? snprintf (joined, sizeof (joined), "%s", output)
                                : snprintf (joined, sizeof (joined), "%s/%s", cwd, output);
    if (len < 0 || (size_t) len >= sizeof (joined)
    ||  s_lexical ("/", joined, origin, sizeof (origin))
    ||  inputs_resolve (root, joined, NULL, NULL, resolved, sizeof (resolved))
    ||  s_in_root (root, resolved, host, sizeof (host))) {
        snprintf (why, why_size, "output path %.300s does not resolve", output);
        return -1;
    }
    int fd = open (host, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        close (fd);
        return 0;
    }
    if ((uint64_t) st.st_size > *budget) {
        close (fd);
        snprintf (why, why_size, "outputs exceed the output limit");
        return -1;
    }
    uint8_t *data = (uint8_t *) malloc ((size_t) st.st_size + 1);
    size_t got = 0;
    while (got < (size_t) st.st_size) {
        ssize_t n = read (fd, data + got, (size_t) st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close (fd);
    if (got != (size_t) st.st_size) {
        free (data);
        snprintf (why, why_size, "cannot read output %.300s", output);
        return -1;
    }
    *budget -= got;
    out->path = strdup (origin);
    out->mode = st.st_mode & 0777;
    out->data = data;
    out->size = got;
    return 1;
}

//  Compiler messages that mean the run hit a limit, crashed or could not
//  run at all rather than found an error in the code: the origin compiles
//  locally instead.
static const char *
s_limit_message (const uint8_t *err, size_t size)
{
    static const char *markers [] = {
        "virtual memory exhausted", "out of memory allocating",
        "Cannot allocate memory", "File size limit exceeded",
        "internal compiler error", "terminated signal", "Killed signal",
        //  The driver could not start one of its programs (gcc: "fatal
        //  error: cannot execute 'cc1plus'"; clang: "unable to execute
        //  command"): this machine's toolchain is broken, not the code.
        "cannot execute ", "unable to execute command",
        NULL
    };
    if (!err)
        return NULL;
    for (const char **m = markers; *m; m++)
        if (memmem (err, size, *m, strlen (*m)))
            return *m;
    return NULL;
}

//  argv[0] of `job`, looked up as the sandbox will (INPUTS_SANDBOX_PATH,
//  symlinks followed inside the tree), must be the job's compiler path, a
//  regular file of the tree. Returns 0, or -1 with why set.
static int
s_tree_compiler (const char *tree, const job_spec_t *job, char *why, size_t why_size)
{
    const char *argv0 = job->argv [0];
    if (strchr (argv0, '/') && argv0 [0] != '/') {
        snprintf (why, why_size, "%.300s is not a compiler path", argv0);
        return -1;
    }
    const char *dirs [] = { "/usr/bin", "/bin", NULL };
    for (int i = 0; argv0 [0] == '/' ? i < 1 : dirs [i] != NULL; i++) {
        char candidate [JOB_MAX_PATH], resolved [JOB_MAX_PATH], host [JOB_MAX_PATH * 2];
        if (argv0 [0] == '/')
            snprintf (candidate, sizeof candidate, "%s", argv0);
        else
            snprintf (candidate, sizeof candidate, "%s/%s", dirs [i], argv0);
        struct stat st;
        if (inputs_resolve (tree, candidate, NULL, NULL, resolved, sizeof resolved)
        ||  (size_t) snprintf (host, sizeof host, "%s%s", tree, resolved) >= sizeof host
        ||  lstat (host, &st) || !S_ISREG (st.st_mode))
            continue;
        if (streq (resolved, job->compiler.path))
            return 0;
        break;
    }
    snprintf (why, why_size, "%.300s is not the toolchain's compiler %.300s",
              argv0, job->compiler.path);
    return -1;
}

//  Splits a toolchain's symlinks (path, target pairs) into those whose
//  directory is one of the tree's (`late`: s_place_tree makes them unless
//  a bound directory brings them; ext4 spends ~70 us on a symlink) and the
//  others (`early`: the merged-/usr links /bin, /lib, /lib64, made with
//  the root so that the job's paths resolve through them). Both arrays
//  borrow the strings.
static void
s_split_links (char **links, char **dirs, char ***early_p, char ***late_p)
{
    zhashx_t *tree_dirs = zhashx_new ();
    for (size_t i = 0; dirs && dirs [i]; i++)
        zhashx_insert (tree_dirs, dirs [i], (void *) 1);
    size_t count = 0;
    while (links && links [count])
        count++;
    char **early = (char **) zmalloc ((count + 2) * sizeof (char *));
    char **late = (char **) zmalloc ((count + 2) * sizeof (char *));
    size_t e = 0, l = 0;
    for (size_t i = 0; i + 1 < count; i += 2) {
        char parent [JOB_MAX_PATH];
        snprintf (parent, sizeof parent, "%s", links [i]);
        char *slash = strrchr (parent, '/');
        if (slash)
            *slash = 0;
        char **into = zhashx_lookup (tree_dirs, parent)? late: early;
        size_t *at = into == late? &l: &e;
        into [(*at)++] = links [i];
        into [(*at)++] = links [i + 1];
    }
    zhashx_destroy (&tree_dirs);
    *early_p = early;
    *late_p = late;
}

//  Places the unpacked toolchain in the root: its directories that hold
//  nothing of the job's are bound whole from the tree (returned in
//  *dir_binds_p, a handful: /etc, /usr/bin, /usr/lib/gcc, ...), and only
//  the files of the rest (directories the job also has inputs, output
//  directories, the working directory or this machine's binds in) are
//  hard-linked into the root (the same file system: both live in the
//  node's directory). Either way the sandbox sees exactly the tree's
//  files there, read-only, and a bound directory costs one mount instead
//  of a link per file on the job's critical path. `dirs` is the tree's
//  directories, parents first.
static int
s_place_tree (const char *tree, char **files, char **dirs, char **links, const char *root,
              const job_spec_t *job, const s_use_t *use, char *const rw_dirs [],
              char *const host_binds [], char ***dir_binds_p, char *why, size_t why_size)
{
    //  A directory is kept out of the binds when anything the sandbox
    //  needs there is not the tree's: a job entry strictly below it, an
    //  output directory, the working directory, a host bind, /tmp.
    zhashx_t *blocked = zhashx_new ();
    for (size_t i = 0; i < job->entry_count; i++)
        if (use [i] == S_USE)
            s_block (blocked, job->entries [i].path, false);
    for (size_t i = 0; rw_dirs [i]; i++)
        s_block (blocked, rw_dirs [i], true);
    for (size_t i = 0; host_binds && host_binds [i]; i++)
        s_block (blocked, host_binds [i], true);
    char cwd [JOB_MAX_PATH];
    if (inputs_resolve (root, job->cwd, NULL, NULL, cwd, sizeof cwd) == 0)
        s_block (blocked, cwd, true);
    s_block (blocked, job->cwd, true);
    size_t dir_count = 0;
    while (dirs && dirs [dir_count])
        dir_count++;
    char **dir_binds = (char **) zmalloc ((dir_count + 1) * sizeof (char *));
    size_t bound = 0;
    for (size_t i = 0; i < dir_count; i++) {
        //  Parents come first: a directory below a bound one comes with it.
        //  Below /tmp never: the sandbox's private /tmp comes after these
        //  binds and would hide them (the root's /tmp entries, links
        //  included, are bound back instead).
        if (zhashx_lookup (blocked, dirs [i]) || s_under (dirs [i], "/tmp")
        ||  s_under_any (dirs [i], dir_binds))
            continue;
        dir_binds [bound++] = strdup (dirs [i]);
    }
    zhashx_destroy (&blocked);

    //  Each directory is made once (a toolchain is ~160 files in a few
    //  dozen directories): no mkdir per file on the job's critical path.
    zhashx_t *made = zhashx_new ();
    int rc = 0;
    for (size_t i = 0; rc == 0 && files && files [i]; i++) {
        if (s_under_any (files [i], dir_binds))
            continue;
        char from [JOB_MAX_PATH * 2], to [JOB_MAX_PATH * 2];
        if (s_in_root (tree, files [i], from, sizeof from)
        ||  s_in_root (root, files [i], to, sizeof to)) {
            snprintf (why, why_size, "toolchain path too long: %.300s", files [i]);
            rc = -1;
            break;
        }
        rc = s_root_parent (made, to, strlen (root));
        if (rc || (link (from, to) && errno != EEXIST)) {
            snprintf (why, why_size, "cannot place toolchain file %.300s: %s",
                      files [i], strerror (errno));
            rc = -1;
        }
    }
    //  The tree's symlinks inside its directories (path, target pairs):
    //  those in a bound directory come with it.
    for (size_t i = 0; rc == 0 && links && links [i]; i += 2)
        if (!s_under_any (links [i], dir_binds))
            rc = s_root_symlink (made, root, links [i], links [i + 1], why, why_size);
    zhashx_destroy (&made);
    if (rc)
        executor_strings_free (&dir_binds);
    *dir_binds_p = dir_binds;
    return rc;
}

void
executor_run (executor_t *self, const job_spec_t *job, const char *tree, job_result_t *result)
{
    uint64_t started = s_now_us ();
    char why [JOB_MAX_REASON];
    compile_args_t *args = NULL;
    char **binds = NULL, **links = NULL, **envp = NULL;
    char **input_dirs = NULL;
    s_use_t *use = NULL;
    char job_dir [JOB_MAX_PATH] = "";
    char root [JOB_MAX_PATH + 8] = "";
    char *rw_dirs [4] = { NULL, NULL, NULL, NULL };
    char **tree_files = NULL, **tree_dirs = NULL, **host_binds = NULL, **dir_binds = NULL;
    char **early_links = NULL, **late_links = NULL;     //  borrow links' strings
    bool pinned = false;

    //  (a) the same compiler
    if (!job->argv || job->argc < 1 || !job->argv [0] || !job->cwd) {
        job_result_fail (result, "malformed job");
        goto done;
    }
    compiler_identity_t ours;
    memset (&ours, 0, sizeof ours);
    if (tree) {
        //  The toolchain's compiler: argv[0] must reach the job's compiler
        //  path inside it, as it will in the sandbox.
        if (s_tree_compiler (tree, job, why, sizeof why)) {
            job_result_fail (result, "refused: %s", why);
            goto done;
        }
    }
    else {
        if (compiler_identity_get (job->compiler.path, &ours)) {
            job_result_fail (result, "compiler identity mismatch: no compiler %.300s here",
                             job->compiler.path);
            goto done;
        }
        if (!compiler_identity_equal (&job->compiler, &ours)) {
            compiler_identity_diff (&job->compiler, &ours, why, sizeof (why));
            job_result_fail (result, "compiler identity mismatch: %s", why);
            goto done;
        }
        //  argv[0] must reach exactly that compiler in the sandbox
        char found [JOB_MAX_PATH], real [PATH_MAX];
        if ((strchr (job->argv [0], '/') && job->argv [0][0] != '/')
        ||  inputs_which (job->argv [0], INPUTS_SANDBOX_PATH, found, sizeof (found))
        ||  !realpath (found, real) || !streq (real, ours.path)) {
            job_result_fail (result, "refused: %.300s is not the compiler %.300s",
                             job->argv [0], ours.path);
            goto done;
        }
    }
    const char *bad = s_check_path (job->cwd);
    if (bad) {
        job_result_fail (result, "refused: working directory %.300s %s", job->cwd, bad);
        goto done;
    }
    //  (b) arguments
    size_t dir_count = 0;
    input_dirs = (char **) zmalloc ((job->entry_count + 1) * sizeof (char *));
    for (size_t i = 0; i < job->entry_count; i++)
        if (job->entries [i].kind == MANIFEST_DIR && job->entries [i].path)
            input_dirs [dir_count++] = job->entries [i].path;
    //  Never compile_args_parse: it would open @files a peer names on our disk.
    args = compile_args_parse_received (job->argc, job->argv, job->cwd);
    const char *refusal = args ? compile_args_sanitise (args, job->cwd, input_dirs) : "unparsable";
    if (refusal) {
        job_result_fail (result, strncmp (refusal, "refused", 7) == 0 ? "%s" : "refused: %s",
                         refusal);
        goto done;
    }
    //  (c) manifest
    if (tree) {
        if (s_tree_get (self, tree, &tree_files, &links, &tree_dirs)) {
            job_result_fail (result, "unavailable: cannot read the toolchain in %.300s", tree);
            goto done;
        }
        //  Inputs at a toolchain file's path are the toolchain's (the same
        //  compiler's own headers); locales come from this machine.
        size_t count = 0;
        while (tree_files [count])
            count++;
        binds = (char **) zmalloc ((count + 3) * sizeof (char *));
        host_binds = (char **) zmalloc (3 * sizeof (char *));
        size_t n = 0, h = 0;
        for (size_t i = 0; i < count; i++)
            binds [n++] = strdup (tree_files [i]);
        static const char *locales [] = { "/usr/lib/locale", "/usr/share/locale", NULL };
        for (const char **l = locales; *l; l++) {
            struct stat st;
            if (stat (*l, &st) == 0 && S_ISDIR (st.st_mode)) {
                binds [n++] = strdup (*l);
                host_binds [h++] = strdup (*l);
            }
        }
    }
    else
        s_toolchain_get (self, &ours, &binds, &links);
    use = (s_use_t *) zmalloc ((job->entry_count + 1) * sizeof (s_use_t));
    if (s_plan (job, binds, links, use, why, sizeof (why))) {
        job_result_fail (result, "refused: %s", why);
        goto done;
    }
    //  (d) every blob pinned while the root is built (one that is missing
    //  fails its materialisation below with "missing input HASH")
    for (size_t i = 0; i < job->entry_count; i++)
        if (use [i] == S_USE && job->entries [i].kind == MANIFEST_FILE)
            blob_store_pin (self->store, job->entries [i].hash);
    pinned = true;

    //  (e) the root: a spare one, else made now
    pthread_mutex_lock (&self->mutex);
    char *spare = (char *) zlistx_first (self->spares);
    if (spare) {
        snprintf (job_dir, sizeof (job_dir), "%s", spare);
        zlistx_delete (self->spares, NULL);     //  the first: frees the string
    }
    pthread_cond_signal (&self->wake);          //  make another
    pthread_mutex_unlock (&self->mutex);
    if (!spare) {
        char *made = s_make_spare (self);
        if (!made) {
            job_result_fail (result, "cannot create a job directory in %.300s: %s",
                             self->area, strerror (errno));
            goto done;
        }
        snprintf (job_dir, sizeof (job_dir), "%s", made);
        free (made);
    }
    snprintf (root, sizeof (root), "%s/root", job_dir);
    if (tree)
        s_split_links (links, tree_dirs, &early_links, &late_links);
    if (s_build_root (self, job, args, root, binds, tree? early_links: links, use, rw_dirs,
                      why, sizeof (why))
    ||  (tree && s_place_tree (tree, tree_files, tree_dirs, late_links, root, job, use, rw_dirs,
                               host_binds, &dir_binds, why, sizeof (why)))) {
        job_result_fail (result, "%s", why);
        goto done;
    }
    for (size_t i = 0; i < job->entry_count; i++)
        if (use [i] == S_USE && job->entries [i].kind == MANIFEST_FILE)
            blob_store_unpin (self->store, job->entries [i].hash);
    pinned = false;

    //  (f) run
    char **relevant = inputs_relevant_env (job->envp);
    size_t env_count = 0;
    while (relevant [env_count])
        env_count++;
    envp = (char **) zmalloc ((env_count + 2) * sizeof (char *));
    memcpy (envp, relevant, env_count * sizeof (char *));
    free (relevant);
    if (asprintf (&envp [env_count], "PWD=%s", job->cwd) < 0)
        abort ();
    sandbox_spec_t spec = {
        .root = root,
        .ro_binds = (const char *const *) (tree ? host_binds : binds),
        .tree = tree,
        .tree_binds = (const char *const *) dir_binds,
        .rw_dirs = (const char *const *) rw_dirs,
        .private_tmp = true,
        .cwd = job->cwd,
        .envp = envp
    };
    sandbox_limits_t limits = {
        .cpu_seconds = self->limits.cpu_seconds,
        .memory_bytes = self->limits.memory_bytes,
        .file_bytes = self->limits.output_bytes,
        .output_bytes = self->limits.output_bytes,
        .wall_ms = self->limits.wall_seconds * 1000
    };
    uint64_t compile_started = s_now_us ();
    result->setup_us = compile_started - started;
    sandbox_result_t run;
    if (sandbox_run (&spec, job->argv, &limits, &run, why, sizeof (why))) {
        job_result_fail (result, "sandbox: %s", why);
        goto done;
    }
    result->compile_us = s_now_us () - compile_started;
    const char *limit = NULL;
    if (run.err_size >= 7 && memcmp (run.err, "bwrap: ", 7) == 0) {
        int len = 0;
        while ((size_t) len < run.err_size && len < 300 && run.err [len] != '\n')
            len++;
        job_result_fail (result, "sandbox: %.*s", len, (char *) run.err);
    }
    else
    if (run.wall_killed)
        job_result_fail (result, "killed at the wall-clock limit (%u s)", self->limits.wall_seconds);
    else
    if (run.output_truncated)
        job_result_fail (result, "compiler output exceeds the output limit");
    else
    if (run.signalled || run.status >= 128)
        job_result_fail (result, "compiler killed by signal %d", run.status - 128);
    else
    if (self->limits.cpu_seconds && run.cpu_us >= (uint64_t) self->limits.cpu_seconds * 1000000)
        job_result_fail (result, "compiler reached the CPU limit (%u s)", self->limits.cpu_seconds);
    else
    if (run.status != 0 && (limit = s_limit_message (run.err, run.err_size)))
        job_result_fail (result, "compiler failed here (%s)", limit);
    if (result->failure) {
        sandbox_result_clear (&run);
        goto done;
    }
    result->status = run.status;
    result->out = run.out;
    result->out_size = run.out_size;
    result->err = run.err;
    result->err_size = run.err_size;

    //  (g) outputs
    const char *outputs [] = { args->output, args->depfile, args->dwo };
    uint64_t budget = self->limits.output_bytes;
    if (budget > run.out_size + run.err_size)
        budget -= run.out_size + run.err_size;
    result->outputs = (job_output_t *) zmalloc (3 * sizeof (job_output_t));
    for (size_t i = 0; i < 3; i++) {
        if (!outputs [i])
            continue;
        bool duplicate = false;
        for (size_t j = 0; j < i; j++)
            if (outputs [j] && streq (outputs [j], outputs [i]))
                duplicate = true;
        if (duplicate)
            continue;
        int rc = s_collect_output (root, job->cwd, outputs [i], &budget,
                                   &result->outputs [result->output_count], why, sizeof (why));
        if (rc < 0) {
            job_result_fail (result, "%s", why);
            goto done;
        }
        if (rc > 0)
            result->output_count++;
    }
done:
    if (pinned)
        for (size_t i = 0; i < job->entry_count; i++)
            if (use [i] == S_USE && job->entries [i].kind == MANIFEST_FILE)
                blob_store_unpin (self->store, job->entries [i].hash);
    //  (h) nothing stays
    if (*job_dir)
        s_discard (self, job_dir);
    if (!result->setup_us)
        result->setup_us = s_now_us () - started;
    executor_strings_free (&binds);
    executor_strings_free (&links);
    executor_strings_free (&envp);
    executor_strings_free (&tree_files);
    executor_strings_free (&host_binds);
    executor_strings_free (&tree_dirs);
    executor_strings_free (&dir_binds);
    free (early_links);
    free (late_links);
    for (size_t i = 0; rw_dirs [i]; i++)
        free (rw_dirs [i]);
    free (input_dirs);
    free (use);
    compile_args_destroy (&args);
}

void
executor_test (bool verbose)
{
    if (verbose)
        printf (" * executor: ");
    char out [64];
    assert (s_lexical ("/a/b", "../c/./d", out, sizeof (out)) == 0 && streq (out, "/a/c/d"));
    assert (s_lexical ("/", "../x", out, sizeof (out)) == -1);
    assert (s_check_path ("/a//b") != NULL);
    assert (s_check_path ("/proc/self") != NULL);
    assert (s_check_path ("/usr/include/stdio.h") == NULL);
    assert (s_under ("/usr/bin/gcc", "/usr/bin") && !s_under ("/usr/bin2", "/usr/bin"));
    if (verbose)
        printf ("OK\n");
}
