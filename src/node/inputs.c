//  inputs: the origin's dependency listing and job manifest (inputs.h).
//
//  The listing is the compile's own command with its outputs removed and
//  "-M -MF TMP -MT x" added: the compiler itself says which files it reads,
//  so nothing here second-guesses include search rules. Every path the
//  compiler names is then resolved on this machine component by component,
//  exactly as the kernel resolves it, and every symlink met on the way is
//  recorded: the executor rebuilds the same links in its job root, so the
//  compiler there follows the same path to the same bytes, and paths the
//  compiler prints (__FILE__, DWARF, the depfile) stay the ones it saw here.

#include <czmq.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sodium.h>
#include "meshcc/inputs.h"
#include "meshcc/limits.h"

// ---------------------------------------------------------------------
//  Make-rule parser

//  gcc (libcpp mkdeps.c) escapes a space or tab as "\ " (doubling any
//  backslashes before it), '#' as "\#" and '$' as "$$"; a long line is
//  continued with "\\\n". Any other backslash is part of the name.
zlist_t *
inputs_parse_rule (const char *text)
{
    if (!text)
        return NULL;
    const char *p = text;
    //  Skip the target: up to the first unescaped ':' followed by blank,
    //  newline or end.
    while (*p) {
        if (*p == '\\' && p [1]) {
            p += 2;
            continue;
        }
        if (*p == ':' && (p [1] == ' ' || p [1] == '\t' || p [1] == '\n'
                      ||  p [1] == '\r' || p [1] == '\0'))
            break;
        if (*p == '\n')
            return NULL;            //  a line without a rule
        p++;
    }
    if (*p != ':')
        return NULL;
    p++;

    zlist_t *deps = zlist_new ();
    zlist_autofree (deps);
    size_t cap = 256, len = 0;
    char *word = (char *) zmalloc (cap);
    bool in_word = false;
    while (true) {
        char c = *p;
        bool end_of_rule = c == '\0' || c == '\n'
                        || (c == '\r' && p [1] == '\n');
        bool blank = c == ' ' || c == '\t' || c == '\r';
        bool continuation = c == '\\' && (p [1] == '\n'
                        || (p [1] == '\r' && p [2] == '\n'));
        if (end_of_rule || blank || continuation) {
            if (in_word) {
                word [len] = 0;
                zlist_append (deps, word);
                len = 0;
                in_word = false;
            }
            if (end_of_rule)
                break;
            p += continuation ? (p [1] == '\r' ? 3 : 2) : 1;
            continue;
        }
        //  Decode one character of a name
        char out = c;
        size_t step = 1;
        if (c == '\\') {
            //  A run of backslashes before a blank: each pair is one
            //  backslash and the last one escapes the blank.
            size_t run = 0;
            while (p [run] == '\\')
                run++;
            char next = p [run];
            if (next == ' ' || next == '\t') {
                size_t keep = run / 2;
                for (size_t i = 0; i < keep + 1; i++) {
                    if (len + 2 >= cap)
                        word = (char *) realloc (word, cap *= 2);
                    word [len++] = i < keep ? '\\' : next;
                }
                in_word = true;
                p += run + 1;
                continue;
            }
            if (next == '#' && run == 1) {
                out = '#';
                step = 2;
            }
        }
        else
        if (c == '$' && p [1] == '$')
            step = 2;
        if (len + 2 >= cap)
            word = (char *) realloc (word, cap *= 2);
        word [len++] = out;
        in_word = true;
        p += step;
    }
    free (word);
    return deps;
}

// ---------------------------------------------------------------------
//  Path resolution

//  inputs_resolve, plus: prefixes in `known` (when not NULL) are taken as
//  directories without a lookup, and directories looked up are added to
//  it; when the last component was looked up and is not a symlink, *st_p
//  (when not NULL) is its lstat, i.e. its stat, and *st_valid_p is true.
static int
s_resolve (const char *root, const char *path, zhashx_t *known,
           inputs_symlink_fn *on_symlink, void *arg,
           char *resolved, size_t resolved_size, struct stat *st_p, bool *st_valid_p)
{
    if (st_valid_p)
        *st_valid_p = false;
    if (!path || path [0] != '/' || resolved_size < 2)
        return -1;
    if (!root)
        root = "";
    size_t root_len = strlen (root);
    //  `rest` holds the components still to resolve; a symlink's target is
    //  spliced in front of it.
    char *rest = strdup (path);
    char done [JOB_MAX_PATH] = "";      //  resolved prefix, no symlinks
    size_t done_len = 0;
    int links = 0;
    int rc = 0;
    char *cursor = rest;
    while (true) {
        while (*cursor == '/')
            cursor++;
        if (!*cursor)
            break;
        char *slash = strchr (cursor, '/');
        size_t comp_len = slash ? (size_t) (slash - cursor) : strlen (cursor);
        if (comp_len == 1 && cursor [0] == '.') {
            cursor += comp_len;
            continue;
        }
        if (comp_len == 2 && cursor [0] == '.' && cursor [1] == '.') {
            //  The prefix holds no symlink, so popping it is physical.
            char *last = strrchr (done, '/');
            if (last) {
                *last = 0;
                done_len = (size_t) (last - done);
            }
            cursor += comp_len;
            continue;
        }
        if (done_len + 1 + comp_len + 1 > sizeof (done)) {
            rc = -1;
            break;
        }
        size_t saved_len = done_len;
        done [done_len++] = '/';
        memcpy (done + done_len, cursor, comp_len);
        done_len += comp_len;
        done [done_len] = 0;
        cursor += comp_len;

        bool last = cursor [strspn (cursor, "/")] == 0;
        if (!last && known && zhashx_lookup (known, done))
            continue;               //  a directory already looked up
        char host [JOB_MAX_PATH * 2];
        if (root_len + done_len + 1 > sizeof (host)) {
            rc = -1;
            break;
        }
        memcpy (host, root, root_len);
        memcpy (host + root_len, done, done_len + 1);
        struct stat st;
        if (lstat (host, &st))
            continue;               //  absent names resolve lexically
        if (!S_ISLNK (st.st_mode)) {
            if (known && S_ISDIR (st.st_mode))
                zhashx_insert (known, done, (void *) 1);
            if (last && st_p && st_valid_p) {
                *st_p = st;
                *st_valid_p = true;
            }
            continue;
        }
        if (++links > INPUTS_MAX_SYMLINKS) {
            rc = -1;
            break;
        }
        char target [JOB_MAX_PATH];
        ssize_t target_len = readlink (host, target, sizeof (target) - 1);
        if (target_len <= 0 || (size_t) target_len >= sizeof (target) - 1) {
            rc = -1;
            break;
        }
        target [target_len] = 0;
        if (on_symlink)
            on_symlink (done, target, arg);
        //  Continue with target + rest, from "/" or from the link's dir
        char *spliced = NULL;
        if (asprintf (&spliced, "%s/%s", target, cursor) < 0)
            abort ();
        free (rest);
        rest = spliced;
        cursor = rest;
        if (target [0] == '/') {
            done_len = 0;
            done [0] = 0;
        }
        else {
            done_len = saved_len;
            done [done_len] = 0;
        }
    }
    free (rest);
    if (rc == 0) {
        if (done_len == 0)
            snprintf (done, sizeof (done), "/");
        if (strlen (done) + 1 > resolved_size)
            return -1;
        strcpy (resolved, done);
    }
    return rc;
}

int
inputs_resolve (const char *root, const char *path,
                inputs_symlink_fn *on_symlink, void *arg,
                char *resolved, size_t resolved_size)
{
    return s_resolve (root, path, NULL, on_symlink, arg, resolved, resolved_size, NULL, NULL);
}

int
inputs_resolve_known (zhashx_t *known, const char *path,
                      inputs_symlink_fn *on_symlink, void *arg,
                      char *resolved, size_t resolved_size, struct stat *st_p, bool *st_valid_p)
{
    assert (known && st_p && st_valid_p);
    return s_resolve (NULL, path, known, on_symlink, arg, resolved, resolved_size,
                      st_p, st_valid_p);
}

// ---------------------------------------------------------------------
//  Environment

//  Variables that change what the compiler reads or prints. GCC_EXEC_PREFIX
//  is deliberately not shipped: it moves where the driver finds cc1 and
//  as, i.e. which compiler runs, and the executor only runs the compiler
//  whose identity it checked. COMPILER_PATH and LIBRARY_PATH likewise; TZ
//  only matters to __DATE__/__TIME__, which differ between any two
//  compiles anyway. DEPENDENCIES_OUTPUT/SUNPRO_DEPENDENCIES write a
//  depfile the executor could not return, so they are not shipped either
//  (the wrapper should compile such jobs locally).
static bool
s_env_relevant (const char *entry)
{
    static const char *exact [] = {
        "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
        "OBJCPLUS_INCLUDE_PATH", "SOURCE_DATE_EPOCH", "LANG", "LANGUAGE",
        NULL
    };
    const char *eq = strchr (entry, '=');
    if (!eq)
        return false;
    size_t name_len = (size_t) (eq - entry);
    for (const char **e = exact; *e; e++)
        if (strlen (*e) == name_len && memcmp (*e, entry, name_len) == 0)
            return true;
    if (name_len > 3 && memcmp (entry, "LC_", 3) == 0)
        return true;
    if (name_len > 4 && memcmp (entry, "GCC_", 4) == 0)
        return !(name_len == 15 && memcmp (entry, "GCC_EXEC_PREFIX", 15) == 0);
    return false;
}

char **
inputs_relevant_env (char *const envp [])
{
    size_t count = 0;
    for (size_t i = 0; envp && envp [i]; i++)
        count++;
    char **out = (char **) zmalloc ((count + 2) * sizeof (char *));
    size_t n = 0;
    for (size_t i = 0; envp && envp [i] && n < JOB_MAX_ENV - 1; i++)
        if (s_env_relevant (envp [i]))
            out [n++] = strdup (envp [i]);
    out [n++] = strdup ("PATH=" INPUTS_SANDBOX_PATH);
    out [n] = NULL;
    return out;
}

// ---------------------------------------------------------------------
//  Program lookup

int
inputs_which (const char *name, const char *search_path, char *out, size_t out_size)
{
    if (strchr (name, '/')) {
        if ((size_t) snprintf (out, out_size, "%s", name) >= out_size)
            return -1;
        return access (out, X_OK) == 0 ? 0 : -1;
    }
    if (!search_path)
        search_path = INPUTS_SANDBOX_PATH;
    const char *dir = search_path;
    while (true) {
        const char *colon = strchr (dir, ':');
        size_t dir_len = colon ? (size_t) (colon - dir) : strlen (dir);
        if (dir_len == 0) {
            //  An empty PATH entry means the working directory; never
            //  take a compiler from there.
        }
        else
        if ((size_t) snprintf (out, out_size, "%.*s/%s", (int) dir_len, dir, name) < out_size) {
            struct stat st;
            if (stat (out, &st) == 0 && S_ISREG (st.st_mode) && access (out, X_OK) == 0)
                return 0;
        }
        if (!colon)
            break;
        dir = colon + 1;
    }
    return -1;
}

// ---------------------------------------------------------------------
//  Manifest

typedef struct {
    zhashx_t *seen;             //  path -> index+1 into entries
    zhashx_t *known;            //  directories resolved in this pass
    manifest_entry_t *entries;
    size_t count, cap;
} s_manifest_t;

static manifest_entry_t *
s_add (s_manifest_t *m, const char *path, manifest_kind_t kind)
{
    if (zhashx_lookup (m->seen, path))
        return NULL;
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->entries = (manifest_entry_t *) realloc (m->entries, m->cap * sizeof (manifest_entry_t));
        if (!m->entries)
            abort ();
    }
    manifest_entry_t *entry = &m->entries [m->count++];
    memset (entry, 0, sizeof (*entry));
    entry->path = strdup (path);
    entry->kind = kind;
    zhashx_insert (m->seen, path, (void *) (uintptr_t) m->count);
    return entry;
}

static void
s_on_symlink (const char *link, const char *target, void *arg)
{
    manifest_entry_t *entry = s_add ((s_manifest_t *) arg, link, MANIFEST_SYMLINK);
    if (entry) {
        entry->target = strdup (target);
        entry->mode = 0777;
    }
}

//  Adds `path` (absolute, normalised) and the symlinks on its way.
//  Returns 0, or -1 with err set.
static int
s_add_path (s_manifest_t *m, const char *path, bool want_dir, hash_cache_t *hashes,
            char *err, size_t err_size)
{
    char resolved [JOB_MAX_PATH];
    struct stat st;
    bool st_valid;
    if (inputs_resolve_known (m->known, path, s_on_symlink, m, resolved, sizeof (resolved),
                              &st, &st_valid)) {
        snprintf (err, err_size, "cannot resolve %s (symlink loop or too long)", path);
        return -1;
    }
    if (!st_valid && stat (resolved, &st)) {
        if (want_dir)
            return 0;               //  an -I dir that does not exist here
        snprintf (err, err_size, "input %s: %s", path, strerror (errno));
        return -1;
    }
    if (want_dir) {
        if (S_ISDIR (st.st_mode)) {
            manifest_entry_t *entry = s_add (m, resolved, MANIFEST_DIR);
            if (entry)
                entry->mode = st.st_mode & 0777;
        }
        return 0;
    }
    if (S_ISDIR (st.st_mode)) {
        manifest_entry_t *entry = s_add (m, resolved, MANIFEST_DIR);
        if (entry)
            entry->mode = st.st_mode & 0777;
        return 0;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (err, err_size, "input %s is not a regular file", path);
        return -1;
    }
    if (zhashx_lookup (m->seen, resolved))
        return 0;
    uint8_t hash [BLOB_HASH_SIZE];
    bool hit = false;
    if (hash_cache_get (hashes, resolved, &st, hash, &hit)) {
        snprintf (err, err_size, "cannot read input %s", resolved);
        return -1;
    }
    manifest_entry_t *entry = s_add (m, resolved, MANIFEST_FILE);
    memcpy (entry->hash, hash, BLOB_HASH_SIZE);
    entry->size = (uint64_t) st.st_size;
    entry->mode = st.st_mode & 0777;
    return 0;
}

//  The listing command: the compile with its outputs removed.
static char **
s_listing_argv (const compile_args_t *args, const char *depfile, bool verbose)
{
    char **argv = (char **) zmalloc ((size_t) (args->argc + 8) * sizeof (char *));
    int n = 0;
    argv [n++] = args->argv [0];
    for (int i = 1; i < args->argc; i++) {
        const char *a = args->argv [i];
        if (streq (a, "-o") || streq (a, "-MF") || streq (a, "-MT") || streq (a, "-MQ")) {
            i++;
            continue;
        }
        if (streq (a, "-MD") || streq (a, "-MMD") || streq (a, "-MP"))
            continue;
        if ((strncmp (a, "-o", 2) == 0 && strncmp (a, "-objc", 5) != 0)
        ||   strncmp (a, "-MF", 3) == 0 || strncmp (a, "-MT", 3) == 0
        ||   strncmp (a, "-MQ", 3) == 0)
            continue;
        if (strncmp (a, "-Wp,-MD,", 8) == 0 || strncmp (a, "-Wp,-MMD,", 9) == 0)
            continue;
        argv [n++] = (char *) a;
    }
    if (verbose)
        argv [n++] = "-v";
    argv [n++] = "-M";
    argv [n++] = "-MF";
    argv [n++] = (char *) depfile;
    argv [n++] = "-MT";
    argv [n++] = "x";
    argv [n] = NULL;
    return argv;
}

static const char *
s_env_get (char *const envp [], const char *name)
{
    size_t len = strlen (name);
    for (size_t i = 0; envp && envp [i]; i++)
        if (strncmp (envp [i], name, len) == 0 && envp [i][len] == '=')
            return envp [i] + len + 1;
    return NULL;
}

static char *
s_read_text (const char *path, size_t max)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    size_t cap = 64 * 1024, len = 0;
    char *text = (char *) zmalloc (cap);
    while (true) {
        if (len + 1 >= cap) {
            if (cap >= max) {
                free (text);
                fclose (file);
                return NULL;
            }
            text = (char *) realloc (text, cap *= 2);
            if (!text)
                abort ();
        }
        size_t got = fread (text + len, 1, cap - len - 1, file);
        if (got == 0)
            break;
        len += got;
    }
    text [len] = 0;
    fclose (file);
    return text;
}

static int
s_temp_file (char *path, size_t path_size, const char *what, char *err, size_t err_size)
{
    const char *tmpdir = getenv ("TMPDIR");
    snprintf (path, path_size, "%s/meshcc-%s-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp", what);
    int fd = mkstemp (path);
    if (fd < 0) {
        snprintf (err, err_size, "cannot create a temporary file: %s", strerror (errno));
        return -1;
    }
    close (fd);
    return 0;
}

//  Runs the listing with `program`; returns the depfile's text (caller
//  frees) or NULL. With `search_p`, the compiler also prints its search
//  directories (-v, on stderr), returned there (caller frees).
static char *
s_run_listing (const char *program, const compile_args_t *args, const char *cwd,
               char *const envp [], char **search_p, char *err, size_t err_size)
{
    char depfile [JOB_MAX_PATH], errfile [JOB_MAX_PATH] = "";
    if (s_temp_file (depfile, sizeof depfile, "list", err, err_size))
        return NULL;
    if (search_p && s_temp_file (errfile, sizeof errfile, "search", err, err_size)) {
        unlink (depfile);
        return NULL;
    }
    char *text = NULL;
    char **argv = s_listing_argv (args, depfile, search_p != NULL);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen (&actions, 2, *errfile ? errfile : "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addchdir_np (&actions, cwd);
    pid_t pid;
    int rc = posix_spawn (&pid, program, &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy (&actions);
    if (rc) {
        snprintf (err, err_size, "cannot run %s: %s", program, strerror (rc));
        goto done;
    }
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        snprintf (err, err_size, "dependency listing failed (status %d)", status);
        goto done;
    }
    text = s_read_text (depfile, INPUTS_LISTING_MAX);
    if (!text)
        snprintf (err, err_size, "no dependency listing written, or too large");
    if (text && search_p)
        *search_p = s_read_text (errfile, INPUTS_LISTING_MAX);
done:
    free (argv);
    unlink (depfile);
    if (*errfile)
        unlink (errfile);
    return text;
}

zlist_t *
inputs_parse_search (const char *text)
{
    zlist_t *dirs = zlist_new ();
    zlist_autofree (dirs);
    bool in_list = false, saw_end = false;
    const char *line = text;
    while (line && *line) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        char *copy = strndup (line, len);
        static const char nonexistent [] = "ignoring nonexistent directory \"";
        if (strncmp (copy, nonexistent, sizeof nonexistent - 1) == 0) {
            char *name = copy + sizeof nonexistent - 1;
            char *quote = strrchr (name, '"');
            if (quote && quote > name) {
                *quote = 0;
                zlist_append (dirs, name);
            }
        }
        else
        if (strstr (copy, "search starts here:") && copy [0] == '#')
            in_list = true;
        else
        if (streq (copy, "End of search list.")) {
            in_list = false;
            saw_end = true;
        }
        else
        if (in_list && copy [0] == ' ') {
            char *name = copy + 1;
            char *mark = strstr (name, " (framework directory)");
            if (mark)
                *mark = 0;
            if (*name)
                zlist_append (dirs, name);
        }
        free (copy);
        line = end ? end + 1 : NULL;
    }
    if (!saw_end)
        zlist_purge (dirs);
    return dirs;
}

//  `path` made absolute against `cwd` by plain joining: ".." is left for
//  inputs_resolve, which takes it physically, after symlinks, as the
//  kernel does (g++ itself names headers as ".../12/../../../../include").
static int
s_absolute (const char *cwd, const char *path, char *out, size_t out_size)
{
    int len = path [0] == '/' ? snprintf (out, out_size, "%s", path)
                              : snprintf (out, out_size, "%s/%s", cwd, path);
    return len < 0 || (size_t) len >= out_size ? -1 : 0;
}

static int
s_add_dir (s_manifest_t *m, const char *cwd, const char *dir, hash_cache_t *hashes,
           char *err, size_t err_size)
{
    char path [JOB_MAX_PATH];
    if (s_absolute (cwd, dir, path, sizeof (path)))
        return 0;                   //  sanitise refuses such a job anyway
    return s_add_path (m, path, true, hashes, err, err_size);
}

static int
s_add_output_dir (s_manifest_t *m, const char *cwd, const char *file, hash_cache_t *hashes,
                  char *err, size_t err_size)
{
    if (!file)
        return 0;
    char path [JOB_MAX_PATH];
    if (s_absolute (cwd, file, path, sizeof (path)))
        return 0;
    *strrchr (path, '/') = 0;
    if (!path [0])
        strcpy (path, "/");
    return s_add_path (m, path, true, hashes, err, err_size);
}

//  What a listing depends on besides file contents: the compiler binary
//  (path and stamp), the working directory, the listing's arguments and
//  the environment the preprocessor reads.
static void
s_listing_key (const char *program, const compile_args_t *args, const char *cwd,
               char *const envp [], uint8_t key [LISTING_KEY_SIZE])
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, LISTING_KEY_SIZE);
    static const char tag [] = "meshcc listing 1";
    crypto_generichash_update (&state, (const uint8_t *) tag, sizeof tag);
    crypto_generichash_update (&state, (const uint8_t *) program, strlen (program) + 1);
    struct stat st;
    memset (&st, 0, sizeof st);
    if (stat (program, &st) == 0) {
        int64_t fields [] = { (int64_t) st.st_size, (int64_t) st.st_ino, (int64_t) st.st_dev,
                              (int64_t) st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                              (int64_t) st.st_ctim.tv_sec, st.st_ctim.tv_nsec };
        crypto_generichash_update (&state, (const uint8_t *) fields, sizeof fields);
    }
    crypto_generichash_update (&state, (const uint8_t *) cwd, strlen (cwd) + 1);
    char **argv = s_listing_argv (args, "", false);
    for (int i = 0; argv [i]; i++)
        crypto_generichash_update (&state, (const uint8_t *) argv [i], strlen (argv [i]) + 1);
    free (argv);
    crypto_generichash_update (&state, (const uint8_t *) "", 1);
    for (size_t i = 0; envp && envp [i]; i++)
        if (s_env_relevant (envp [i]) || strncmp (envp [i], "GCC_EXEC_PREFIX=", 16) == 0
        ||  strncmp (envp [i], "COMPILER_PATH=", 14) == 0)
            crypto_generichash_update (&state, (const uint8_t *) envp [i], strlen (envp [i]) + 1);
    crypto_generichash_final (&state, key, LISTING_KEY_SIZE);
}

static int64_t
s_realtime_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

_Static_assert (LISTING_HASH_SIZE == BLOB_HASH_SIZE, "listing hashes are blob hashes");

//  listing_hash_fn through the worker's hash cache: the manifest hashes
//  the same files right after, and finds them there.
static int
s_listing_hash (void *arg, const char *path, const struct stat *st,
                uint8_t hash [LISTING_HASH_SIZE])
{
    bool hit;
    return hash_cache_get ((hash_cache_t *) arg, path, st, hash, &hit);
}

//  The paths the compile reads, as the compiler prints them: from the
//  listing cache, or from a listing run now (and kept for next time).
static zlist_t *
s_dependencies (const compile_args_t *args, const char *cwd, char *const envp [],
                listing_cache_t *listings, hash_cache_t *hashes, bool *reused_p,
                char *err, size_t err_size)
{
    char program [JOB_MAX_PATH];
    const char *path_var = s_env_get (envp, "PATH");
    if (!path_var)
        path_var = getenv ("PATH");
    if (inputs_which (args->argv [0], path_var, program, sizeof (program))) {
        snprintf (err, err_size, "compiler %s not found", args->argv [0]);
        return NULL;
    }
    uint8_t key [LISTING_KEY_SIZE];
    if (listings) {
        s_listing_key (program, args, cwd, envp, key);
        zlist_t *deps = listing_cache_lookup (listings, key, hashes ? s_listing_hash : NULL,
                                              hashes);
        if (deps) {
            *reused_p = true;
            return deps;
        }
    }
    int64_t started = s_realtime_ns ();
    char *search = NULL;
    char *text = s_run_listing (program, args, cwd, envp, listings ? &search : NULL,
                                err, err_size);
    if (!text) {
        free (search);
        return NULL;
    }
    zlist_t *deps = inputs_parse_rule (text);
    free (text);
    if (!deps)
        snprintf (err, err_size, "dependency listing is not a make rule");
    if (deps && listings && search) {
        zlist_t *dirs = inputs_parse_search (search);
        listing_cache_store (listings, key, cwd, deps, dirs, started,
                             hashes ? s_listing_hash : NULL, hashes);
        zlist_destroy (&dirs);
    }
    free (search);
    return deps;
}

int
inputs_manifest (const compile_args_t *args, const char *cwd, char *const envp [],
                 hash_cache_t *hashes, listing_cache_t *listings, job_spec_t *job,
                 bool *reused_p, char *err, size_t err_size)
{
    bool reused = false;
    zlist_t *deps = s_dependencies (args, cwd, envp, listings, hashes, &reused, err, err_size);
    if (reused_p)
        *reused_p = reused;
    if (!deps)
        return -1;
    s_manifest_t m = { .seen = zhashx_new (), .known = zhashx_new () };
    int rc = 0;
    //  Directories first: cwd, include dirs, output dirs.
    rc = s_add_path (&m, cwd, true, hashes, err, err_size);
    for (size_t i = 0; rc == 0 && i < args->include_dir_count; i++)
        rc = s_add_dir (&m, cwd, args->include_dirs [i], hashes, err, err_size);
    if (rc == 0)
        rc = s_add_output_dir (&m, cwd, args->output, hashes, err, err_size);
    if (rc == 0)
        rc = s_add_output_dir (&m, cwd, args->depfile, hashes, err, err_size);
    if (rc == 0)
        rc = s_add_output_dir (&m, cwd, args->dwo, hashes, err, err_size);
    for (const char *dep = (const char *) zlist_first (deps);
         rc == 0 && dep; dep = (const char *) zlist_next (deps)) {
        char path [JOB_MAX_PATH];
        if (s_absolute (cwd, dep, path, sizeof (path))) {
            snprintf (err, err_size, "input path %s too long", dep);
            rc = -1;
            break;
        }
        rc = s_add_path (&m, path, false, hashes, err, err_size);
        if (rc == 0 && m.count > JOB_MAX_ENTRIES) {
            snprintf (err, err_size, "more than %d inputs", JOB_MAX_ENTRIES);
            rc = -1;
        }
    }
    zlist_destroy (&deps);
    zhashx_destroy (&m.seen);
    zhashx_destroy (&m.known);
    if (rc) {
        for (size_t i = 0; i < m.count; i++) {
            free (m.entries [i].path);
            free (m.entries [i].target);
        }
        free (m.entries);
        return -1;
    }
    //  Replace any previous manifest
    for (size_t i = 0; i < job->entry_count; i++) {
        free (job->entries [i].path);
        free (job->entries [i].target);
    }
    free (job->entries);
    job->entries = m.entries;
    job->entry_count = m.count;
    return 0;
}

void
inputs_test (bool verbose)
{
    if (verbose)
        printf (" * inputs: ");
    zlist_t *deps = inputs_parse_rule ("x: a.c b\\ c.h \\\n  /usr/include/d$$.h e\\#f.h\n");
    assert (deps && zlist_size (deps) == 4);
    assert (streq ((char *) zlist_first (deps), "a.c"));
    assert (streq ((char *) zlist_next (deps), "b c.h"));
    assert (streq ((char *) zlist_next (deps), "/usr/include/d$.h"));
    assert (streq ((char *) zlist_next (deps), "e#f.h"));
    zlist_destroy (&deps);
    assert (inputs_parse_rule ("no rule here\n") == NULL);
    if (verbose)
        printf ("OK\n");
}
