//  Unit tests of remote execution: the make-rule parser, path resolution,
//  the shipped environment, compiler identity, the origin's manifest, and
//  the executor itself: a compile run through the sandbox must give the
//  same object, depfile, stderr and exit status as the same compile run
//  directly (C and C++, with -g, with a warning, with an error); hostile
//  jobs are refused; the sandbox has no network, no view of the host and
//  no way to write outside its root, and its limits kill.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "meshcc/compile_args.h"
#include "meshcc/executor.h"
#include "meshcc/toolchain.h"
#include "meshcc/hash_cache.h"
#include "meshcc/inputs.h"
#include "meshcc/limits.h"
#include "meshcc/sandbox.h"

extern char **environ;

typedef struct {
    char dir [64];                  //  /tmp/meshcc-exec-XXXXXX
    char proj [128];                //  dir/proj (the working directory)
    blob_store_t *store;
    hash_cache_t *hashes;
    executor_t *executor;
    bool sandbox;                   //  bwrap usable here
    const char *why;
} fixture_t;

static fixture_t s_fx;

// ---------------------------------------------------------------------
//  Helpers

static void
s_write (const char *dir, const char *name, const char *text)
{
    char path [512];
    snprintf (path, sizeof (path), "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static uint8_t *
s_read (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    uint8_t *data = (uint8_t *) malloc ((size_t) size + 1);
    size_t got = fread (data, 1, (size_t) size, file);
    fclose (file);
    assert_int_equal (got, (size_t) size);
    *size_p = (size_t) size;
    return data;
}

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) ftw;
    if (flag == FTW_DP)
        rmdir (path);
    else
        unlink (path);
    return 0;
}

static int s_entries;

static int
s_count_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) flag; (void) ftw;
    //  The executor's spare job directories (empty directories made in
    //  advance) are not a job's leftovers; anything else in them would be
    if (!(strstr (path, "/spare-") && S_ISDIR (st->st_mode)))
        s_entries++;
    return 0;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

//  The environment of a shell in the project: ours with PWD set.
static char **
s_local_env (const char *cwd)
{
    size_t count = 0;
    while (environ [count])
        count++;
    char **envp = (char **) zmalloc ((count + 2) * sizeof (char *));
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp (environ [i], "PWD=", 4) != 0)
            envp [n++] = strdup (environ [i]);
    if (asprintf (&envp [n++], "PWD=%s", cwd) < 0)
        abort ();
    return envp;
}

static void
s_free_strings (char **strings)
{
    for (size_t i = 0; strings && strings [i]; i++)
        free (strings [i]);
    free (strings);
}

typedef struct {
    int status;
    uint8_t *err; size_t err_size;
    uint8_t *obj; size_t obj_size;
    uint8_t *dep; size_t dep_size;
    uint64_t wall_us;
} local_t;

//  Compiles directly in the project; reads and removes the outputs.
static void
s_compile_local (char **argv, const char *obj, const char *dep, local_t *local)
{
    memset (local, 0, sizeof (*local));
    char program [1024];
    assert_int_equal (inputs_which (argv [0], getenv ("PATH"), program, sizeof (program)), 0);
    char **full = (char **) zmalloc (64 * sizeof (char *));
    full [0] = program;
    for (int i = 1; argv [i]; i++)
        full [i] = argv [i];
    char **envp = s_local_env (s_fx.proj);
    sandbox_result_t run;
    char err [256];
    uint64_t t0 = s_now_us ();
    assert_int_equal (sandbox_spawn (full, envp, s_fx.proj, NULL, &run, err, sizeof (err)), 0);
    local->wall_us = s_now_us () - t0;
    local->status = run.status;
    local->err = run.err;
    local->err_size = run.err_size;
    free (run.out);
    char path [512];
    if (obj) {
        snprintf (path, sizeof (path), "%s/%s", s_fx.proj, obj);
        local->obj = s_read (path, &local->obj_size);
        unlink (path);
    }
    if (dep) {
        snprintf (path, sizeof (path), "%s/%s", s_fx.proj, dep);
        local->dep = s_read (path, &local->dep_size);
        unlink (path);
    }
    s_free_strings (envp);
    free (full);
}

//  Builds the job for argv in the project: manifest, blobs in the store
//  (all but `leave_out`, a path suffix), identity, environment.
static job_spec_t *
s_make_job (char **argv, const char *leave_out)
{
    int argc = 0;
    while (argv [argc])
        argc++;
    compile_args_t *args = compile_args_parse (argc, argv, s_fx.proj);
    assert_non_null (args);
    assert_true (args->distributable);
    job_spec_t *job = job_spec_new ();
    static uint64_t next_id = 1;
    job->id = next_id++;
    job->argc = argc;
    job->argv = (char **) zmalloc ((size_t) (argc + 1) * sizeof (char *));
    for (int i = 0; i < argc; i++)
        job->argv [i] = strdup (argv [i]);
    job->cwd = strdup (s_fx.proj);
    char **local_env = s_local_env (s_fx.proj);
    job->envp = inputs_relevant_env (local_env);
    char err [512] = "";
    int rc = inputs_manifest (args, s_fx.proj, local_env, s_fx.hashes, NULL, job, NULL, err, sizeof (err));
    if (rc)
        print_error ("inputs_manifest: %s\n", err);
    assert_int_equal (rc, 0);
    s_free_strings (local_env);
    assert_int_equal (compiler_identity_get (argv [0], &job->compiler), 0);
    for (size_t i = 0; i < job->entry_count; i++) {
        manifest_entry_t *e = &job->entries [i];
        if (e->kind != MANIFEST_FILE)
            continue;
        size_t len = strlen (e->path), skip = leave_out ? strlen (leave_out) : 0;
        if (leave_out && len >= skip && streq (e->path + len - skip, leave_out))
            continue;
        size_t size;
        uint8_t *data = s_read (e->path, &size);
        assert_non_null (data);
        assert_int_equal (blob_store_put (s_fx.store, e->hash, data, size), 0);
        free (data);
    }
    compile_args_destroy (&args);
    return job;
}

static const job_output_t *
s_output (const job_result_t *result, const char *name)
{
    char path [512];
    snprintf (path, sizeof (path), "%s/%s", s_fx.proj, name);
    for (size_t i = 0; i < result->output_count; i++)
        if (streq (result->outputs [i].path, path))
            return &result->outputs [i];
    return NULL;
}

static void
s_assert_same_bytes (const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
                     const char *what)
{
    if (a_size != b_size || (a_size && memcmp (a, b, a_size) != 0)) {
        print_error ("%s differs (%zu vs %zu bytes)\n", what, a_size, b_size);
        if (a && b && a_size < 4096 && b_size < 4096)
            print_error ("local:\n%.*s\nremote:\n%.*s\n", (int) a_size, (char *) a,
                         (int) b_size, (char *) b);
        fail ();
    }
}

#define SKIP_WITHOUT_SANDBOX() do { \
    if (!s_fx.sandbox) { \
        print_message ("skipped: sandbox unavailable: %s\n", s_fx.why ? s_fx.why : "?"); \
        skip (); \
    } \
} while (0)

// ---------------------------------------------------------------------
//  Group setup: a small project

static int
s_group_setup (void **state)
{
    (void) state;
    snprintf (s_fx.dir, sizeof (s_fx.dir), "/tmp/meshcc-exec-XXXXXX");
    if (!mkdtemp (s_fx.dir))
        return -1;
    snprintf (s_fx.proj, sizeof (s_fx.proj), "%s/proj", s_fx.dir);
    char path [512];
    mkdir (s_fx.proj, 0755);
    snprintf (path, sizeof (path), "%s/src", s_fx.proj);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/inc", s_fx.proj);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/obj", s_fx.proj);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/empty", s_fx.proj);
    mkdir (path, 0755);
    //  -Ilink reaches inc/ through a relative symlink
    snprintf (path, sizeof (path), "%s/link", s_fx.proj);
    if (symlink ("inc", path))
        return -1;
    s_write (s_fx.proj, "inc/foo.h",
             "#ifndef FOO_H\n#define FOO_H\n"
             "#define SQUARE(x) ((x) * (x))\n"
             "#define WHERE __FILE__ \":\" STR(__LINE__)\n"
             "#define STR(x) STR2(x)\n#define STR2(x) #x\n"
             "static inline int foo_twice (int x) { return 2 * x; }\n"
             "#endif\n");
    s_write (s_fx.proj, "src/foo.c",
             "#include <stdio.h>\n#include \"foo.h\"\n\n"
             "struct point { int x, y; };\n"
             "int foo (int a)\n{\n"
             "    int unused;\n"
             "    struct point p = { SQUARE (a + 1), foo_twice (a) };\n"
             "    printf (\"%s %d %s\\n\", __FILE__, __LINE__, WHERE);\n"
             "    return p.x + p.y;\n}\n");
    s_write (s_fx.proj, "src/bar.cpp",
             "#include <iostream>\n#include <vector>\n#include \"foo.h\"\n\n"
             "template <typename T> struct box { T value; T get () const { return value; } };\n"
             "template <typename T> T sum (const std::vector<T> &v)\n"
             "{ T s {}; for (auto &x : v) s += x; return s; }\n"
             "int bar ()\n{\n"
             "    std::vector<int> v { 1, 2, SQUARE (3) };\n"
             "    box<double> b { 2.5 };\n"
             "    std::cout << __FILE__ << ':' << __LINE__ << ' ' << sum (v) << b.get () << '\\n';\n"
             "    return foo_twice (sum (v));\n}\n");
    s_write (s_fx.proj, "src/broken.c",
             "#include \"foo.h\"\nint broken (void)\n{\n    return undeclared + SQUARE (2);\n}\n");

    char err [256] = "";
    snprintf (path, sizeof (path), "%s/cache", s_fx.dir);
    s_fx.store = blob_store_new (path, 1ULL << 30, err, sizeof (err));
    s_fx.hashes = hash_cache_new (path, err, sizeof (err));
    snprintf (path, sizeof (path), "%s/work", s_fx.dir);
    s_fx.executor = executor_new (s_fx.store, path, NULL, err, sizeof (err));
    if (!s_fx.store || !s_fx.hashes || !s_fx.executor) {
        print_error ("setup: %s\n", err);
        return -1;
    }
    s_fx.sandbox = executor_available (s_fx.executor, &s_fx.why);
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    executor_destroy (&s_fx.executor);
    hash_cache_destroy (&s_fx.hashes);
    blob_store_destroy (&s_fx.store);
    nftw (s_fx.dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

// ---------------------------------------------------------------------
//  Pure parts

static void
test_parse_rule (void **state)
{
    (void) state;
    zlist_t *deps = inputs_parse_rule ("x: src/a.c /usr/include/stdio.h \\\n"
                                       " /usr/include/x86_64-linux-gnu/bits/libc-header-start.h\n");
    assert_non_null (deps);
    assert_int_equal (zlist_size (deps), 3);
    assert_string_equal (zlist_first (deps), "src/a.c");
    assert_string_equal (zlist_next (deps), "/usr/include/stdio.h");
    assert_string_equal (zlist_next (deps), "/usr/include/x86_64-linux-gnu/bits/libc-header-start.h");
    zlist_destroy (&deps);

    //  Escaped spaces (and a backslash before one), $$, \#, CRLF
    deps = inputs_parse_rule ("obj/a\\ b.o: my\\ dir/a\\ b.c x$$y.h h\\#1.h a\\\\\\ b.h \\\r\n c.h\r\n");
    assert_non_null (deps);
    assert_int_equal (zlist_size (deps), 5);
    assert_string_equal (zlist_first (deps), "my dir/a b.c");
    assert_string_equal (zlist_next (deps), "x$y.h");
    assert_string_equal (zlist_next (deps), "h#1.h");
    assert_string_equal (zlist_next (deps), "a\\ b.h");
    assert_string_equal (zlist_next (deps), "c.h");
    zlist_destroy (&deps);

    //  Only the first rule counts (-MP phony targets follow)
    deps = inputs_parse_rule ("x: a.c b.h\n\nb.h:\n");
    assert_int_equal (zlist_size (deps), 2);
    zlist_destroy (&deps);

    //  A rule with no prerequisites; not a rule at all
    deps = inputs_parse_rule ("x:\n");
    assert_non_null (deps);
    assert_int_equal (zlist_size (deps), 0);
    zlist_destroy (&deps);
    assert_null (inputs_parse_rule ("not a rule\nx: y\n"));
    assert_null (inputs_parse_rule (""));
    inputs_test (false);
    executor_test (false);
}

typedef struct { char links [8][256]; char targets [8][256]; int count; } links_t;

static void
s_on_link (const char *link, const char *target, void *arg)
{
    links_t *l = (links_t *) arg;
    if (l->count < 8) {
        snprintf (l->links [l->count], 256, "%s", link);
        snprintf (l->targets [l->count], 256, "%s", target);
        l->count++;
    }
}

static void
test_resolve (void **state)
{
    (void) state;
    char base [200], path [512], resolved [512];
    snprintf (base, sizeof (base), "%s/resolve", s_fx.dir);
    mkdir (base, 0755);
    snprintf (path, sizeof (path), "%s/real", base);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/rel", base);
    assert_int_equal (symlink ("real", path), 0);
    snprintf (path, sizeof (path), "%s/abs", base);
    char target [512];
    snprintf (target, sizeof (target), "%s/rel", base);
    assert_int_equal (symlink (target, path), 0);
    snprintf (path, sizeof (path), "%s/loop", base);
    assert_int_equal (symlink ("loop", path), 0);

    //  abs -> BASE/rel -> real; ".." taken after the link
    links_t links = { .count = 0 };
    snprintf (path, sizeof (path), "%s/abs/../real/./x.h", base);
    assert_int_equal (inputs_resolve (NULL, path, s_on_link, &links, resolved, sizeof (resolved)), 0);
    snprintf (target, sizeof (target), "%s/real/x.h", base);
    assert_string_equal (resolved, target);
    assert_int_equal (links.count, 2);
    snprintf (target, sizeof (target), "%s/abs", base);
    assert_string_equal (links.links [0], target);
    snprintf (target, sizeof (target), "%s/rel", base);
    assert_string_equal (links.links [1], target);
    assert_string_equal (links.targets [1], "real");

    snprintf (path, sizeof (path), "%s/loop/x", base);
    assert_int_equal (inputs_resolve (NULL, path, NULL, NULL, resolved, sizeof (resolved)), -1);

    //  Inside a root: an absolute target restarts at the root, ".." stops
    char root [300];
    snprintf (root, sizeof (root), "%s/root", base);
    mkdir (root, 0755);
    snprintf (path, sizeof (path), "%s/escape", root);
    assert_int_equal (symlink ("/../../../etc", path), 0);
    assert_int_equal (inputs_resolve (root, "/escape/passwd", NULL, NULL, resolved, sizeof (resolved)), 0);
    assert_string_equal (resolved, "/etc/passwd");
    assert_int_equal (inputs_resolve (root, "/../../x", NULL, NULL, resolved, sizeof (resolved)), 0);
    assert_string_equal (resolved, "/x");
}

//  One pass over several paths with a set of known directories: the same
//  answers and symlinks as inputs_resolve, the last component's stat, and
//  a known prefix is not looked up again.
static void
test_resolve_known (void **state)
{
    (void) state;
    char base [200], path [512], resolved [512], expected [512];
    snprintf (base, sizeof (base), "%s/resolve-known", s_fx.dir);
    mkdir (base, 0755);
    snprintf (path, sizeof (path), "%s/real", base);
    mkdir (path, 0755);
    snprintf (path, sizeof (path), "%s/real/x.h", base);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("int x;\n", file);
    fclose (file);
    snprintf (path, sizeof (path), "%s/rel", base);
    assert_int_equal (symlink ("real", path), 0);
    snprintf (path, sizeof (path), "%s/loop", base);
    assert_int_equal (symlink ("loop", path), 0);

    zhashx_t *known = zhashx_new ();
    struct stat st, want;
    bool st_valid = true;
    links_t links = { .count = 0 };
    snprintf (path, sizeof (path), "%s/real/x.h", base);
    assert_int_equal (inputs_resolve_known (known, path, s_on_link, &links, resolved,
                                            sizeof (resolved), &st, &st_valid), 0);
    assert_string_equal (resolved, path);
    assert_true (st_valid);
    assert_int_equal (stat (path, &want), 0);
    assert_true (st.st_ino == want.st_ino && st.st_size == want.st_size);
    snprintf (expected, sizeof (expected), "%s/real", base);
    assert_non_null (zhashx_lookup (known, expected));
    assert_non_null (zhashx_lookup (known, base));

    //  Through the symlink: still reported although its target is known;
    //  the link itself is never taken as a directory.
    snprintf (path, sizeof (path), "%s/rel/./x.h", base);
    assert_int_equal (inputs_resolve_known (known, path, s_on_link, &links, resolved,
                                            sizeof (resolved), &st, &st_valid), 0);
    snprintf (expected, sizeof (expected), "%s/real/x.h", base);
    assert_string_equal (resolved, expected);
    assert_true (st_valid);
    assert_int_equal (links.count, 1);
    snprintf (expected, sizeof (expected), "%s/rel", base);
    assert_string_equal (links.links [0], expected);
    assert_null (zhashx_lookup (known, expected));

    //  No stat for a path ending in "..", or for one that does not exist
    snprintf (path, sizeof (path), "%s/real/..", base);
    assert_int_equal (inputs_resolve_known (known, path, NULL, NULL, resolved,
                                            sizeof (resolved), &st, &st_valid), 0);
    assert_string_equal (resolved, base);
    assert_false (st_valid);
    snprintf (path, sizeof (path), "%s/real/absent.h", base);
    assert_int_equal (inputs_resolve_known (known, path, NULL, NULL, resolved,
                                            sizeof (resolved), &st, &st_valid), 0);
    assert_false (st_valid);
    snprintf (path, sizeof (path), "%s/loop/x", base);
    assert_int_equal (inputs_resolve_known (known, path, NULL, NULL, resolved,
                                            sizeof (resolved), &st, &st_valid), -1);

    //  A prefix in the set is not looked up: here a symlink put there
    //  by hand is taken as a directory (which is why a set lives for
    //  one pass only).
    snprintf (expected, sizeof (expected), "%s/rel", base);
    zhashx_insert (known, expected, (void *) 1);
    links.count = 0;
    snprintf (path, sizeof (path), "%s/rel/x.h", base);
    assert_int_equal (inputs_resolve_known (known, path, s_on_link, &links, resolved,
                                            sizeof (resolved), &st, &st_valid), 0);
    assert_string_equal (resolved, path);
    assert_int_equal (links.count, 0);
    zhashx_destroy (&known);
}

static void
test_relevant_env (void **state)
{
    (void) state;
    char *envp [] = {
        "HOME=/root", "CPATH=/opt/inc", "LANG=C.UTF-8", "LC_ALL=C", "GCC_COLORS=",
        "GCC_EXEC_PREFIX=/evil/", "SOURCE_DATE_EPOCH=1", "PATH=/home/u/bin:/usr/bin",
        "LD_PRELOAD=/evil.so", "CPLUS_INCLUDE_PATH=/x", "PWD=/somewhere", "TZ=UTC", NULL
    };
    char **env = inputs_relevant_env (envp);
    const char *expected [] = { "CPATH=/opt/inc", "LANG=C.UTF-8", "LC_ALL=C", "GCC_COLORS=",
                                "SOURCE_DATE_EPOCH=1", "CPLUS_INCLUDE_PATH=/x",
                                "PATH=/usr/bin:/bin", NULL };
    size_t n = 0;
    for (; env [n]; n++) {
        assert_non_null (expected [n]);
        assert_string_equal (env [n], expected [n]);
    }
    assert_null (expected [n]);
    s_free_strings (env);
}

static void
test_identity (void **state)
{
    (void) state;
    compiler_identity_t a, b, c;
    assert_int_equal (compiler_identity_get ("gcc", &a), 0);
    char real [PATH_MAX];
    assert_non_null (realpath ("/usr/bin/gcc", real));
    assert_string_equal (a.path, real);
    assert_true (strlen (a.version) > 0 && isdigit ((unsigned char) a.version [0]));
    assert_true (strstr (a.target, "linux") != NULL);
    uint8_t hash [BLOB_HASH_SIZE];
    assert_int_equal (blob_hash_file (real, hash), 0);
    assert_memory_equal (a.hash, hash, BLOB_HASH_SIZE);
    //  Cached: the same answer, quickly
    uint64_t t0 = s_now_us ();
    assert_int_equal (compiler_identity_get ("gcc", &b), 0);
    assert_true (s_now_us () - t0 < 5000);
    assert_true (compiler_identity_equal (&a, &b));
    assert_int_equal (compiler_identity_get (real, &c), 0);
    assert_true (compiler_identity_equal (&a, &c));
    //  g++ is another compiler
    assert_int_equal (compiler_identity_get ("g++", &b), 0);
    assert_false (compiler_identity_equal (&a, &b));
    assert_int_equal (compiler_identity_get ("no-such-compiler-xyz", &b), -1);
    if (access ("/usr/bin/clang", X_OK) == 0) {
        assert_int_equal (compiler_identity_get ("clang", &b), 0);
        assert_true (strstr (b.version, "clang") != NULL);
    }
}

static const manifest_entry_t *
s_entry (const job_spec_t *job, const char *path)
{
    for (size_t i = 0; i < job->entry_count; i++)
        if (streq (job->entries [i].path, path))
            return &job->entries [i];
    return NULL;
}

static void
test_manifest (void **state)
{
    (void) state;
    char *argv [] = { "gcc", "-g", "-O2", "-Ilink", "-Iempty", "-Imissing", "-c", "src/foo.c",
                      "-o", "obj/foo.o", "-MD", "-MF", "obj/foo.d", "-Wall", NULL };
    job_spec_t *job = s_make_job (argv, NULL);
    char path [512];
    const manifest_entry_t *e;
    snprintf (path, sizeof (path), "%s/src/foo.c", s_fx.proj);
    assert_non_null (e = s_entry (job, path));
    assert_int_equal (e->kind, MANIFEST_FILE);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (e->size, (uint64_t) st.st_size);
    assert_int_equal (e->mode, st.st_mode & 0777);
    //  The header through the symlink: link entry + the real file
    snprintf (path, sizeof (path), "%s/link", s_fx.proj);
    assert_non_null (e = s_entry (job, path));
    assert_int_equal (e->kind, MANIFEST_SYMLINK);
    assert_string_equal (e->target, "inc");
    snprintf (path, sizeof (path), "%s/inc/foo.h", s_fx.proj);
    assert_non_null (e = s_entry (job, path));
    assert_int_equal (e->kind, MANIFEST_FILE);
    uint8_t hash [BLOB_HASH_SIZE];
    assert_int_equal (blob_hash_file (path, hash), 0);
    assert_memory_equal (e->hash, hash, BLOB_HASH_SIZE);
    assert_non_null (e = s_entry (job, "/usr/include/stdio.h"));
    assert_int_equal (e->kind, MANIFEST_FILE);
    assert_non_null (s_entry (job, "/usr/include/stdc-predef.h"));
    //  Directories: cwd, include dirs (the existing ones), output dir
    assert_non_null (e = s_entry (job, s_fx.proj));
    assert_int_equal (e->kind, MANIFEST_DIR);
    snprintf (path, sizeof (path), "%s/inc", s_fx.proj);
    assert_int_equal (s_entry (job, path)->kind, MANIFEST_DIR);
    snprintf (path, sizeof (path), "%s/empty", s_fx.proj);
    assert_int_equal (s_entry (job, path)->kind, MANIFEST_DIR);
    snprintf (path, sizeof (path), "%s/obj", s_fx.proj);
    assert_int_equal (s_entry (job, path)->kind, MANIFEST_DIR);
    snprintf (path, sizeof (path), "%s/missing", s_fx.proj);
    assert_null (s_entry (job, path));
    //  No duplicates, every path absolute and free of symlinks but links
    for (size_t i = 0; i < job->entry_count; i++) {
        assert_true (job->entries [i].path [0] == '/');
        for (size_t j = i + 1; j < job->entry_count; j++)
            assert_string_not_equal (job->entries [i].path, job->entries [j].path);
    }
    //  The listing wrote nothing into the project
    snprintf (path, sizeof (path), "%s/obj/foo.o", s_fx.proj);
    assert_int_equal (access (path, F_OK), -1);
    snprintf (path, sizeof (path), "%s/obj/foo.d", s_fx.proj);
    assert_int_equal (access (path, F_OK), -1);
    job_spec_destroy (&job);
}

// ---------------------------------------------------------------------
//  The executor: identical results

static const char *s_tree;         //  the unpacked toolchain to run with, or NULL
static char s_tree_kept [400];     //  test_identical_tree's, for test_cost

static void
s_identical (char **argv, const char *obj, const char *dep, int expect_status)
{
    local_t local;
    s_compile_local (argv, obj, dep, &local);
    assert_int_equal (local.status, expect_status);
    job_spec_t *job = s_make_job (argv, NULL);
    size_t missing_count = 99;
    free (executor_missing (s_fx.executor, job, s_tree, &missing_count));
    assert_int_equal (missing_count, 0);
    job_result_t *result = job_result_new ();
    uint64_t t0 = s_now_us ();
    executor_run (s_fx.executor, job, s_tree, result);
    uint64_t remote_us = s_now_us () - t0;
    if (result->failure)
        print_error ("failure: %s\n", result->failure);
    assert_null (result->failure);
    assert_int_equal (result->status, local.status);
    s_assert_same_bytes (local.err, local.err_size, result->err, result->err_size, "stderr");
    const job_output_t *out = s_output (result, obj);
    if (local.obj) {
        assert_non_null (out);
        s_assert_same_bytes (local.obj, local.obj_size, out->data, out->size, "object");
    }
    else
        assert_null (out);
    if (dep) {
        out = s_output (result, dep);
        if (local.dep) {
            assert_non_null (out);
            s_assert_same_bytes (local.dep, local.dep_size, out->data, out->size, "depfile");
        }
        else
            assert_null (out);
    }
    print_message ("%s %s: direct %.1f ms, executor %.1f ms (setup %.1f, sandboxed compile %.1f)\n",
                   argv [0], argv [7], local.wall_us / 1000.0, remote_us / 1000.0,
                   result->setup_us / 1000.0, result->compile_us / 1000.0);
    //  The job root is gone (removed in the background); what else is
    //  there is the executor's spare job directories, empty
    executor_wait_idle (s_fx.executor);
    char work [256];
    snprintf (work, sizeof (work), "%s/work", s_fx.dir);
    s_entries = 0;
    nftw (work, s_count_entry, 16, FTW_PHYS);
    assert_int_equal (s_entries, 3);            //  work, exec-PID-X, its trash

    job_result_destroy (&result);
    job_spec_destroy (&job);
    free (local.err);
    free (local.obj);
    free (local.dep);
}

static bool
s_under_dir (const char *path, const char *dir)
{
    size_t len = strlen (dir);
    return strncmp (path, dir, len) == 0 && (path [len] == 0 || path [len] == '/');
}

static void
test_identical_c (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char *argv [] = { "gcc", "-g", "-O2", "-Ilink", "-Iempty", "-c", "-Wmissing-include-dirs",
                      "src/foo.c", "-o", "obj/foo.o", "-MD", "-MF", "obj/foo.d", "-Wall", NULL };
    //  (argv[7] is the source, for the timing line)
    s_identical (argv, "obj/foo.o", "obj/foo.d", 0);
    //  System headers come from the job root, never from this machine
    compiler_identity_t identity;
    assert_int_equal (compiler_identity_get ("gcc", &identity), 0);
    char **binds = NULL, **links = NULL;
    assert_int_equal (executor_toolchain (s_fx.executor, &identity, &binds, &links), 0);
    for (size_t i = 0; binds [i]; i++) {
        assert_false (s_under_dir (binds [i], "/usr/include"));
        assert_false (streq (binds [i], "/usr") || streq (binds [i], "/"));
        if (getenv ("MESHCC_EXEC_VERBOSE"))
            print_message ("gcc bind %s\n", binds [i]);
    }
    for (size_t i = 0; getenv ("MESHCC_EXEC_VERBOSE") && links [i]; i += 2)
        print_message ("gcc link %s -> %s\n", links [i], links [i + 1]);
    executor_strings_free (&binds);
    executor_strings_free (&links);
}

//  The same compile with gcc from its packaged toolchain (issue 4): the
//  sandbox then binds nothing of this machine's compiler (only locales),
//  and the outputs are still byte-identical.
static void
test_identical_tree (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char dir [300], tree [400], err [512];
    snprintf (dir, sizeof dir, "%s/toolchain", s_fx.dir);
    toolchain_info_t info;
    if (toolchain_package ("/usr/bin/gcc", dir, &info, err, sizeof err))
        fail_msg ("packaging gcc: %s", err);
    snprintf (tree, sizeof tree, "%s/unpacked-%s", s_fx.dir, info.hex);
    if (toolchain_unpack (info.archive, info.hash, tree, err, sizeof err))
        fail_msg ("unpacking: %s", err);
    s_tree = tree;
    char *argv [] = { "gcc", "-g", "-O2", "-Ilink", "-Iempty", "-c", "-Wmissing-include-dirs",
                      "src/foo.c", "-o", "obj/foo.o", "-MD", "-MF", "obj/foo.d", "-Wall", NULL };
    s_identical (argv, "obj/foo.o", "obj/foo.d", 0);
    //  A compile error: the same stderr (UTF-8 quotes: the locale is
    //  this machine's) and status as the host compiler's
    char *broken [] = { "gcc", "-g", "-O2", "-Ilink", "-Wall", "-MD", "-c",
                        "src/broken.c", "-o", "obj/broken.o", NULL };
    s_identical (broken, "obj/broken.o", "obj/broken.d", 1);

    //  The executor binds the tree's directories whole where the job has
    //  nothing (/usr/bin, /usr/lib/gcc, ...). A job input in a tree
    //  directory that the tree lacks (here gcc's own stddef.h, taken out of
    //  a copy of the tree) keeps that directory out of the binds: its
    //  files are linked one by one next to the input, which the compile
    //  must see (stdio.h includes <stddef.h>), byte-identical.
    char copy [500], command [1200], stddef_h [700];
    snprintf (copy, sizeof copy, "%s-copy", tree);
    snprintf (command, sizeof command, "cp -al '%s' '%s'", tree, copy);
    assert_int_equal (system (command), 0);
    const char *gcc_include = NULL;
    job_spec_t *probe = s_make_job (argv, NULL);
    for (size_t i = 0; i < probe->entry_count; i++) {
        const char *path = probe->entries [i].path;
        if (strncmp (path, "/usr/lib/gcc/", 13) == 0 && strstr (path, "/include/stddef.h"))
            gcc_include = path;
    }
    assert_non_null (gcc_include);
    snprintf (stddef_h, sizeof stddef_h, "%s%s", copy, gcc_include);
    assert_int_equal (unlink (stddef_h), 0);
    job_spec_destroy (&probe);
    s_tree = copy;
    s_identical (argv, "obj/foo.o", "obj/foo.d", 0);
    snprintf (command, sizeof command, "rm -rf '%s'", copy);
    assert_int_equal (system (command), 0);

    s_tree = NULL;
    snprintf (s_tree_kept, sizeof s_tree_kept, "%s", tree);
}

static void
test_identical_cxx (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char *argv [] = { "g++", "-g", "-O2", "-std=c++17", "-Ilink", "-Wall", "-c",
                      "src/bar.cpp", "-o", "obj/bar.o", "-MMD", NULL };
    s_identical (argv, "obj/bar.o", "obj/bar.d", 0);
}

static void
test_identical_clang (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    if (access ("/usr/bin/clang", X_OK) != 0) {
        print_message ("skipped: clang is not installed\n");
        skip ();
    }
    char *argv [] = { "clang", "-g", "-O2", "-Ilink", "-Wall", "-MD", "-c",
                      "src/foo.c", "-o", "obj/foo-clang.o", NULL };
    s_identical (argv, "obj/foo-clang.o", "obj/foo-clang.d", 0);
    //  What the sandbox takes from this machine, for the record
    compiler_identity_t identity;
    assert_int_equal (compiler_identity_get ("clang", &identity), 0);
    char **binds = NULL, **links = NULL;
    assert_int_equal (executor_toolchain (s_fx.executor, &identity, &binds, &links), 0);
    for (size_t i = 0; binds [i]; i++) {
        assert_false (s_under_dir (binds [i], "/usr/include"));
        if (getenv ("MESHCC_EXEC_VERBOSE"))
            print_message ("clang bind %s\n", binds [i]);
    }
    for (size_t i = 0; getenv ("MESHCC_EXEC_VERBOSE") && links [i]; i += 2)
        print_message ("clang link %s -> %s\n", links [i], links [i + 1]);
    executor_strings_free (&binds);
    executor_strings_free (&links);
}

static void
test_identical_error (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    char *argv [] = { "gcc", "-g", "-O2", "-Ilink", "-Wall", "-MD", "-c",
                      "src/broken.c", "-o", "obj/broken.o", NULL };
    s_identical (argv, "obj/broken.o", "obj/broken.d", 1);
}

// ---------------------------------------------------------------------
//  Refusals

static char *
s_run_failure (job_spec_t *job)
{
    job_result_t *result = job_result_new ();
    executor_run (s_fx.executor, job, NULL, result);
    char *failure = result->failure ? strdup (result->failure) : NULL;
    job_result_destroy (&result);
    return failure;
}

static void
s_assert_failure (job_spec_t *job, const char *expected)
{
    char *failure = s_run_failure (job);
    if (!failure || !strstr (failure, expected)) {
        print_error ("expected failure containing \"%s\", got \"%s\"\n", expected,
                     failure ? failure : "(none)");
        fail ();
    }
    free (failure);
}

static char *s_plain_argv [] = { "gcc", "-O2", "-Ilink", "-c", "src/foo.c", "-o", "obj/foo.o", NULL };

static void
test_refuse_plugin (void **state)
{
    (void) state;
    char *argv [] = { "gcc", "-fplugin=./x.so", "-Ilink", "-c", "src/foo.c", "-o", "obj/foo.o", NULL };
    job_spec_t *job = s_make_job (s_plain_argv, NULL);
    //  Swap in the hostile argument after the manifest was made
    free (job->argv [1]);
    job->argv [1] = strdup (argv [1]);
    s_assert_failure (job, "-fplugin");
    job_spec_destroy (&job);
}

static void
test_refuse_identity (void **state)
{
    (void) state;
    job_spec_t *job = s_make_job (s_plain_argv, NULL);
    job->compiler.hash [0] ^= 1;
    s_assert_failure (job, "compiler identity mismatch");
    job->compiler.hash [0] ^= 1;
    snprintf (job->compiler.version, sizeof (job->compiler.version), "99.0");
    s_assert_failure (job, "compiler identity mismatch");
    job_spec_destroy (&job);

    //  argv[0] must be that compiler, not another program
    job = s_make_job (s_plain_argv, NULL);
    free (job->argv [0]);
    job->argv [0] = strdup ("/bin/sh");
    s_assert_failure (job, "is not the compiler");
    free (job->argv [0]);
    job->argv [0] = strdup ("./gcc");
    s_assert_failure (job, "is not the compiler");
    job_spec_destroy (&job);
}

static void
test_missing_blob (void **state)
{
    (void) state;
    //  A header only this job has
    s_write (s_fx.proj, "inc/only.h", "#define ONLY 42\n");
    s_write (s_fx.proj, "src/only.c", "#include \"only.h\"\nint only (void) { return ONLY; }\n");
    char *argv [] = { "gcc", "-O2", "-Ilink", "-c", "src/only.c", "-o", "obj/only.o", NULL };
    job_spec_t *job = s_make_job (argv, "/inc/only.h");
    char path [512];
    snprintf (path, sizeof (path), "%s/inc/only.h", s_fx.proj);
    const manifest_entry_t *e = s_entry (job, path);
    assert_non_null (e);
    size_t count = 0;
    uint8_t (*missing) [BLOB_HASH_SIZE] = executor_missing (s_fx.executor, job, NULL, &count);
    assert_int_equal (count, 1);
    assert_memory_equal (missing [0], e->hash, BLOB_HASH_SIZE);
    free (missing);
    char hex [BLOB_HASH_HEX_SIZE + 1], expected [128];
    blob_hash_hex (e->hash, hex);
    snprintf (expected, sizeof (expected), "missing input %s", hex);
    s_assert_failure (job, expected);
    job_spec_destroy (&job);
}

//  Adds an entry to a job's manifest.
static void
s_add_entry (job_spec_t *job, const char *path, manifest_kind_t kind, const char *target,
             const uint8_t *hash)
{
    job->entries = (manifest_entry_t *) realloc (job->entries,
                                                 (job->entry_count + 1) * sizeof (manifest_entry_t));
    manifest_entry_t *e = &job->entries [job->entry_count++];
    memset (e, 0, sizeof (*e));
    e->path = strdup (path);
    e->kind = kind;
    e->mode = 0644;
    e->target = target ? strdup (target) : NULL;
    if (hash)
        memcpy (e->hash, hash, BLOB_HASH_SIZE);
}

static void
test_refuse_manifest (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    const uint8_t *any = NULL;
    struct { const char *path; manifest_kind_t kind; const char *target; const char *why; } cases [] = {
        { "relative/x.h", MANIFEST_FILE, NULL, "not absolute" },
        { "/a/../etc/x.h", MANIFEST_FILE, NULL, "not normalised" },
        { "/a//x.h", MANIFEST_FILE, NULL, "not normalised" },
        { "/proc/self/environ", MANIFEST_FILE, NULL, "/proc" },
        { "/up", MANIFEST_SYMLINK, "../../etc", "points above /" },
        { "/devlink", MANIFEST_SYMLINK, "/dev/sda", "points into" },
        { "/escape", MANIFEST_SYMLINK, "/etc", NULL },          //  fine alone...
        { "/escape/passwd", MANIFEST_FILE, NULL, "below symlink" },  //  ...not with this
        { "/usr/lib", MANIFEST_SYMLINK, "/tmp", "shadows" },
        { "/lib", MANIFEST_SYMLINK, "/tmp", "conflicts" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        if (!cases [i].why)
            continue;
        job_spec_t *job = s_make_job (s_plain_argv, NULL);
        if (!any)
            any = job->entries [0].hash;
        if (i == 7)
            s_add_entry (job, cases [6].path, cases [6].kind, cases [6].target, NULL);
        uint8_t hash [BLOB_HASH_SIZE] = { 0 };
        for (size_t j = 0; j < job->entry_count; j++)
            if (job->entries [j].kind == MANIFEST_FILE)
                memcpy (hash, job->entries [j].hash, BLOB_HASH_SIZE);
        s_add_entry (job, cases [i].path, cases [i].kind, cases [i].target, hash);
        s_assert_failure (job, cases [i].why);
        job_spec_destroy (&job);
    }
    //  An output that is an input: writing it would change a shared blob
    char *argv [] = { "gcc", "-O2", "-Ilink", "-c", "src/foo.c", "-o", "inc/foo.h", NULL };
    job_spec_t *job = s_make_job (s_plain_argv, NULL);
    free (job->argv [6]);
    job->argv [6] = strdup (argv [6]);
    s_assert_failure (job, "overwrite an input");
    //  ...also through a symlink of the manifest
    free (job->argv [6]);
    job->argv [6] = strdup ("link/foo.h");
    s_assert_failure (job, "overwrite an input");
    job_spec_destroy (&job);
    //  Nothing was written outside the job root
    assert_int_equal (access ("/escape", F_OK), -1);
    assert_int_equal (access ("/up", F_OK), -1);
}

// ---------------------------------------------------------------------
//  The sandbox itself, with /bin/sh as the program

typedef struct {
    char root [256];
    const char *binds [8];
    char store_file [300];          //  stands for a blob store file
} sbx_t;

static void
s_sandbox_root (sbx_t *s)
{
    static int serial;
    snprintf (s->root, sizeof (s->root), "%s/sbx-%d", s_fx.dir, serial++);
    assert_int_equal (mkdir (s->root, 0755), 0);
    //  Merged /usr: the top-level links, /usr itself read-only
    const char *tops [] = { "bin", "lib", "lib64", "sbin", NULL };
    for (const char **t = tops; *t; t++) {
        char host [64], link [512], target [256];
        snprintf (host, sizeof (host), "/%s", *t);
        ssize_t len = readlink (host, target, sizeof (target) - 1);
        if (len <= 0)
            continue;
        target [len] = 0;
        snprintf (link, sizeof (link), "%s/%s", s->root, *t);
        assert_int_equal (symlink (target, link), 0);
    }
    char tmp [512];
    snprintf (tmp, sizeof (tmp), "%s/tmp", s->root);
    mkdir (tmp, 01777);
    //  /out is the one writable directory; /src/in.h a read-only input,
    //  a hard link of a "store" file outside the root.
    snprintf (tmp, sizeof (tmp), "%s/out", s->root);
    assert_int_equal (mkdir (tmp, 0755), 0);
    snprintf (tmp, sizeof (tmp), "%s/src", s->root);
    assert_int_equal (mkdir (tmp, 0755), 0);
    snprintf (s->store_file, sizeof (s->store_file), "%s.store", s->root);
    FILE *file = fopen (s->store_file, "w");
    assert_non_null (file);
    fputs ("#define X 1\n", file);
    fclose (file);
    assert_int_equal (chmod (s->store_file, 0444), 0);
    snprintf (tmp, sizeof (tmp), "%s/src/in.h", s->root);
    assert_int_equal (link (s->store_file, tmp), 0);
    s->binds [0] = "/usr";
    s->binds [1] = "/etc/ld.so.cache";
    s->binds [2] = NULL;
}

static void
s_sh (sbx_t *s, const char *script, const sandbox_limits_t *limits, sandbox_result_t *run)
{
    char *argv [] = { "/bin/sh", "-c", (char *) script, NULL };
    char *envp [] = { "PATH=/usr/bin:/bin", NULL };
    const char *rw [] = { "/out", NULL };
    sandbox_spec_t spec = { .root = s->root, .ro_binds = s->binds, .rw_dirs = rw,
                            .private_tmp = true, .cwd = "/", .envp = envp };
    sandbox_limits_t none = { .wall_ms = 10000 };
    char err [256];
    assert_int_equal (sandbox_run (&spec, argv, limits ? limits : &none, run, err, sizeof (err)), 0);
}

static void
test_sandbox_isolation (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    sbx_t s;
    s_sandbox_root (&s);
    sandbox_result_t run;

    //  Runs, with our environment only
    s_sh (&s, "echo hello; echo \"$PATH\" >&2; test -z \"$HOME\"", NULL, &run);
    assert_int_equal (run.status, 0);
    assert_int_equal (run.out_size, 6);
    assert_memory_equal (run.out, "hello\n", 6);
    assert_memory_equal (run.err, "/usr/bin:/bin\n", 14);
    sandbox_result_clear (&run);

    //  No network: a listener on the host's loopback is unreachable
    int listener = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert_int_equal (bind (listener, (struct sockaddr *) &addr, sizeof (addr)), 0);
    assert_int_equal (listen (listener, 4), 0);
    socklen_t len = sizeof (addr);
    getsockname (listener, (struct sockaddr *) &addr, &len);
    char script [256];
    snprintf (script, sizeof (script),
              "exec bash -c 'echo x > /dev/tcp/127.0.0.1/%d' 2>/dev/null && echo connected",
              ntohs (addr.sin_port));
    s_sh (&s, script, NULL, &run);
    assert_int_not_equal (run.status, 0);
    assert_int_equal (run.out_size, 0);
    sandbox_result_clear (&run);
    s_sh (&s, "ls /sys/class/net", NULL, &run);
    if (run.status == 0)
        assert_null (memmem (run.out, run.out_size, "eth", 3));
    sandbox_result_clear (&run);
    assert_int_equal (accept (listener, NULL, NULL), -1);
    assert_true (errno == EAGAIN || errno == EWOULDBLOCK);
    close (listener);

    //  No view of the host: /root, /home, /work, our project are absent
    snprintf (script, sizeof (script),
              "for d in /root /home /work %s; do test -e $d && echo $d; done; true", s_fx.proj);
    s_sh (&s, script, NULL, &run);
    assert_int_equal (run.status, 0);
    if (run.out_size)
        print_error ("visible: %.*s\n", (int) run.out_size, (char *) run.out);
    assert_int_equal (run.out_size, 0);
    sandbox_result_clear (&run);

    //  Writes only where allowed: /usr and / are read-only, /tmp is a
    //  private tmpfs (in neither the host's /tmp nor the root), /out is the
    //  root's own; an input (a hard link of a store file) cannot be
    //  chmod'ed or written, so the store is never changed from inside.
    s_sh (&s, "touch /usr/bin/meshcc-evil 2>/dev/null && echo wrote-usr;"
              "echo y > /meshcc-top 2>/dev/null && echo wrote-top;"
              "chmod u+w /src/in.h 2>/dev/null && echo chmod-input;"
              "echo evil >> /src/in.h 2>/dev/null && echo wrote-input;"
              "echo x > /tmp/meshcc-sbx-marker && cat /tmp/meshcc-sbx-marker;"
              "echo z > /out/o && echo wrote-out; id -u", NULL, &run);
    assert_int_equal (run.status, 0);
    if (run.out_size)
        print_message ("sandbox said: %.*s\n", (int) run.out_size, (char *) run.out);
    assert_null (memmem (run.out, run.out_size, "wrote-usr", 9));
    assert_null (memmem (run.out, run.out_size, "wrote-top", 9));
    assert_null (memmem (run.out, run.out_size, "chmod-input", 11));
    assert_null (memmem (run.out, run.out_size, "wrote-input", 11));
    assert_non_null (memmem (run.out, run.out_size, "x\nwrote-out", 11));
    sandbox_result_clear (&run);
    assert_int_equal (access ("/usr/bin/meshcc-evil", F_OK), -1);
    assert_int_equal (access ("/tmp/meshcc-sbx-marker", F_OK), -1);
    assert_int_equal (access ("/meshcc-top", F_OK), -1);
    char path [512];
    snprintf (path, sizeof (path), "%s/tmp/meshcc-sbx-marker", s.root);
    assert_int_equal (access (path, F_OK), -1);
    snprintf (path, sizeof (path), "%s/meshcc-top", s.root);
    assert_int_equal (access (path, F_OK), -1);
    snprintf (path, sizeof (path), "%s/out/o", s.root);
    assert_int_equal (access (path, F_OK), 0);
    struct stat st;
    assert_int_equal (stat (s.store_file, &st), 0);
    assert_int_equal (st.st_mode & 07777, 0444);
    assert_int_equal (st.st_size, 12);

    //  No capabilities: cannot remount the read-only binds
    s_sh (&s, "mount -o remount,rw /usr 2>/dev/null && echo remounted; "
              "grep CapEff /proc/self/status", NULL, &run);
    assert_null (memmem (run.out, run.out_size, "remounted", 9));
    assert_non_null (memmem (run.out, run.out_size, "0000000000000000", 16));
    sandbox_result_clear (&run);
}

static void
test_sandbox_limits (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    sbx_t s;
    s_sandbox_root (&s);
    sandbox_result_t run;

    //  CPU: a busy loop dies at 1 s of CPU
    sandbox_limits_t cpu = { .cpu_seconds = 1, .wall_ms = 10000 };
    uint64_t t0 = s_now_us ();
    s_sh (&s, "while :; do :; done", &cpu, &run);
    assert_true (run.status >= 128);
    assert_false (run.wall_killed);
    assert_true (s_now_us () - t0 < 5000000);
    sandbox_result_clear (&run);

    //  Wall clock: a sleeper is killed
    sandbox_limits_t wall = { .wall_ms = 300 };
    t0 = s_now_us ();
    s_sh (&s, "sleep 30", &wall, &run);
    assert_true (run.wall_killed);
    assert_true (s_now_us () - t0 < 3000000);
    sandbox_result_clear (&run);

    //  Output: captured up to the bound, flagged beyond it
    sandbox_limits_t output = { .output_bytes = 1000, .wall_ms = 10000 };
    s_sh (&s, "head -c 100000 /dev/zero", &output, &run);
    assert_true (run.output_truncated);
    assert_true (run.out_size <= 1000);
    sandbox_result_clear (&run);

    //  File size: a write beyond RLIMIT_FSIZE fails
    sandbox_limits_t fsize = { .file_bytes = 4096, .wall_ms = 10000 };
    s_sh (&s, "head -c 100000 /dev/zero > /out/big; echo $?", &fsize, &run);
    char path [512];
    snprintf (path, sizeof (path), "%s/out/big", s.root);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (st.st_size <= 4096);
    sandbox_result_clear (&run);

    //  Memory: a large allocation fails under RLIMIT_AS
    sandbox_limits_t memory = { .memory_bytes = 64ULL << 20, .wall_ms = 10000 };
    s_sh (&s, "head -c 200000000 /dev/zero | sort > /dev/null", &memory, &run);
    assert_int_not_equal (run.status, 0);
    sandbox_result_clear (&run);
}

static int
s_compare_u64 (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

//  The cost of the sandbox: medians of N direct compiles, N executor runs
//  (warm store, warm toolchain) and N empty sandboxes (MESHCC_EXEC_BENCH=N,
//  default 5). Printed, not asserted: the machine may be loaded.
static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

static void
test_cost (void **state)
{
    (void) state;
    SKIP_WITHOUT_SANDBOX ();
    int n = getenv ("MESHCC_EXEC_BENCH") ? atoi (getenv ("MESHCC_EXEC_BENCH")) : 5;
    if (n < 1 || n > 200)
        n = 5;
    char *argv [] = { "gcc", "-g", "-O2", "-Ilink", "-c", "src/foo.c", "-o", "obj/foo.o",
                      "-MD", "-MF", "obj/foo.d", NULL };
    uint64_t *direct = calloc ((size_t) n, sizeof (uint64_t));
    uint64_t *remote = calloc ((size_t) n, sizeof (uint64_t));
    uint64_t *setup = calloc ((size_t) n, sizeof (uint64_t));
    uint64_t *empty = calloc ((size_t) n, sizeof (uint64_t));
    uint64_t *tree = calloc ((size_t) n, sizeof (uint64_t));
    uint64_t *tree_setup = calloc ((size_t) n, sizeof (uint64_t));
    job_spec_t *job = s_make_job (argv, NULL);
    sbx_t s;
    s_sandbox_root (&s);
    for (int i = 0; i < n; i++) {
        local_t local;
        s_compile_local (argv, "obj/foo.o", "obj/foo.d", &local);
        direct [i] = local.wall_us;
        free (local.err); free (local.obj); free (local.dep);
        job_result_t *result = job_result_new ();
        uint64_t t0 = s_now_us ();
        executor_run (s_fx.executor, job, NULL, result);
        remote [i] = s_now_us () - t0;
        setup [i] = result->setup_us;
        assert_null (result->failure);
        job_result_destroy (&result);
        if (*s_tree_kept) {
            result = job_result_new ();
            t0 = s_now_us ();
            executor_run (s_fx.executor, job, s_tree_kept, result);
            tree [i] = s_now_us () - t0;
            tree_setup [i] = result->setup_us;
            assert_null (result->failure);
            job_result_destroy (&result);
        }
        sandbox_result_t run;
        t0 = s_now_us ();
        s_sh (&s, "exit 0", NULL, &run);
        empty [i] = s_now_us () - t0;
        sandbox_result_clear (&run);
        executor_wait_idle (s_fx.executor);
    }
    //  The start-up per job: the median of each round's difference with
    //  the direct compile of the same round (drift falls on both alike)
    int64_t *extra = calloc ((size_t) n, sizeof (int64_t));
    int64_t *tree_extra = calloc ((size_t) n, sizeof (int64_t));
    for (int i = 0; i < n; i++) {
        extra [i] = (int64_t) remote [i] - (int64_t) direct [i];
        tree_extra [i] = (int64_t) tree [i] - (int64_t) direct [i];
    }
    qsort (extra, (size_t) n, sizeof (int64_t), s_compare_i64);
    qsort (tree_extra, (size_t) n, sizeof (int64_t), s_compare_i64);
    print_message ("start-up per job (median of executor_run - direct, paired by round): "
                   "the peer's own compiler %.2f ms", extra [n / 2] / 1000.0);
    if (*s_tree_kept)
        print_message ("; the packaged toolchain %.2f ms", tree_extra [n / 2] / 1000.0);
    print_message ("\n");
    free (extra);
    free (tree_extra);
    qsort (tree, (size_t) n, sizeof (uint64_t), s_compare_u64);
    qsort (tree_setup, (size_t) n, sizeof (uint64_t), s_compare_u64);
    qsort (direct, (size_t) n, sizeof (uint64_t), s_compare_u64);
    qsort (remote, (size_t) n, sizeof (uint64_t), s_compare_u64);
    qsort (setup, (size_t) n, sizeof (uint64_t), s_compare_u64);
    qsort (empty, (size_t) n, sizeof (uint64_t), s_compare_u64);
    print_message ("cost over %d runs (medians): direct gcc -g -O2 %.1f ms; executor_run %.1f ms "
                   "(of which setup %.1f ms, %zu manifest entries); empty bwrap sandbox %.1f ms\n",
                   n, direct [n / 2] / 1000.0, remote [n / 2] / 1000.0, setup [n / 2] / 1000.0,
                   job->entry_count, empty [n / 2] / 1000.0);
    if (*s_tree_kept)
        print_message ("cost with the packaged toolchain (medians): executor_run %.1f ms "
                       "(of which setup %.1f ms)\n", tree [n / 2] / 1000.0, tree_setup [n / 2] / 1000.0);
    job_spec_destroy (&job);
    free (direct); free (remote); free (setup); free (empty); free (tree); free (tree_setup);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_parse_rule),
        cmocka_unit_test (test_resolve),
        cmocka_unit_test (test_resolve_known),
        cmocka_unit_test (test_relevant_env),
        cmocka_unit_test (test_identity),
        cmocka_unit_test (test_manifest),
        cmocka_unit_test (test_identical_c),
        cmocka_unit_test (test_identical_cxx),
        cmocka_unit_test (test_identical_clang),
        cmocka_unit_test (test_identical_tree),
        cmocka_unit_test (test_identical_error),
        cmocka_unit_test (test_refuse_plugin),
        cmocka_unit_test (test_refuse_identity),
        cmocka_unit_test (test_missing_blob),
        cmocka_unit_test (test_refuse_manifest),
        cmocka_unit_test (test_sandbox_isolation),
        cmocka_unit_test (test_sandbox_limits),
        cmocka_unit_test (test_cost),
    };
    return cmocka_run_group_tests_name ("executor", tests, s_group_setup, s_group_teardown);
}
