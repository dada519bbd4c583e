//  toolchain: packaging a local compiler, unpacking a verified archive.
//
//  What goes in, and how each file is found (toolchain_files_new):
//  - the driver: the invoked path made absolute (a PATH search for a bare
//    name), resolved component by component like the kernel does; every
//    symlink met on the way (/usr/bin/gcc -> gcc-12 -> x86_64-linux-gnu-
//    gcc-12) becomes a symlink entry at its own path, and the final file a
//    regular entry, so the unpacked tree resolves the invoked path exactly
//    as this machine does. Every file is stored at its resolved path, so
//    no entry ever lies below a symlink.
//  - gcc's programs: `-print-prog-name=P` for cc1, cc1plus, cc1obj,
//    cc1objplus, collect2, lto1, lto-wrapper, as and objcopy. gcc answers
//    a bare name when the program is not in its own directories and then
//    runs it through PATH, so a bare answer is looked up in the sandbox's
//    PATH (INPUTS_SANDBOX_PATH), again recording symlinks (/usr/bin/as ->
//    x86_64-linux-gnu-as). cc1 and as are required of a gcc, the others
//    are taken when the compiler has them.
//  - gcc's files: `-print-file-name=liblto_plugin.so` and `=specs` (taken
//    when the answer is an existing absolute path: gcc answers the bare
//    name otherwise), and the install directory of `-print-search-dirs`
//    with its include/ and include-fixed/ trees: the compiler's own headers
//    (stddef.h, the intrinsics). Nothing else of that directory: on Debian
//    it also holds f951, gnat1, the Ada library and the static libraries
//    of every runtime (240 MB here), none of which a C/C++ compile runs.
//  - clang: the binary (it is its own cc1), as and objcopy when
//    `-print-prog-name` names them (-fno-integrated-as, -gsplit-dwarf),
//    its resource directory (`-print-resource-dir`) without lib/ (the
//    runtime libraries, used only when linking), and the GCC installation
//    clang selected (`-v`: "Selected GCC installation: DIR"): DIR and its
//    crtbegin.o, the file clang 14 looks for to accept it. Without it clang
//    finds no GCC installation and adds no libstdc++ include directories.
//  - the shared libraries of every ELF file above, as this machine's
//    dynamic loader resolves them: `LOADER --list FILE` (what ldd does,
//    without its shell script), where LOADER is the file's PT_INTERP (for
//    a shared object such as the LTO plugin, the driver's). --list maps
//    the objects and prints them without running their code; the output is
//    the transitive closure. It runs with an empty environment (no
//    LD_LIBRARY_PATH, no LD_PRELOAD), as the sandbox will. The loader
//    itself, /etc/ld.so.conf and every entry of /etc/ld.so.conf.d come
//    too; /etc/ld.so.cache does not: it changes whenever any library is
//    installed on the machine, which would change the toolchain's hash,
//    and the loader finds every packaged library without it (they sit in
//    its default multiarch directories, where it resolved them here).
//  - the top-level merged-/usr links (/bin, /lib, /lib64) when they are
//    symlinks: PATH and the loader name /bin/..., /lib64/... paths.
//  Nothing else: no /usr/include (headers travel as job inputs), no
//  locales (the sandbox then runs with messages in C), no gconv modules.
//
//  Why the compiler's own header directories are kept (gcc's include/,
//  clang's resource include/): the compiler would find them among the
//  job's inputs too (the -M listing names every header read, these
//  included), so leaving them out would be safe for the compiler itself;
//  but today's executor takes every input below a toolchain directory
//  from the toolchain rather than from the job (and refuses jobs whose
//  inputs shadow it), so an archive without them would break every
//  compile that includes <stddef.h> until that rule changes. They cost
//  2.8 MB (gcc) and 21 MB (clang) unpacked, much less compressed.
//
//  The archive: entries sorted by name, parents before children; pax
//  restricted (plain ustar headers unless a name or link is too long for
//  them), mtime 0, uid and gid 0, no user or group name, permission bits
//  only (set-id and sticky bits dropped), no atime, ctime, xattrs or ACLs.
//  (A name with non-ASCII bytes would be converted from the process's
//  locale; meshcc never calls setlocale, so that is always "C". The
//  option hdrcharset=BINARY would avoid the question but puts a pax
//  header in front of every entry.) libarchive writes the
//  tar stream; libzstd compresses it here rather than through libarchive's
//  zstd filter because that filter (3.6) cannot enable long-distance
//  matching, which makes the archive a third smaller (see toolchain.h).
//  The result is one ordinary zstd frame: `tar --zstd -xf` reads it.
//
//  Unpacking verifies the whole file's hash before reading one entry, on
//  the same descriptor it then extracts from (a rename of another file
//  over the path after the check changes nothing). libarchive extracts
//  with SECURE_SYMLINKS (no entry written through a symlink) and
//  SECURE_NODOTDOT; names are also checked here first (relative,
//  normalised, strictly increasing, not below a symlink entry), because
//  extraction targets TMP/NAME, an absolute path, so libarchive's own
//  NOABSOLUTEPATHS check cannot be used (it would refuse every entry) and
//  the working directory, which is the whole process's, is never changed.
//  The parent of the destination is canonicalised first so that
//  SECURE_SYMLINKS does not trip on a symlink above it.

#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <czmq.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "meshcc/limits.h"
#include "meshcc/toolchain.h"
#include "meshcc/tree_remove.h"

//  Probes run with exactly this environment: GCC_EXEC_PREFIX,
//  COMPILER_PATH, LD_LIBRARY_PATH and friends would change the answers.
static char *const s_probe_env [] = { "PATH=" INPUTS_SANDBOX_PATH, "LC_ALL=C", NULL };

//  gcc's programs, in the order gcc runs them; see the top.
static const char *const s_gcc_programs [] = {
    "cc1", "cc1plus", "cc1obj", "cc1objplus", "collect2", "lto1", "lto-wrapper",
    "as", "objcopy", NULL
};

//  The merged-/usr links at the top of the tree.
static const char *const s_top_links [] = { "/bin", "/lib", "/lib64", NULL };

//  --------------------------------------------------------------------------
//  Running a probe

//  Runs argv (argv[0] absolute) with s_probe_env, stdin from /dev/null,
//  stdout (and stderr if `with_stderr`, else /dev/null) into a new
//  NUL-terminated buffer of at most COMPILER_PROBE_OUTPUT_MAX bytes (the
//  rest is read and dropped). Killed after COMPILER_PROBE_TIMEOUT_MS.
//  Returns 0 with *out_p (caller frees) and *status_p (waitpid's), or -1.
static int
s_run (char *const argv [], bool with_stderr, char **out_p, int *status_p)
{
    int fds [2];
    if (pipe2 (fds, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, fds [1], 1);
    if (with_stderr)
        posix_spawn_file_actions_adddup2 (&actions, fds [1], 2);
    else
        posix_spawn_file_actions_addopen (&actions, 2, "/dev/null", O_WRONLY, 0);
    //  The node's threads may block signals; a probe must not inherit that
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none, defaults;
    sigemptyset (&none);
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn (&pid, argv [0], &actions, &attr, argv, s_probe_env);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (fds [1]);
    if (rc) {
        close (fds [0]);
        errno = rc;
        return -1;
    }
    size_t size = 0;
    char *out = (char *) zmalloc (COMPILER_PROBE_OUTPUT_MAX + 1);
    int64_t deadline = zclock_mono () + COMPILER_PROBE_TIMEOUT_MS;
    bool killed = false;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            kill (pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd item = { .fd = fds [0], .events = POLLIN };
        int ready = poll (&item, 1, (int) left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue;               //  the deadline check kills
        char buffer [4096];
        ssize_t got = read (fds [0], buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t keep = (size_t) got;
        if (keep > COMPILER_PROBE_OUTPUT_MAX - size)
            keep = COMPILER_PROBE_OUTPUT_MAX - size;
        memcpy (out + size, buffer, keep);
        size += keep;
    }
    close (fds [0]);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    out [size] = 0;
    if (killed) {
        free (out);
        errno = ETIMEDOUT;
        return -1;
    }
    *out_p = out;
    *status_p = status;
    return 0;
}

int
toolchain_probe (const char *compiler, const char *arg, char *out, size_t out_size)
{
    assert (compiler && arg && out);
    char *argv [] = { (char *) compiler, (char *) arg, NULL };
    char *text;
    int status;
    if (s_run (argv, false, &text, &status))
        return -1;
    int rc = -1;
    size_t len = strcspn (text, "\r\n");
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && len > 0 && len < out_size) {
        memcpy (out, text, len);
        out [len] = 0;
        rc = 0;
    }
    free (text);
    return rc;
}

//  --------------------------------------------------------------------------
//  Paths

//  `name` made absolute: itself if it starts with '/', else the first
//  regular executable file DIR/name for DIR in `search` (":"-separated;
//  empty entries skipped, never "."). A relative name with a slash is
//  refused: its meaning depends on the working directory. Returns 0/-1.
static int
s_which (const char *name, const char *search, char *out, size_t out_size)
{
    if (!*name)
        return -1;
    if (*name == '/') {
        if (strlen (name) >= out_size)
            return -1;
        strcpy (out, name);
        return 0;
    }
    if (strchr (name, '/') || !search)
        return -1;
    const char *dir = search;
    while (*dir) {
        size_t len = strcspn (dir, ":");
        if (len > 0 && dir [0] == '/') {
            int n = snprintf (out, out_size, "%.*s/%s", (int) len, dir, name);
            struct stat st;
            if (n > 0 && (size_t) n < out_size && stat (out, &st) == 0
            &&  S_ISREG (st.st_mode) && access (out, X_OK) == 0)
                return 0;
        }
        dir += len;
        if (*dir == ':')
            dir++;
    }
    return -1;
}

//  `path` without empty and "." components; -1 if it is relative or has
//  a ".." (whose meaning depends on symlinks, so it is not a name).
static int
s_normalise (const char *path, char *out, size_t out_size)
{
    if (*path != '/' || out_size < 2)
        return -1;
    size_t len = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        size_t part = strcspn (p, "/");
        if (part == 0)
            break;
        if (part == 2 && p [0] == '.' && p [1] == '.')
            return -1;
        if (!(part == 1 && p [0] == '.')) {
            if (len + 1 + part >= out_size)
                return -1;
            out [len++] = '/';
            memcpy (out + len, p, part);
            len += part;
        }
        p += part;
    }
    if (len == 0)
        out [len++] = '/';
    out [len] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  The file set

typedef struct {
    toolchain_entry_t pub;
    char *name;
    char *target;
} s_entry_t;

struct _toolchain_files_t {
    zhashx_t *by_name;              //  name -> s_entry_t (owned)
    s_entry_t **sorted;             //  after collection
    size_t count;
    toolchain_weak_key_t key;
    bool clang;
    char *err;                      //  the caller's buffer while collecting
    size_t err_size;
};

static void
s_entry_destroy (void **item_p)
{
    s_entry_t *entry = (s_entry_t *) *item_p;
    if (entry) {
        free (entry->name);
        free (entry->target);
        free (entry);
        *item_p = NULL;
    }
}

static int
s_fail (toolchain_files_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->err, self->err_size, format, args);
    va_end (args);
    return -1;
}

//  Adds an entry for absolute `path` (lstat'ed into `st`) unless present.
static void
s_entry_add (toolchain_files_t *self, const char *path, const struct stat *st,
             const char *target)
{
    const char *name = path + 1;
    if (!*name || zhashx_lookup (self->by_name, name))
        return;
    s_entry_t *entry = (s_entry_t *) zmalloc (sizeof (s_entry_t));
    entry->name = strdup (name);
    assert (entry->name);
    entry->pub.name = entry->name;
    entry->pub.mode = (unsigned) st->st_mode & 0777;
    if (S_ISDIR (st->st_mode))
        entry->pub.type = TOOLCHAIN_ENTRY_DIR;
    else
    if (S_ISLNK (st->st_mode)) {
        entry->pub.type = TOOLCHAIN_ENTRY_SYMLINK;
        entry->pub.mode = 0777;
        entry->target = strdup (target);
        assert (entry->target);
        entry->pub.target = entry->target;
    }
    else {
        entry->pub.type = TOOLCHAIN_ENTRY_FILE;
        entry->pub.size = (uint64_t) st->st_size;
    }
    zhashx_insert (self->by_name, name, entry);
}

//  Adds every ancestor directory of absolute `path` (all canonical: they
//  must be directories, not symlinks).
static int
s_add_parents (toolchain_files_t *self, const char *path)
{
    char prefix [TOOLCHAIN_PATH_MAX];
    snprintf (prefix, sizeof prefix, "%s", path);
    for (char *slash = strchr (prefix + 1, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        if (!zhashx_lookup (self->by_name, prefix + 1)) {
            struct stat st;
            if (lstat (prefix, &st) || !S_ISDIR (st.st_mode))
                return s_fail (self, "%s is not a directory", prefix);
            s_entry_add (self, prefix, &st, NULL);
        }
        *slash = '/';
    }
    return 0;
}

//  Resolves absolute `path` component by component as the kernel does
//  (a ".." after a symlink goes up from where the link led), recording
//  every symlink met, at its canonical location, as an entry (with its
//  parents) when `self` is not NULL. The canonical path goes into out.
//  Returns 0, or -1 with errno.
static int
s_resolve (toolchain_files_t *self, const char *path, char *out, size_t out_size)
{
    char canon [TOOLCHAIN_PATH_MAX] = "";           //  "" is "/"
    char rest [TOOLCHAIN_PATH_MAX];
    if (*path != '/' || strlen (path) >= sizeof rest) {
        errno = EINVAL;
        return -1;
    }
    strcpy (rest, path);
    size_t at = 0;
    int links = 0;
    while (rest [at]) {
        while (rest [at] == '/')
            at++;
        size_t len = strcspn (rest + at, "/");
        if (len == 0)
            break;
        char component [NAME_MAX + 1];
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy (component, rest + at, len);
        component [len] = 0;
        at += len;
        if (streq (component, "."))
            continue;
        if (streq (component, "..")) {
            char *slash = strrchr (canon, '/');
            if (slash)
                *slash = 0;
            continue;
        }
        char candidate [TOOLCHAIN_PATH_MAX];
        if (snprintf (candidate, sizeof candidate, "%s/%s", canon, component)
            >= (int) sizeof candidate) {
            errno = ENAMETOOLONG;
            return -1;
        }
        struct stat st;
        if (lstat (candidate, &st))
            return -1;
        if (S_ISLNK (st.st_mode)) {
            if (++links > INPUTS_MAX_SYMLINKS) {
                errno = ELOOP;
                return -1;
            }
            char target [TOOLCHAIN_PATH_MAX];
            ssize_t got = readlink (candidate, target, sizeof target - 1);
            if (got <= 0)
                return -1;
            target [got] = 0;
            if (self) {
                s_entry_add (self, candidate, &st, target);
                if (s_add_parents (self, candidate))
                    return -1;
            }
            char next [TOOLCHAIN_PATH_MAX];
            if (snprintf (next, sizeof next, "%s%s", target, rest + at) >= (int) sizeof next) {
                errno = ENAMETOOLONG;
                return -1;
            }
            strcpy (rest, next);
            at = 0;
            if (*target == '/')
                canon [0] = 0;
            continue;
        }
        if (rest [at] && !S_ISDIR (st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        strcpy (canon, candidate);
    }
    if (snprintf (out, out_size, "%s", *canon ? canon : "/") >= (int) out_size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

//  Adds `path` (absolute): the symlinks on the way, the file or directory
//  it leads to, and its parents. The canonical path goes into resolved
//  (if not NULL). Returns 0, or -1 with a message.
static int
s_add_path (toolchain_files_t *self, const char *path, char *resolved, size_t resolved_size)
{
    char canon [TOOLCHAIN_PATH_MAX];
    struct stat st;
    if (s_resolve (self, path, canon, sizeof canon) || lstat (canon, &st))
        return s_fail (self, "cannot resolve %s: %s", path, strerror (errno));
    if (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode))
        return s_fail (self, "%s is neither a file nor a directory", canon);
    if (streq (canon, "/"))
        return s_fail (self, "%s leads to /", path);
    s_entry_add (self, canon, &st, NULL);
    if (s_add_parents (self, canon))
        return -1;
    if (resolved)
        snprintf (resolved, resolved_size, "%s", canon);
    return 0;
}

//  Adds the directory `path` (canonical) and everything below it, except
//  its top-level child `skip` (if not NULL). Symlinks inside are kept as
//  symlinks, never followed; FIFOs, sockets and devices are left out.
static int
s_add_tree (toolchain_files_t *self, const char *path, const char *skip, int depth)
{
    if (depth > 64)
        return s_fail (self, "%s is nested too deep", path);
    struct stat st;
    if (lstat (path, &st) || !S_ISDIR (st.st_mode))
        return s_fail (self, "%s is not a directory", path);
    s_entry_add (self, path, &st, NULL);
    if (depth == 0 && s_add_parents (self, path))
        return -1;
    DIR *dir = opendir (path);
    if (!dir)
        return s_fail (self, "cannot read %s: %s", path, strerror (errno));
    int rc = 0;
    struct dirent *item;
    while (rc == 0 && (item = readdir (dir))) {
        if (streq (item->d_name, ".") || streq (item->d_name, "..")
        ||  (skip && streq (item->d_name, skip)))
            continue;
        char child [TOOLCHAIN_PATH_MAX];
        if (snprintf (child, sizeof child, "%s/%s", path, item->d_name) >= (int) sizeof child) {
            rc = s_fail (self, "path too long below %s", path);
            break;
        }
        if (lstat (child, &st)) {
            rc = s_fail (self, "cannot stat %s: %s", child, strerror (errno));
            break;
        }
        if (S_ISDIR (st.st_mode))
            rc = s_add_tree (self, child, NULL, depth + 1);
        else
        if (S_ISREG (st.st_mode))
            s_entry_add (self, child, &st, NULL);
        else
        if (S_ISLNK (st.st_mode)) {
            char target [TOOLCHAIN_PATH_MAX];
            ssize_t got = readlink (child, target, sizeof target - 1);
            if (got <= 0)
                rc = s_fail (self, "cannot read link %s", child);
            else {
                target [got] = 0;
                s_entry_add (self, child, &st, target);
            }
        }
    }
    closedir (dir);
    return rc;
}

//  Adds the symlink at `path` itself (not what it leads to), if it is one.
static int
s_add_link_only (toolchain_files_t *self, const char *path)
{
    struct stat st;
    if (lstat (path, &st) || !S_ISLNK (st.st_mode))
        return 0;
    char target [TOOLCHAIN_PATH_MAX];
    ssize_t got = readlink (path, target, sizeof target - 1);
    if (got <= 0)
        return s_fail (self, "cannot read link %s", path);
    target [got] = 0;
    s_entry_add (self, path, &st, target);
    return s_add_parents (self, path);
}

//  --------------------------------------------------------------------------
//  ELF files and their libraries

//  Whether `path` is an ELF file; its PT_INTERP (the dynamic loader it
//  names) into interp, or "" if it names none (a shared object, or a
//  static program). Returns 1 (ELF), 0 (not ELF) or -1 (unreadable).
static int
s_elf_interp (const char *path, char *interp, size_t interp_size)
{
    interp [0] = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = 0;
    unsigned char ident [EI_NIDENT];
    if (pread (fd, ident, sizeof ident, 0) != (ssize_t) sizeof ident
    ||  memcmp (ident, ELFMAG, SELFMAG) != 0)
        goto done;
    rc = 1;
    uint64_t phoff, phnum, phentsize;
    if (ident [EI_CLASS] == ELFCLASS64) {
        Elf64_Ehdr header;
        if (pread (fd, &header, sizeof header, 0) != (ssize_t) sizeof header)
            goto bad;
        phoff = header.e_phoff;
        phnum = header.e_phnum;
        phentsize = header.e_phentsize;
        if (phentsize != sizeof (Elf64_Phdr))
            goto bad;
    }
    else
    if (ident [EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr header;
        if (pread (fd, &header, sizeof header, 0) != (ssize_t) sizeof header)
            goto bad;
        phoff = header.e_phoff;
        phnum = header.e_phnum;
        phentsize = header.e_phentsize;
        if (phentsize != sizeof (Elf32_Phdr))
            goto bad;
    }
    else
        goto bad;
    for (uint64_t i = 0; i < phnum && i < 256; i++) {
        uint64_t type, offset, size;
        if (ident [EI_CLASS] == ELFCLASS64) {
            Elf64_Phdr ph;
            if (pread (fd, &ph, sizeof ph, (off_t) (phoff + i * phentsize)) != (ssize_t) sizeof ph)
                goto bad;
            type = ph.p_type, offset = ph.p_offset, size = ph.p_filesz;
        }
        else {
            Elf32_Phdr ph;
            if (pread (fd, &ph, sizeof ph, (off_t) (phoff + i * phentsize)) != (ssize_t) sizeof ph)
                goto bad;
            type = ph.p_type, offset = ph.p_offset, size = ph.p_filesz;
        }
        if (type != PT_INTERP)
            continue;
        if (size < 2 || size >= interp_size
        ||  pread (fd, interp, size, (off_t) offset) != (ssize_t) size)
            goto bad;
        interp [size] = 0;
        if (interp [0] != '/' || strlen (interp) != size - 1)
            goto bad;
        break;
    }
    goto done;
bad:
    interp [0] = 0;
    rc = -1;
done:
    close (fd);
    return rc;
}

//  Adds the shared libraries `program` (canonical) loads, as the loader
//  resolves them, and the loader. `loader` is used for ELF files that
//  name none (shared objects); a non-ELF file adds nothing.
static int
s_add_libraries (toolchain_files_t *self, const char *program, const char *loader)
{
    char interp [TOOLCHAIN_PATH_MAX];
    int elf = s_elf_interp (program, interp, sizeof interp);
    if (elf < 0)
        return s_fail (self, "cannot read the ELF headers of %s", program);
    if (elf == 0)
        return 0;
    if (!*interp) {
        if (!loader || !*loader)
            return 0;               //  static, and no loader to ask
        snprintf (interp, sizeof interp, "%s", loader);
    }
    char interp_resolved [TOOLCHAIN_PATH_MAX];
    if (s_add_path (self, interp, interp_resolved, sizeof interp_resolved))
        return -1;
    char *argv [] = { interp_resolved, "--list", (char *) program, NULL };
    char *text;
    int status;
    if (s_run (argv, false, &text, &status))
        return s_fail (self, "cannot run %s --list %s: %s", interp, program, strerror (errno));
    int rc = 0;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        //  A static executable: "not a dynamic executable", exit 1
        free (text);
        return 0;
    }
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line && rc == 0;
         line = strtok_r (NULL, "\n", &save)) {
        if (strstr (line, "=> not found")) {
            while (*line == '\t' || *line == ' ')
                line++;
            rc = s_fail (self, "%s needs %s, which the loader cannot find", program, line);
            break;
        }
        char *start = strstr (line, "=> ");
        start = start ? start + 3 : line;
        while (*start == ' ' || *start == '\t')
            start++;
        if (*start != '/')
            continue;               //  linux-vdso.so.1 and the like
        char *end = strstr (start, " (0x");
        if (end)
            *end = 0;
        rc = s_add_path (self, start, NULL, 0);
    }
    free (text);
    return rc;
}

//  --------------------------------------------------------------------------
//  Weak key

static int
s_stat_key (const char *resolved, toolchain_weak_key_t *key)
{
    struct stat st;
    if (stat (resolved, &st) || !S_ISREG (st.st_mode))
        return -1;
    key->size = (uint64_t) st.st_size;
    key->mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    key->inode = (uint64_t) st.st_ino;
    return 0;
}

//  The weak key of `compiler`, recording the symlinks from the invoked
//  path to the driver in `self` if not NULL.
static int
s_weak_key (toolchain_files_t *self, const char *compiler, toolchain_weak_key_t *key,
            char *err, size_t err_size)
{
    memset (key, 0, sizeof *key);
    char found [TOOLCHAIN_PATH_MAX];
    const char *search = getenv ("PATH");
    if (s_which (compiler, search ? search : INPUTS_SANDBOX_PATH, found, sizeof found)) {
        snprintf (err, err_size, strchr (compiler, '/')
                  ? "%s: give the compiler as an absolute path or a name to look up in PATH"
                  : "%s: not found in PATH", compiler);
        return -1;
    }
    if (s_normalise (found, key->compiler, sizeof key->compiler)) {
        snprintf (err, err_size, "%s: the compiler's path must not contain ..", found);
        return -1;
    }
    if (s_resolve (self, key->compiler, key->resolved, sizeof key->resolved)
    ||  s_stat_key (key->resolved, key)) {
        snprintf (err, err_size, "%s: cannot resolve it to a regular file: %s", key->compiler,
                  strerror (errno));
        return -1;
    }
    //  Probes run the path as invoked, as a job will
    if (toolchain_probe (key->compiler, "-dumpmachine", key->target, sizeof key->target)) {
        snprintf (err, err_size, "%s -dumpmachine failed: not a gcc or clang?", key->compiler);
        return -1;
    }
    if (toolchain_probe (key->compiler, "-dumpfullversion", key->version, sizeof key->version)
    &&  toolchain_probe (key->compiler, "-dumpversion", key->version, sizeof key->version)) {
        snprintf (err, err_size, "%s -dumpversion failed: not a gcc or clang?", key->compiler);
        return -1;
    }
    return 0;
}

int
toolchain_weak_key (const char *compiler, toolchain_weak_key_t *key, char *err, size_t err_size)
{
    assert (compiler && key);
    return s_weak_key (NULL, compiler, key, err, err_size);
}

//  --------------------------------------------------------------------------
//  Collecting

//  `-print-prog-name=NAME`, found as the compiler would run it, into out.
//  Returns 0, or -1 if the compiler has no such program.
static int
s_program (const char *compiler, const char *name, char *out, size_t out_size)
{
    char arg [64], answer [TOOLCHAIN_PATH_MAX];
    snprintf (arg, sizeof arg, "-print-prog-name=%s", name);
    if (toolchain_probe (compiler, arg, answer, sizeof answer))
        return -1;
    if (strchr (answer, '/') && *answer != '/')
        return -1;
    if (s_which (answer, INPUTS_SANDBOX_PATH, out, out_size))
        return -1;
    return access (out, X_OK);
}

//  `-print-file-name=NAME` if it is an existing absolute path (gcc
//  answers the bare name when it has no such file).
static int
s_file_name (const char *compiler, const char *name, char *out, size_t out_size)
{
    char arg [128];
    snprintf (arg, sizeof arg, "-print-file-name=%s", name);
    struct stat st;
    if (toolchain_probe (compiler, arg, out, out_size) || *out != '/' || stat (out, &st))
        return -1;
    return 0;
}

static int
s_collect_gcc (toolchain_files_t *self, const char *compiler, const char *loader)
{
    for (const char *const *name = s_gcc_programs; *name; name++) {
        char program [TOOLCHAIN_PATH_MAX], resolved [TOOLCHAIN_PATH_MAX];
        if (s_program (compiler, *name, program, sizeof program)) {
            if (streq (*name, "cc1") || streq (*name, "as"))
                return s_fail (self, "%s -print-prog-name=%s names no program", compiler, *name);
            continue;
        }
        if (s_add_path (self, program, resolved, sizeof resolved)
        ||  s_add_libraries (self, resolved, loader))
            return -1;
    }
    char path [TOOLCHAIN_PATH_MAX], resolved [TOOLCHAIN_PATH_MAX];
    if (s_file_name (compiler, "liblto_plugin.so", path, sizeof path) == 0
    &&  (s_add_path (self, path, resolved, sizeof resolved)
    ||   s_add_libraries (self, resolved, loader)))
        return -1;
    if (s_file_name (compiler, "specs", path, sizeof path) == 0
    &&  s_add_path (self, path, NULL, 0))
        return -1;

    //  "install: /usr/lib/gcc/x86_64-linux-gnu/12/" on the first line
    char *argv [] = { (char *) compiler, "-print-search-dirs", NULL };
    char *text;
    int status;
    if (s_run (argv, false, &text, &status))
        return s_fail (self, "cannot run %s -print-search-dirs", compiler);
    int rc = 0;
    if (strncmp (text, "install: /", 10) == 0) {
        char install [TOOLCHAIN_PATH_MAX], canon [TOOLCHAIN_PATH_MAX];
        snprintf (install, sizeof install, "%.*s", (int) strcspn (text + 9, "\r\n"), text + 9);
        if (s_add_path (self, install, canon, sizeof canon) == 0) {
            static const char *const headers [] = { "include", "include-fixed", NULL };
            for (const char *const *h = headers; *h && rc == 0; h++) {
                char dir [TOOLCHAIN_PATH_MAX], dir_canon [TOOLCHAIN_PATH_MAX];
                struct stat st;
                if (snprintf (dir, sizeof dir, "%s/%s", canon, *h) >= (int) sizeof dir)
                    continue;
                if (lstat (dir, &st) == 0
                &&  (s_resolve (self, dir, dir_canon, sizeof dir_canon)
                ||   s_add_tree (self, dir_canon, NULL, 0)))
                    rc = -1;
            }
        }
        else
            rc = -1;
    }
    else
        rc = s_fail (self, "%s -print-search-dirs names no install directory", compiler);
    free (text);
    return rc;
}

static int
s_collect_clang (toolchain_files_t *self, const char *compiler, const char *resource,
                 const char *loader)
{
    static const char *const programs [] = { "as", "objcopy", NULL };
    for (const char *const *name = programs; *name; name++) {
        char program [TOOLCHAIN_PATH_MAX], resolved [TOOLCHAIN_PATH_MAX];
        if (s_program (compiler, *name, program, sizeof program))
            continue;
        if (s_add_path (self, program, resolved, sizeof resolved)
        ||  s_add_libraries (self, resolved, loader))
            return -1;
    }
    char canon [TOOLCHAIN_PATH_MAX];
    if (s_resolve (self, resource, canon, sizeof canon))
        return s_fail (self, "cannot resolve %s: %s", resource, strerror (errno));
    if (s_add_tree (self, canon, "lib", 0))
        return -1;

    //  The GCC installation clang uses for libstdc++ and crt files
    char *argv [] = { (char *) compiler, "-v", NULL };
    char *text;
    int status;
    if (s_run (argv, true, &text, &status))
        return s_fail (self, "cannot run %s -v", compiler);
    int rc = 0;
    const char *line = strstr (text, "Selected GCC installation: ");
    if (line) {
        line += strlen ("Selected GCC installation: ");
        char dir [TOOLCHAIN_PATH_MAX], crt [TOOLCHAIN_PATH_MAX], dir_canon [TOOLCHAIN_PATH_MAX];
        snprintf (dir, sizeof dir, "%.*s", (int) strcspn (line, "\r\n"), line);
        if (*dir == '/' && s_add_path (self, dir, dir_canon, sizeof dir_canon) == 0) {
            if (snprintf (crt, sizeof crt, "%s/crtbegin.o", dir_canon) < (int) sizeof crt
            &&  access (crt, R_OK) == 0)
                rc = s_add_path (self, crt, NULL, 0);
        }
        else
        if (*dir == '/')
            rc = -1;
    }
    free (text);
    return rc;
}

static int
s_compare_entries (const void *a, const void *b)
{
    return strcmp ((*(s_entry_t *const *) a)->name, (*(s_entry_t *const *) b)->name);
}

toolchain_files_t *
toolchain_files_new (const char *compiler, char *err, size_t err_size)
{
    assert (compiler && err && err_size > 0);
    toolchain_files_t *self = (toolchain_files_t *) zmalloc (sizeof (toolchain_files_t));
    self->by_name = zhashx_new ();
    zhashx_set_destructor (self->by_name, s_entry_destroy);
    self->err = err;
    self->err_size = err_size;
    err [0] = 0;
    if (s_weak_key (self, compiler, &self->key, err, err_size))
        goto fail;
    const char *driver = self->key.resolved;
    const char *invoked = self->key.compiler;
    if (s_add_path (self, driver, NULL, 0))
        goto fail;

    //  A wrapper script would need its interpreter, and whatever it runs
    char loader [TOOLCHAIN_PATH_MAX];
    int elf = s_elf_interp (driver, loader, sizeof loader);
    if (elf <= 0) {
        s_fail (self, elf < 0 ? "cannot read the ELF headers of %s"
                              : "%s is not an ELF executable (a wrapper script?)", driver);
        goto fail;
    }
    if (s_add_libraries (self, driver, loader))
        goto fail;

    char resource [TOOLCHAIN_PATH_MAX];
    struct stat st;
    self->clang = toolchain_probe (invoked, "-print-resource-dir", resource, sizeof resource) == 0
               && *resource == '/' && stat (resource, &st) == 0 && S_ISDIR (st.st_mode);
    if (self->clang? s_collect_clang (self, invoked, resource, loader)
                   : s_collect_gcc (self, invoked, loader))
        goto fail;

    //  What the loader reads besides libraries
    if (*loader) {
        static const char *const files [] = { "/etc/ld.so.conf", NULL };
        for (const char *const *f = files; *f; f++)
            if (lstat (*f, &st) == 0 && s_add_path (self, *f, NULL, 0))
                goto fail;
        DIR *dir = opendir ("/etc/ld.so.conf.d");
        if (dir) {
            if (s_add_path (self, "/etc/ld.so.conf.d", NULL, 0)) {
                closedir (dir);
                goto fail;
            }
            struct dirent *item;
            int rc = 0;
            while (rc == 0 && (item = readdir (dir))) {
                char path [TOOLCHAIN_PATH_MAX];
                if (item->d_name [0] == '.')
                    continue;
                snprintf (path, sizeof path, "/etc/ld.so.conf.d/%s", item->d_name);
                rc = s_add_path (self, path, NULL, 0);
            }
            closedir (dir);
            if (rc)
                goto fail;
        }
    }
    for (const char *const *t = s_top_links; *t; t++)
        if (s_add_link_only (self, *t))
            goto fail;

    self->count = zhashx_size (self->by_name);
    self->sorted = (s_entry_t **) zmalloc ((self->count + 1) * sizeof (s_entry_t *));
    size_t n = 0;
    for (s_entry_t *e = (s_entry_t *) zhashx_first (self->by_name); e;
         e = (s_entry_t *) zhashx_next (self->by_name))
        self->sorted [n++] = e;
    qsort (self->sorted, n, sizeof (s_entry_t *), s_compare_entries);
    self->err = NULL;
    return self;

fail:
    if (!err [0])
        snprintf (err, err_size, "cannot package %s", compiler);
    toolchain_files_destroy (&self);
    return NULL;
}

void
toolchain_files_destroy (toolchain_files_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        toolchain_files_t *self = *self_p;
        zhashx_destroy (&self->by_name);
        free (self->sorted);
        free (self);
        *self_p = NULL;
    }
}

size_t
toolchain_files_size (toolchain_files_t *self)
{
    return self->count;
}

const toolchain_entry_t *
toolchain_files_get (toolchain_files_t *self, size_t index)
{
    return index < self->count ? &self->sorted [index]->pub : NULL;
}

const toolchain_entry_t *
toolchain_files_find (toolchain_files_t *self, const char *name)
{
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->by_name, name);
    return entry ? &entry->pub : NULL;
}

const toolchain_weak_key_t *
toolchain_files_key (toolchain_files_t *self)
{
    return &self->key;
}

bool
toolchain_files_clang (toolchain_files_t *self)
{
    return self->clang;
}

//  --------------------------------------------------------------------------
//  Writing the archive: libarchive's tar stream through libzstd into a
//  file, hashing the compressed bytes on the way

typedef struct {
    int fd;
    ZSTD_CCtx *cctx;
    crypto_generichash_state hash;
    uint64_t written;
    uint8_t *out;
    size_t out_size;
} s_sink_t;

static int
s_sink_emit (s_sink_t *sink, const uint8_t *data, size_t size)
{
    crypto_generichash_update (&sink->hash, data, size);
    sink->written += size;
    while (size > 0) {
        ssize_t done = write (sink->fd, data, size);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return -1;
        data += done;
        size -= (size_t) done;
    }
    return 0;
}

static int
s_sink_compress (s_sink_t *sink, const void *data, size_t size, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = { data, size, 0 };
    while (true) {
        ZSTD_outBuffer out = { sink->out, sink->out_size, 0 };
        size_t left = ZSTD_compressStream2 (sink->cctx, &out, &in, mode);
        if (ZSTD_isError (left)) {
            errno = EIO;
            return -1;
        }
        if (out.pos && s_sink_emit (sink, sink->out, out.pos))
            return -1;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static la_ssize_t
s_sink_write (struct archive *archive, void *arg, const void *buffer, size_t length)
{
    s_sink_t *sink = (s_sink_t *) arg;
    if (s_sink_compress (sink, buffer, length, ZSTD_e_continue)) {
        archive_set_error (archive, errno, "cannot write the archive: %s", strerror (errno));
        return -1;
    }
    return (la_ssize_t) length;
}

//  Writes one entry (a file's bytes read from its absolute path).
static int
s_write_entry (struct archive *archive, struct archive_entry *entry,
               const toolchain_entry_t *e, uint8_t *buffer, size_t buffer_size,
               toolchain_pace_fn *pace, void *pace_arg, char *err, size_t err_size)
{
    archive_entry_clear (entry);
    archive_entry_set_pathname (entry, e->name);
    archive_entry_set_mtime (entry, 0, 0);
    archive_entry_set_uid (entry, 0);
    archive_entry_set_gid (entry, 0);
    int fd = -1;
    if (e->type == TOOLCHAIN_ENTRY_DIR) {
        archive_entry_set_filetype (entry, AE_IFDIR);
        archive_entry_set_perm (entry, e->mode);
    }
    else
    if (e->type == TOOLCHAIN_ENTRY_SYMLINK) {
        archive_entry_set_filetype (entry, AE_IFLNK);
        archive_entry_set_perm (entry, 0777);
        archive_entry_set_symlink (entry, e->target);
    }
    else {
        char path [TOOLCHAIN_PATH_MAX];
        snprintf (path, sizeof path, "/%s", e->name);
        struct stat st;
        fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstat (fd, &st) || !S_ISREG (st.st_mode)
        ||  (uint64_t) st.st_size != e->size) {
            snprintf (err, err_size, "%s changed or vanished while it was packaged", path);
            if (fd >= 0)
                close (fd);
            return -1;
        }
        archive_entry_set_filetype (entry, AE_IFREG);
        archive_entry_set_perm (entry, e->mode);
        archive_entry_set_size (entry, (la_int64_t) e->size);
    }
    if (archive_write_header (archive, entry) != ARCHIVE_OK) {
        snprintf (err, err_size, "cannot write the header of %s: %s", e->name,
                  archive_error_string (archive));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    if (fd < 0)
        return 0;
    uint64_t total = 0;
    int rc = 0;
    while (true) {
        if (pace && pace (pace_arg)) {
            snprintf (err, err_size, "stopped while packaging /%s", e->name);
            rc = -1;
            break;
        }
        ssize_t got = read (fd, buffer, buffer_size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (err, err_size, "cannot read /%s: %s", e->name, strerror (errno));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        total += (uint64_t) got;
        if (total > e->size)
            break;
        if (archive_write_data (archive, buffer, (size_t) got) != got) {
            snprintf (err, err_size, "cannot write /%s: %s", e->name,
                      archive_error_string (archive));
            rc = -1;
            break;
        }
    }
    close (fd);
    if (rc == 0 && total != e->size) {
        snprintf (err, err_size, "/%s changed while it was packaged", e->name);
        rc = -1;
    }
    return rc;
}

//  Writes the archive of `files` into `fd`; the hash and size of what was
//  written into *hash / *size_p.
static int
s_write_archive (toolchain_files_t *files, int fd, toolchain_pace_fn *pace, void *pace_arg,
                 uint8_t hash [BLOB_HASH_SIZE], uint64_t *size_p, char *err, size_t err_size)
{
    s_sink_t sink = { .fd = fd, .cctx = ZSTD_createCCtx (),
                      .out_size = ZSTD_CStreamOutSize () };
    assert (sink.cctx);
    sink.out = (uint8_t *) zmalloc (sink.out_size);
    crypto_generichash_init (&sink.hash, NULL, 0, BLOB_HASH_SIZE);
    //  Every parameter that changes the bytes is set, none left to defaults
    //  that another build could change; nbWorkers 0 (one thread) because
    //  multi-threaded zstd cuts the input into jobs, which gives other bytes.
    ZSTD_CCtx *cctx = sink.cctx;
    if (ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_compressionLevel, TOOLCHAIN_ZSTD_LEVEL))
    ||  ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_windowLog, TOOLCHAIN_ZSTD_WINDOW_LOG))
    ||  ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_enableLongDistanceMatching, 1))
    ||  ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_checksumFlag, 1))
    ||  ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_contentSizeFlag, 0))
    ||  ZSTD_isError (ZSTD_CCtx_setParameter (cctx, ZSTD_c_nbWorkers, 0))) {
        snprintf (err, err_size, "cannot set up zstd");
        ZSTD_freeCCtx (sink.cctx);
        free (sink.out);
        return -1;
    }
    struct archive *archive = archive_write_new ();
    assert (archive);
    struct archive_entry *entry = archive_entry_new ();
    assert (entry);
    //  libarchive cuts the stream into blocks of its own, so the size of
    //  our reads changes no byte of the archive, only how often `pace` runs.
    size_t buffer_size = TOOLCHAIN_PACE_BYTES;
    uint8_t *buffer = (uint8_t *) zmalloc (buffer_size);
    int rc = -1;
    if (archive_write_set_format_pax_restricted (archive) != ARCHIVE_OK
    ||  archive_write_add_filter_none (archive) != ARCHIVE_OK
    ||  archive_write_set_bytes_per_block (archive, 10240) != ARCHIVE_OK
    ||  archive_write_open2 (archive, &sink, NULL, s_sink_write, NULL, NULL) != ARCHIVE_OK) {
        snprintf (err, err_size, "cannot start the archive: %s", archive_error_string (archive));
        goto done;
    }
    for (size_t i = 0; i < files->count; i++)
        if (s_write_entry (archive, entry, &files->sorted [i]->pub, buffer, buffer_size,
                           pace, pace_arg, err, err_size))
            goto done;
    if (archive_write_close (archive) != ARCHIVE_OK) {
        snprintf (err, err_size, "cannot finish the archive: %s", archive_error_string (archive));
        goto done;
    }
    if (s_sink_compress (&sink, NULL, 0, ZSTD_e_end)) {
        snprintf (err, err_size, "cannot write the archive: %s", strerror (errno));
        goto done;
    }
    crypto_generichash_final (&sink.hash, hash, BLOB_HASH_SIZE);
    *size_p = sink.written;
    rc = 0;
done:
    archive_entry_free (entry);
    archive_write_free (archive);
    ZSTD_freeCCtx (sink.cctx);
    free (sink.out);
    free (buffer);
    return rc;
}

//  Removes DIR's ".tmp-*" files older than TOOLCHAIN_TMP_MAX_AGE_S.
static void
s_sweep_temporaries (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    time_t now = time (NULL);
    struct dirent *item;
    while ((item = readdir (handle))) {
        if (strncmp (item->d_name, ".tmp-", 5) != 0)
            continue;
        struct stat st;
        if (fstatat (dirfd (handle), item->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0
        &&  S_ISREG (st.st_mode) && now - st.st_mtime > TOOLCHAIN_TMP_MAX_AGE_S)
            unlinkat (dirfd (handle), item->d_name, 0);
    }
    closedir (handle);
}

int
toolchain_archive_path (const char *dir, const uint8_t hash [BLOB_HASH_SIZE],
                        char *out, size_t out_size)
{
    char hex [BLOB_HASH_HEX_SIZE + 1];
    blob_hash_hex (hash, hex);
    int len = snprintf (out, out_size, "%s/toolchains/%s.tar.zst", dir, hex);
    return len < 0 || (size_t) len >= out_size ? -1 : 0;
}

int
toolchain_package (const char *compiler, const char *dir, toolchain_info_t *info,
                   char *err, size_t err_size)
{
    return toolchain_package_paced (compiler, dir, NULL, NULL, info, err, err_size);
}

int
toolchain_package_paced (const char *compiler, const char *dir,
                         toolchain_pace_fn *pace, void *pace_arg,
                         toolchain_info_t *info, char *err, size_t err_size)
{
    assert (compiler && dir && info && err);
    memset (info, 0, sizeof *info);
    char store [TOOLCHAIN_PATH_MAX], temp [TOOLCHAIN_PATH_MAX];
    if (snprintf (store, sizeof store, "%s/toolchains", dir) >= (int) sizeof store
    ||  snprintf (temp, sizeof temp, "%s/.tmp-XXXXXX", store) >= (int) sizeof temp) {
        snprintf (err, err_size, "%s: path too long", dir);
        return -1;
    }
    if ((mkdir (dir, 0700) && errno != EEXIST) || (mkdir (store, 0700) && errno != EEXIST)) {
        snprintf (err, err_size, "cannot create %s: %s", store, strerror (errno));
        return -1;
    }
    s_sweep_temporaries (store);
    toolchain_files_t *files = toolchain_files_new (compiler, err, err_size);
    if (!files)
        return -1;
    int fd = mkostemp (temp, O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, err_size, "cannot create a file in %s: %s", store, strerror (errno));
        toolchain_files_destroy (&files);
        return -1;
    }
    int rc = -1;
    if (s_write_archive (files, fd, pace, pace_arg, info->hash, &info->archive_size,
                         err, err_size))
        goto done;
    if (fchmod (fd, 0444)) {
        snprintf (err, err_size, "cannot chmod %s: %s", temp, strerror (errno));
        goto done;
    }
    //  A compiler upgraded meanwhile would leave an archive of neither
    //  version under the old weak key.
    toolchain_weak_key_t after = files->key;
    if (s_stat_key (files->key.resolved, &after)
    ||  after.size != files->key.size || after.mtime_ns != files->key.mtime_ns
    ||  after.inode != files->key.inode) {
        snprintf (err, err_size, "%s changed while it was packaged", files->key.resolved);
        goto done;
    }
    blob_hash_hex (info->hash, info->hex);
    if (toolchain_archive_path (dir, info->hash, info->archive, sizeof info->archive)) {
        snprintf (err, err_size, "%s: path too long", dir);
        goto done;
    }
    if (rename (temp, info->archive)) {
        snprintf (err, err_size, "cannot rename %s to %s: %s", temp, info->archive, strerror (errno));
        goto done;
    }
    info->key = files->key;
    info->clang = files->clang;
    info->entries = files->count;
    for (size_t i = 0; i < files->count; i++)
        if (files->sorted [i]->pub.type == TOOLCHAIN_ENTRY_FILE) {
            info->files++;
            info->unpacked_size += files->sorted [i]->pub.size;
        }
    rc = 0;
done:
    close (fd);
    if (rc)
        unlink (temp);
    toolchain_files_destroy (&files);
    return rc;
}

//  --------------------------------------------------------------------------
//  Unpacking

//  Why `name` (an entry's, a directory's trailing slash removed) is not
//  acceptable, or NULL.
static const char *
s_bad_name (const char *name)
{
    if (!*name)
        return "an empty name";
    if (*name == '/')
        return "an absolute name";
    for (const char *p = name; *p; ) {
        size_t len = strcspn (p, "/");
        if (len == 0)
            return "an empty component";
        if (len == 1 && p [0] == '.')
            return "a . component";
        if (len == 2 && p [0] == '.' && p [1] == '.')
            return "a .. component";
        p += len;
        if (*p == '/')
            p++;
        if (!*p && p [-1] == '/')
            return "a trailing slash";
    }
    return NULL;
}

//  Whether some proper prefix of `name` is a symlink entry in `links`.
static bool
s_below_link (zhashx_t *links, const char *name)
{
    char prefix [TOOLCHAIN_PATH_MAX];
    snprintf (prefix, sizeof prefix, "%s", name);
    for (char *slash = strchr (prefix, '/'); slash; slash = strchr (slash + 1, '/')) {
        *slash = 0;
        bool found = zhashx_lookup (links, prefix) != NULL;
        *slash = '/';
        if (found)
            return true;
    }
    return false;
}

//  Extracts the archive open on `fd` into the existing directory `root`.
static int
s_extract (int fd, const char *root, char *err, size_t err_size)
{
    struct archive *reader = archive_read_new ();
    struct archive *writer = archive_write_disk_new ();
    assert (reader && writer);
    archive_read_support_filter_zstd (reader);
    archive_read_support_format_tar (reader);
    //  No NOABSOLUTEPATHS: every target is ROOT/NAME, absolute; names are
    //  checked by s_bad_name instead (see the top).
    archive_write_disk_set_options (writer, ARCHIVE_EXTRACT_SECURE_SYMLINKS
                                          | ARCHIVE_EXTRACT_SECURE_NODOTDOT
                                          | ARCHIVE_EXTRACT_NO_OVERWRITE
                                          | ARCHIVE_EXTRACT_PERM);
    zhashx_t *links = zhashx_new ();
    char previous [TOOLCHAIN_PATH_MAX] = "";
    uint64_t entries = 0, bytes = 0;
    int rc = -1;
    if (archive_read_open_fd (reader, fd, 64 * 1024) != ARCHIVE_OK) {
        snprintf (err, err_size, "cannot read the archive: %s", archive_error_string (reader));
        goto done;
    }
    while (true) {
        struct archive_entry *entry;
        int status = archive_read_next_header (reader, &entry);
        if (status == ARCHIVE_EOF)
            break;
        if (status != ARCHIVE_OK) {
            snprintf (err, err_size, "cannot read the archive: %s", archive_error_string (reader));
            goto done;
        }
        const char *raw = archive_entry_pathname (entry);
        char name [TOOLCHAIN_PATH_MAX];
        if (!raw || strlen (raw) >= sizeof name) {
            snprintf (err, err_size, "archive entry without a usable name");
            goto done;
        }
        strcpy (name, raw);
        mode_t type = archive_entry_filetype (entry);
        size_t len = strlen (name);
        if (type == AE_IFDIR && len > 1 && name [len - 1] == '/')
            name [len - 1] = 0;
        const char *bad = s_bad_name (name);
        if (!bad && archive_entry_hardlink (entry))
            bad = "a hard link";
        if (!bad && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
            bad = "a device, FIFO or socket";
        if (!bad && type == AE_IFLNK
        &&  (!archive_entry_symlink (entry) || !*archive_entry_symlink (entry)))
            bad = "a symlink without a target";
        if (!bad && strcmp (name, previous) <= 0)
            bad = "a name out of order or repeated";
        if (!bad && s_below_link (links, name))
            bad = "a name below a symlink";
        if (!bad && ++entries > TOOLCHAIN_ENTRIES_MAX)
            bad = "too many entries";
        if (!bad && type == AE_IFREG) {
            la_int64_t size = archive_entry_size (entry);
            bytes += size > 0 ? (uint64_t) size : 0;
            if (size < 0 || bytes > TOOLCHAIN_UNPACKED_MAX)
                bad = "more bytes than a toolchain";
        }
        if (bad) {
            snprintf (err, err_size, "refused: archive entry \"%.300s\" is %s", raw, bad);
            goto done;
        }
        strcpy (previous, name);
        if (type == AE_IFLNK)
            zhashx_insert (links, name, (void *) 1);

        char target [TOOLCHAIN_PATH_MAX];
        if (snprintf (target, sizeof target, "%s/%s", root, name) >= (int) sizeof target) {
            snprintf (err, err_size, "archive entry %.300s: path too long", name);
            goto done;
        }
        archive_entry_set_pathname (entry, target);
        archive_entry_set_perm (entry, type == AE_IFLNK ? 0777 : archive_entry_perm (entry) & 0777);
        if (archive_write_header (writer, entry) != ARCHIVE_OK) {
            snprintf (err, err_size, "cannot extract %.300s: %s", name, archive_error_string (writer));
            goto done;
        }
        if (type == AE_IFREG) {
            const void *block;
            size_t size;
            la_int64_t offset;
            while ((status = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
                if (archive_write_data_block (writer, block, size, offset) != ARCHIVE_OK) {
                    status = ARCHIVE_FATAL;
                    break;
                }
            if (status != ARCHIVE_EOF) {
                snprintf (err, err_size, "cannot extract %.300s: %s", name,
                          archive_error_string (status == ARCHIVE_FATAL ? writer : reader)
                          ? archive_error_string (status == ARCHIVE_FATAL ? writer : reader)
                          : "read error");
                goto done;
            }
        }
        if (archive_write_finish_entry (writer) != ARCHIVE_OK) {
            snprintf (err, err_size, "cannot extract %.300s: %s", name, archive_error_string (writer));
            goto done;
        }
    }
    //  Directory modes are applied at close (libarchive defers them so a
    //  read-only directory can still be filled)
    if (archive_write_close (writer) != ARCHIVE_OK) {
        snprintf (err, err_size, "cannot finish extracting: %s", archive_error_string (writer));
        goto done;
    }
    rc = 0;
done:
    zhashx_destroy (&links);
    archive_read_free (reader);
    archive_write_free (writer);
    return rc;
}

//  Removes DIR's ".NAME.tmp-XXXXXX" directories older than
//  TOOLCHAIN_TMP_MAX_AGE_S: unpackings that crashed.
static void
s_sweep_unpackings (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    time_t now = time (NULL);
    struct dirent *item;
    while ((item = readdir (handle))) {
        const char *mark = strstr (item->d_name, ".tmp-");
        if (item->d_name [0] != '.' || !mark || strlen (mark) != 11)
            continue;
        struct stat st;
        char path [TOOLCHAIN_PATH_MAX];
        if (snprintf (path, sizeof path, "%s/%s", dir, item->d_name) < (int) sizeof path
        &&  lstat (path, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == geteuid ()
        &&  now - st.st_mtime > TOOLCHAIN_TMP_MAX_AGE_S)
            tree_remove (path);
    }
    closedir (handle);
}

int
toolchain_unpack (const char *archive_path, const uint8_t expected_hash [BLOB_HASH_SIZE],
                  const char *dest_dir, char *err, size_t err_size)
{
    assert (archive_path && expected_hash && dest_dir && err);
    struct stat st;
    if (lstat (dest_dir, &st) == 0)
        return 0;                   //  unpacked before (it appears only by rename)

    //  DEST's parent, canonical, and DEST's last component
    char parent [TOOLCHAIN_PATH_MAX], base [NAME_MAX + 1], real_parent [PATH_MAX];
    snprintf (parent, sizeof parent, "%s", dest_dir);
    size_t len = strlen (parent);
    while (len > 1 && parent [len - 1] == '/')
        parent [--len] = 0;
    char *slash = strrchr (parent, '/');
    const char *last = slash ? slash + 1 : parent;
    if (!*last || streq (last, ".") || streq (last, "..") || strlen (last) > NAME_MAX - 12) {
        snprintf (err, err_size, "%s: not a usable destination", dest_dir);
        return -1;
    }
    strcpy (base, last);
    if (slash == parent)
        strcpy (parent, "/");
    else
    if (slash)
        *slash = 0;
    else
        strcpy (parent, ".");
    if (!realpath (parent, real_parent)) {
        snprintf (err, err_size, "cannot resolve %s: %s", parent, strerror (errno));
        return -1;
    }
    char temp [TOOLCHAIN_PATH_MAX], dest [TOOLCHAIN_PATH_MAX];
    const char *sep = streq (real_parent, "/") ? "" : "/";
    if (snprintf (temp, sizeof temp, "%s%s.%s.tmp-XXXXXX", real_parent, sep, base) >= (int) sizeof temp
    ||  snprintf (dest, sizeof dest, "%s%s%s", real_parent, sep, base) >= (int) sizeof dest) {
        snprintf (err, err_size, "%s: path too long", dest_dir);
        return -1;
    }

    //  The hash first, on the descriptor that is then extracted from
    int fd = open (archive_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (err, err_size, "cannot open %s: %s", archive_path, strerror (errno));
        return -1;
    }
    uint8_t hash [BLOB_HASH_SIZE];
    if (blob_hash_fd (fd, hash) || lseek (fd, 0, SEEK_SET) != 0) {
        snprintf (err, err_size, "cannot read %s: %s", archive_path, strerror (errno));
        close (fd);
        return -1;
    }
    if (sodium_memcmp (hash, expected_hash, BLOB_HASH_SIZE) != 0) {
        char want [BLOB_HASH_HEX_SIZE + 1], got [BLOB_HASH_HEX_SIZE + 1];
        blob_hash_hex (expected_hash, want);
        blob_hash_hex (hash, got);
        snprintf (err, err_size, "refused: %s has hash %.16s..., not %.16s...",
                  archive_path, got, want);
        close (fd);
        return -1;
    }
    s_sweep_unpackings (real_parent);
    if (!mkdtemp (temp)) {
        snprintf (err, err_size, "cannot create a directory in %s: %s", real_parent, strerror (errno));
        close (fd);
        return -1;
    }
    int rc = s_extract (fd, temp, err, err_size);
    close (fd);
    if (rc == 0 && chmod (temp, 0755)) {
        snprintf (err, err_size, "cannot chmod %s: %s", temp, strerror (errno));
        rc = -1;
    }
    if (rc == 0 && rename (temp, dest)) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            tree_remove (temp);       //  another unpacking won the race
        else {
            snprintf (err, err_size, "cannot rename %s to %s: %s", temp, dest, strerror (errno));
            rc = -1;
        }
    }
    if (rc)
        tree_remove (temp);
    return rc;
}

//  --------------------------------------------------------------------------
//  Self-test: a small archive written here unpacks; a flipped byte, a
//  wrong hash and a ".." entry are refused with nothing extracted.

static void
s_test_archive (const char *path, const char *evil_name)
{
    struct archive *archive = archive_write_new ();
    archive_write_set_format_pax_restricted (archive);
    archive_write_add_filter_zstd (archive);
    int rc = archive_write_open_filename (archive, path);
    assert (rc == ARCHIVE_OK);
    struct archive_entry *entry = archive_entry_new ();
    const char *names [] = { "usr", "usr/bin", "usr/bin/cc", "usr/bin/tool", evil_name };
    for (size_t i = 0; i < 5 && names [i]; i++) {
        archive_entry_clear (entry);
        archive_entry_set_pathname (entry, names [i]);
        if (i < 2) {
            archive_entry_set_filetype (entry, AE_IFDIR);
            archive_entry_set_perm (entry, 0755);
        }
        else
        if (i == 2) {
            archive_entry_set_filetype (entry, AE_IFLNK);
            archive_entry_set_perm (entry, 0777);
            archive_entry_set_symlink (entry, "tool");
        }
        else {
            archive_entry_set_filetype (entry, AE_IFREG);
            archive_entry_set_perm (entry, 0755);
            archive_entry_set_size (entry, 6);
        }
        rc = archive_write_header (archive, entry);
        assert (rc == ARCHIVE_OK);
        if (archive_entry_filetype (entry) == AE_IFREG)
            archive_write_data (archive, "hello\n", 6);
    }
    archive_entry_free (entry);
    archive_write_close (archive);
    archive_write_free (archive);
}

void
toolchain_test (bool verbose)
{
    if (verbose)
        printf (" * toolchain: ");
    char dir [] = "/tmp/toolchain-test-XXXXXX";
    assert (mkdtemp (dir));
    char archive [128], dest [128], link [256], err [512];
    uint8_t hash [BLOB_HASH_SIZE], wrong [BLOB_HASH_SIZE];
    snprintf (archive, sizeof archive, "%s/good.tar.zst", dir);
    snprintf (dest, sizeof dest, "%s/good", dir);
    s_test_archive (archive, NULL);
    assert (blob_hash_file (archive, hash) == 0);
    memcpy (wrong, hash, sizeof wrong);
    wrong [0] ^= 1;
    assert (toolchain_unpack (archive, wrong, dest, err, sizeof err) == -1);
    assert (access (dest, F_OK) == -1);
    assert (toolchain_unpack (archive, hash, dest, err, sizeof err) == 0);
    snprintf (link, sizeof link, "%s/usr/bin/cc", dest);
    char target [16] = "";
    assert (readlink (link, target, sizeof target - 1) == 4 && streq (target, "tool"));
    struct stat st;
    assert (stat (link, &st) == 0 && st.st_size == 6 && (st.st_mode & 0777) == 0755);

    snprintf (archive, sizeof archive, "%s/evil.tar.zst", dir);
    snprintf (dest, sizeof dest, "%s/evil", dir);
    s_test_archive (archive, "usr/../../escaped");
    assert (blob_hash_file (archive, hash) == 0);
    assert (toolchain_unpack (archive, hash, dest, err, sizeof err) == -1);
    assert (strstr (err, ".."));
    assert (access (dest, F_OK) == -1);
    snprintf (link, sizeof link, "%s/../escaped", dir);
    assert (access (link, F_OK) == -1);

    char line [TOOLCHAIN_TEXT_MAX];
    assert (toolchain_probe ("/bin/echo", "hello", line, sizeof line) == 0);
    assert (streq (line, "hello"));
    assert (toolchain_probe ("/bin/false", "x", line, sizeof line) == -1);
    tree_remove (dir);
    if (verbose)
        printf ("OK\n");
}
