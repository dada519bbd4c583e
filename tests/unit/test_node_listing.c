//  test_node_listing: reuse of dependency listings (listing_cache.c and
//  its use by inputs.c) with the real gcc. A listing is reused only while
//  nothing it depends on changed: the same compile twice reuses it; a
//  header that now includes another file, a header shadowing a listed one
//  in an earlier -I directory or next to the source, different arguments
//  and a source edited a moment ago all make a new listing, and the
//  manifest then names what the compiler reads now.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <czmq.h>
#include <fcntl.h>
#include "meshcc/compile_args.h"
#include "meshcc/hash_cache.h"
#include "meshcc/inputs.h"
#include "meshcc/limits.h"
#include "meshcc/listing_cache.h"

static struct {
    char root [64];
    char proj [128], inc1 [128], inc2 [128], cache [128];
    hash_cache_t *hashes;
    listing_cache_t *listings;
} s_fx;

static void
s_write (const char *dir, const char *name, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  mtime 10 s back: older than the racy window, as any file not being
//  edited right now.
static void
s_backdate (const char *dir, const char *name)
{
    char path [512];
    snprintf (path, sizeof path, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    struct timespec times [2];
    clock_gettime (CLOCK_REALTIME, &times [0]);
    times [0].tv_sec -= 10;
    times [1] = times [0];
    assert_int_equal (utimensat (AT_FDCWD, path, times, 0), 0);
}

static void
s_backdate_all (void)
{
    s_backdate (s_fx.proj, "x.c");
    s_backdate (s_fx.inc2, "a.h");
    s_backdate (s_fx.proj, NULL);
    s_backdate (s_fx.inc1, NULL);
    s_backdate (s_fx.inc2, NULL);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_fx.root, sizeof s_fx.root, "/tmp/meshcc-tlist-XXXXXX");
    assert_non_null (mkdtemp (s_fx.root));
    snprintf (s_fx.proj, sizeof s_fx.proj, "%s/proj", s_fx.root);
    snprintf (s_fx.inc1, sizeof s_fx.inc1, "%s/inc1", s_fx.root);
    snprintf (s_fx.inc2, sizeof s_fx.inc2, "%s/inc2", s_fx.root);
    snprintf (s_fx.cache, sizeof s_fx.cache, "%s/cache", s_fx.root);
    assert_int_equal (mkdir (s_fx.proj, 0755), 0);
    assert_int_equal (mkdir (s_fx.inc1, 0755), 0);
    assert_int_equal (mkdir (s_fx.inc2, 0755), 0);
    assert_int_equal (mkdir (s_fx.cache, 0755), 0);
    s_write (s_fx.proj, "x.c", "#include \"a.h\"\nint f (void) { return A; }\n");
    s_write (s_fx.inc2, "a.h", "#define A 1\n");
    s_backdate_all ();
    char err [256];
    s_fx.hashes = hash_cache_new (s_fx.cache, err, sizeof err);
    assert_non_null (s_fx.hashes);
    s_fx.listings = listing_cache_new (LISTING_CACHE_BYTES, LISTING_RACY_MS);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    hash_cache_destroy (&s_fx.hashes);
    listing_cache_destroy (&s_fx.listings);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", s_fx.root);
    assert_int_equal (system (command), 0);
    return 0;
}

//  Lists `gcc -c x.c -I inc1 -I inc2 [extra]`: whether the listing was
//  reused, and whether the manifest holds the file ending in `want`.
static bool
s_list (const char *extra, const char *want, bool *has_p)
{
    char i1 [160], i2 [160];
    snprintf (i1, sizeof i1, "-I%s", s_fx.inc1);
    snprintf (i2, sizeof i2, "-I%s", s_fx.inc2);
    char *argv [] = { "gcc", "-c", "x.c", "-o", "x.o", i1, i2, (char *) extra, NULL };
    int argc = extra ? 8 : 7;
    argv [argc] = NULL;
    compile_args_t *args = compile_args_parse (argc, argv, s_fx.proj);
    assert_non_null (args);
    char *envp [] = { "PATH=/usr/bin:/bin", NULL };
    job_spec_t *job = job_spec_new ();
    char err [512] = "";
    bool reused = true;
    int rc = inputs_manifest (args, s_fx.proj, envp, s_fx.hashes, s_fx.listings, job,
                              &reused, err, sizeof err);
    if (rc)
        print_error ("inputs_manifest: %s\n", err);
    assert_int_equal (rc, 0);
    *has_p = false;
    for (size_t i = 0; i < job->entry_count; i++) {
        const char *path = job->entries [i].path;
        size_t len = strlen (path), wlen = strlen (want);
        if (job->entries [i].kind == MANIFEST_FILE && len >= wlen
        &&  streq (path + len - wlen, want))
            *has_p = true;
    }
    job_spec_destroy (&job);
    compile_args_destroy (&args);
    return reused;
}

static void
test_selftest (void **state)
{
    (void) state;
    listing_cache_test (false);
}

static void
test_parse_search (void **state)
{
    (void) state;
    const char *gcc =
        "Using built-in specs.\n"
        "ignoring nonexistent directory \"/usr/local/include/x86_64-linux-gnu\"\n"
        "ignoring duplicate directory \"/usr/include\"\n"
        "#include \"...\" search starts here:\n"
        " inc\n"
        "#include <...> search starts here:\n"
        " /usr/lib/gcc/x86_64-linux-gnu/12/include\n"
        " /usr/include\n"
        "End of search list.\n"
        "COLLECT_GCC_OPTIONS='-v'\n";
    zlist_t *dirs = inputs_parse_search (gcc);
    assert_int_equal (zlist_size (dirs), 4);
    assert_string_equal (zlist_first (dirs), "/usr/local/include/x86_64-linux-gnu");
    assert_string_equal (zlist_next (dirs), "inc");
    assert_string_equal (zlist_next (dirs), "/usr/lib/gcc/x86_64-linux-gnu/12/include");
    assert_string_equal (zlist_next (dirs), "/usr/include");
    zlist_destroy (&dirs);
    //  clang's framework marks; a list with no end is no list.
    dirs = inputs_parse_search ("#include <...> search starts here:\n"
                                " /Library/Frameworks (framework directory)\n"
                                "End of search list.\n");
    assert_int_equal (zlist_size (dirs), 1);
    assert_string_equal (zlist_first (dirs), "/Library/Frameworks");
    zlist_destroy (&dirs);
    dirs = inputs_parse_search ("#include <...> search starts here:\n /usr/include\n");
    assert_int_equal (zlist_size (dirs), 0);
    zlist_destroy (&dirs);
}

static void
test_reuse_and_invalidation (void **state)
{
    (void) state;
    bool has;
    assert_false (s_list (NULL, "inc2/a.h", &has));
    assert_true (has);
    assert_true (s_list (NULL, "inc2/a.h", &has));
    assert_true (has);
    //  Other arguments: another key.
    assert_false (s_list ("-DB=2", "inc2/a.h", &has));
    assert_true (s_list ("-DB=2", "inc2/a.h", &has));

    //  The header now includes another one: relisted, and it is listed.
    s_write (s_fx.inc2, "b.h", "#define B 2\n");
    s_write (s_fx.inc2, "a.h", "#include \"b.h\"\n#define A B\n");
    s_backdate (s_fx.inc2, "b.h");
    s_backdate (s_fx.inc2, "a.h");
    s_backdate (s_fx.inc2, NULL);
    assert_false (s_list (NULL, "inc2/b.h", &has));
    assert_true (has);
    assert_true (s_list (NULL, "inc2/b.h", &has));
    assert_true (has);

    //  A header in an earlier -I directory shadows a.h: relisted, and the
    //  manifest names the new one.
    s_write (s_fx.inc1, "a.h", "#define A 3\n");
    assert_false (s_list (NULL, "inc1/a.h", &has));
    assert_true (has);
    unlink (strcat (strcpy ((char [256]) { 0 }, s_fx.inc1), "/a.h"));
    s_backdate_all ();
    assert_false (s_list (NULL, "inc2/a.h", &has));
    assert_true (s_list (NULL, "inc2/a.h", &has));

    //  ... next to the source (quote includes look there first).
    s_write (s_fx.proj, "a.h", "#define A 4\n");
    assert_false (s_list (NULL, "proj/a.h", &has));
    assert_true (has);
    unlink (strcat (strcpy ((char [256]) { 0 }, s_fx.proj), "/a.h"));
    s_backdate_all ();
    assert_false (s_list (NULL, "inc2/a.h", &has));

    //  An object written next to the source: still reused.
    s_write (s_fx.proj, "x.o", "not really an object");
    assert_true (s_list (NULL, "inc2/a.h", &has));

    //  The source edited just now: listed every time until it is older
    //  than the racy window.
    s_write (s_fx.proj, "x.c", "#include \"a.h\"\nint g (void) { return A; }\n");
    assert_false (s_list (NULL, "x.c", &has));
    assert_false (s_list (NULL, "x.c", &has));
    s_backdate (s_fx.proj, "x.c");
    assert_false (s_list (NULL, "x.c", &has));
    assert_true (s_list (NULL, "x.c", &has));
    assert_true (has);
}

//  Replaces directory `dir` by a copy of itself (`cp -a`: same contents
//  and mtimes, new inodes and ctimes), as a fresh checkout or a build
//  tree copied anew does.
static void
s_copy_anew (const char *dir)
{
    char command [600];
    snprintf (command, sizeof command,
              "mv '%s' '%s.old' && cp -a '%s.old' '%s' && rm -rf '%s.old'", dir, dir, dir, dir, dir);
    assert_int_equal (system (command), 0);
}

//  Copies the whole tree anew, then lists `want` once: reused or not,
//  with the cache's counts across that listing.
static bool
s_list_after_copy (const char *want, bool *has_p, listing_cache_counts_t *before,
                   listing_cache_counts_t *after)
{
    s_copy_anew (s_fx.proj);
    s_copy_anew (s_fx.inc1);
    s_copy_anew (s_fx.inc2);
    listing_cache_counts (s_fx.listings, before);
    bool reused = s_list (NULL, want, has_p);
    listing_cache_counts (s_fx.listings, after);
    return reused;
}

static void
test_copy_of_tree (void **state)
{
    (void) state;
    bool has;
    assert_false (s_list (NULL, "inc2/a.h", &has));
    assert_true (s_list (NULL, "inc2/a.h", &has));
    //  A copy of the whole tree: every stamp new, every content the same:
    //  reused, the files' content checked (ccache's direct mode does the
    //  same with its manifests).
    listing_cache_counts_t before, after;
    assert_true (s_list_after_copy ("inc2/a.h", &has, &before, &after));
    assert_true (has);
    assert_int_equal (after.rehashed, before.rehashed + 1);
    assert_true (s_list (NULL, "inc2/a.h", &has));     //  and its new stamps kept

    //  A copy whose header differs in content only (same size, same mtime):
    //  relisted.
    s_copy_anew (s_fx.inc2);
    char path [512];
    snprintf (path, sizeof path, "%s/a.h", s_fx.inc2);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    s_write (s_fx.inc2, "a.h", "#define A 2\n");
    struct timespec times [2] = { st.st_atim, st.st_mtim };
    assert_int_equal (utimensat (AT_FDCWD, path, times, 0), 0);
    assert_false (s_list (NULL, "inc2/a.h", &has));
    assert_true (has);
    assert_true (s_list (NULL, "inc2/a.h", &has));
}

//  Open vSwitch's case: a name found in two search directories (util.h in
//  lib/ and include/openvswitch/). The compiler picks inc1/a.h and passes
//  over inc2/a.h; after a copy of the tree the listing still holds, since
//  inc2/a.h was there already. A header that appears where it would be
//  found first still makes a new listing.
static void
test_copy_with_same_names (void **state)
{
    (void) state;
    bool has;
    s_write (s_fx.inc1, "a.h", "#define A 5\n");
    s_backdate (s_fx.inc1, "a.h");
    s_backdate_all ();
    assert_false (s_list (NULL, "inc1/a.h", &has));
    assert_true (has);
    listing_cache_counts_t before, after;
    assert_true (s_list_after_copy ("inc1/a.h", &has, &before, &after));
    assert_true (has);
    assert_int_equal (after.hits, before.hits + 1);
    assert_int_equal (after.stale, before.stale);
    assert_true (s_list (NULL, "inc1/a.h", &has));

    //  Copied again, and a new a.h next to the source (quote includes look
    //  there first): a new listing that names it.
    s_copy_anew (s_fx.proj);
    s_write (s_fx.proj, "a.h", "#define A 6\n");
    assert_false (s_list (NULL, "proj/a.h", &has));
    assert_true (has);
    //  ... and one unlisted in the directory passed over does not count.
    s_backdate (s_fx.proj, "a.h");
    s_backdate (s_fx.proj, NULL);
    assert_false (s_list (NULL, "proj/a.h", &has));
    s_copy_anew (s_fx.inc1);
    s_copy_anew (s_fx.inc2);
    assert_true (s_list (NULL, "proj/a.h", &has));
    assert_true (has);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test (test_parse_search),
        cmocka_unit_test_setup_teardown (test_reuse_and_invalidation, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_copy_of_tree, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_copy_with_same_names, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
