//  Unit tests of the compiler wrapper (src/client/wrapper.c): finding the
//  real compiler on PATH without ever finding meshcc itself, packing argv
//  and environ for the COMPILE request, and the one-warning-per-build
//  marker. The end-to-end behaviour (exec, fallback, replies) is in
//  tests/integration/t_compile.sh.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "meshcc/control.h"
#include "meshcc/wrapper.h"

extern char **environ;

//  A fresh temp directory per test, removed (with one level of content)
//  at the end.
static char s_root [64];

static int
s_setup (void **state)
{
    (void) state;
    strcpy (s_root, "/tmp/test-client-wrapper-XXXXXX");
    return mkdtemp (s_root)? 0: -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", s_root);
    return system (command) == 0? 0: -1;
}

static char *
s_path (const char *name)
{
    static char path [4][PATH_MAX];
    static int next = 0;
    next = (next + 1) % 4;
    snprintf (path [next], sizeof path [next], "%s/%s", s_root, name);
    return path [next];
}

//  An executable script at ROOT/rel.
static void
s_make_exec (const char *rel)
{
    char *path = s_path (rel);
    char dir [PATH_MAX];
    snprintf (dir, sizeof dir, "%s", path);
    *strrchr (dir, '/') = 0;
    mkdir (dir, 0755);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("#!/bin/sh\nexit 0\n", file);
    fclose (file);
    assert_int_equal (chmod (path, 0755), 0);
}

static bool
s_fake_is_self (const char *candidate, void *arg)
{
    return strstr (candidate, (const char *) arg) != NULL;
}

static void
test_selftest (void **state)
{
    (void) state;
    wrapper_test (false);
}

//  The pure walk: order, skipping by predicate and by directory, empty
//  entries, non-executables and directories named like the compiler.
static void
test_path_search (void **state)
{
    (void) state;
    s_make_exec ("masq/gcc");
    s_make_exec ("real1/gcc");
    s_make_exec ("real2/gcc");
    mkdir (s_path ("dironly"), 0755);
    mkdir (s_path ("dironly/gcc"), 0755);
    mkdir (s_path ("noexec"), 0755);
    FILE *file = fopen (s_path ("noexec/gcc"), "w");
    fclose (file);

    char path_env [4 * PATH_MAX];
    snprintf (path_env, sizeof path_env, "%s/dironly:%s/noexec:%s/masq:%s/real1:%s/real2",
              s_root, s_root, s_root, s_root, s_root);
    char out [PATH_MAX];
    assert_int_equal (wrapper_path_search ("gcc", path_env, NULL, NULL, NULL, out, sizeof out), 0);
    assert_string_equal (out, s_path ("masq/gcc"));

    //  The predicate vetoes the masquerade link: the next real one wins.
    assert_int_equal (wrapper_path_search ("gcc", path_env, NULL, s_fake_is_self, "/masq/",
                                           out, sizeof out), 0);
    assert_string_equal (out, s_path ("real1/gcc"));

    //  Skipping a directory (by identity, so another spelling of it
    //  counts too).
    char skip [PATH_MAX];
    snprintf (skip, sizeof skip, "%s/real1/../masq/", s_root);
    assert_int_equal (wrapper_path_search ("gcc", path_env, skip, NULL, NULL, out, sizeof out), 0);
    assert_string_equal (out, s_path ("real1/gcc"));

    //  Nothing but vetoed candidates: none.
    assert_int_equal (wrapper_path_search ("gcc", path_env, NULL, s_fake_is_self, s_root,
                                           out, sizeof out), -1);
    assert_int_equal (wrapper_path_search ("nosuchcompiler", path_env, NULL, NULL, NULL,
                                           out, sizeof out), -1);
    assert_int_equal (wrapper_path_search ("gcc", "", NULL, NULL, NULL, out, sizeof out), -1);

    //  An empty entry is the current directory, spelled ".".
    char cwd [PATH_MAX];
    assert_non_null (getcwd (cwd, sizeof cwd));
    assert_int_equal (chdir (s_path ("real2")), 0);
    assert_int_equal (wrapper_path_search ("gcc", "/nonexistent::/also-not", NULL, NULL, NULL,
                                           out, sizeof out), 0);
    assert_string_equal (out, "./gcc");
    assert_int_equal (chdir (cwd), 0);

    //  A result that does not fit is no result.
    char tiny [8];
    assert_int_equal (wrapper_path_search ("gcc", path_env, NULL, NULL, NULL, tiny, sizeof tiny), -1);
}

//  The real predicate: a link to this very binary (the test program
//  stands in for meshcc), a hard link to it, and anything resolving to a
//  file named "meshcc" are all meshcc; a real gcc is not.
static void
test_is_self (void **state)
{
    (void) state;
    char self [PATH_MAX];
    assert_non_null (realpath ("/proc/self/exe", self));
    mkdir (s_path ("masq"), 0755);
    assert_int_equal (symlink (self, s_path ("masq/gcc")), 0);
    assert_true (wrapper_is_self (s_path ("masq/gcc"), NULL));
    assert_true (wrapper_is_self (self, NULL));
    //  A hard link has its own path but the same inode (skipped if /tmp
    //  and the build are on different file systems).
    if (link (self, s_path ("masq/cc")) == 0)
        assert_true (wrapper_is_self (s_path ("masq/cc"), NULL));
    //  Another meshcc binary (say, an installed one behind a build's).
    s_make_exec ("other/meshcc");
    assert_int_equal (symlink ("../other/meshcc", s_path ("masq/g++")), 0);
    assert_true (wrapper_is_self (s_path ("masq/g++"), NULL));
    //  The meshcc binary under test, when the runner names it.
    const char *meshcc = getenv ("MESHCC_BIN");
    if (meshcc && access (meshcc, X_OK) == 0) {
        assert_int_equal (symlink (meshcc, s_path ("masq/clang")), 0);
        assert_true (wrapper_is_self (s_path ("masq/clang"), NULL));
    }
    s_make_exec ("real/gcc");
    assert_false (wrapper_is_self (s_path ("real/gcc"), NULL));
    assert_false (wrapper_is_self (s_path ("does/not/exist"), NULL));
}

//  Resolution as the wrapper does it: a masquerade directory first on
//  PATH is passed over and the next gcc is found; a path is taken as is
//  unless it is meshcc.
static void
test_resolve_compiler (void **state)
{
    (void) state;
    if (access ("/usr/bin/gcc", X_OK)) {
        skip ();
        return;
    }
    char self [PATH_MAX];
    assert_non_null (realpath ("/proc/self/exe", self));
    mkdir (s_path ("masq"), 0755);
    assert_int_equal (symlink (self, s_path ("masq/gcc")), 0);
    char *saved = strdup (getenv ("PATH")? getenv ("PATH"): "");
    char path_env [PATH_MAX * 2];
    snprintf (path_env, sizeof path_env, "%s/masq:/usr/bin", s_root);
    setenv ("PATH", path_env, 1);

    char out [PATH_MAX], err [PATH_MAX + 256];
    assert_int_equal (wrapper_resolve_compiler ("gcc", NULL, out, sizeof out, err, sizeof err), 0);
    assert_string_equal (out, "/usr/bin/gcc");
    //  The link's own directory is skipped even if its entry were a copy.
    assert_int_equal (wrapper_resolve_compiler ("gcc", s_path ("masq"), out, sizeof out,
                                                err, sizeof err), 0);
    assert_string_equal (out, "/usr/bin/gcc");

    //  Only meshcc answers to the name: an error that says so.
    snprintf (path_env, sizeof path_env, "%s/masq", s_root);
    setenv ("PATH", path_env, 1);
    assert_int_equal (wrapper_resolve_compiler ("gcc", NULL, out, sizeof out, err, sizeof err), -1);
    assert_non_null (strstr (err, "gcc"));

    //  Paths: absolute kept as given (not resolved through symlinks),
    //  relative made absolute, meshcc itself refused, missing refused.
    assert_int_equal (wrapper_resolve_compiler ("/usr/bin/gcc", NULL, out, sizeof out,
                                                err, sizeof err), 0);
    assert_string_equal (out, "/usr/bin/gcc");
    assert_int_equal (wrapper_resolve_compiler (s_path ("masq/gcc"), NULL, out, sizeof out,
                                                err, sizeof err), -1);
    assert_non_null (strstr (err, "meshcc itself"));
    assert_int_equal (wrapper_resolve_compiler ("/no/such/cc", NULL, out, sizeof out,
                                                err, sizeof err), -1);
    s_make_exec ("bin/cc");
    char cwd [PATH_MAX];
    assert_non_null (getcwd (cwd, sizeof cwd));
    assert_int_equal (chdir (s_root), 0);
    assert_int_equal (wrapper_resolve_compiler ("bin/cc", NULL, out, sizeof out, err, sizeof err), 0);
    char expected [PATH_MAX + 8];
    char real_root [PATH_MAX];
    assert_non_null (getcwd (real_root, sizeof real_root));
    snprintf (expected, sizeof expected, "%s/bin/cc", real_root);
    assert_string_equal (out, expected);
    assert_int_equal (chdir (cwd), 0);

    setenv ("PATH", saved, 1);
    free (saved);
}

//  argv and environ packed as control.h says, and back.
static void
test_pack_strings (void **state)
{
    (void) state;
    char *argv [] = { "gcc", "-DX=a b", "", "-c", "src/foo.c", "-o", "obj/foo.o", NULL };
    size_t size;
    char *packed = wrapper_pack_strings (argv, &size);
    size_t expected = 0;
    for (int i = 0; argv [i]; i++)
        expected += strlen (argv [i]) + 1;
    assert_int_equal (size, expected);
    assert_memory_equal (packed, "gcc\0-DX=a b\0\0-c\0", 16);
    assert_int_equal (packed [size - 1], 0);
    char **back = wrapper_unpack_strings (packed, size);
    assert_non_null (back);
    for (int i = 0; argv [i]; i++)
        assert_string_equal (back [i], argv [i]);
    assert_null (back [7]);
    wrapper_strings_free (&back);
    assert_null (back);
    free (packed);

    //  The empty vector: size 0, a valid buffer, unpacks to no strings.
    char *none [] = { NULL };
    packed = wrapper_pack_strings (none, &size);
    assert_non_null (packed);
    assert_int_equal (size, 0);
    back = wrapper_unpack_strings (packed, size);
    assert_non_null (back);
    assert_null (back [0]);
    wrapper_strings_free (&back);
    free (packed);

    //  The whole environment survives the round trip, in order, with a
    //  value holding '=' and newlines.
    setenv ("TEST_WRAPPER_ODD", "a=b\nc", 1);
    packed = wrapper_pack_strings (environ, &size);
    back = wrapper_unpack_strings (packed, size);
    int count = 0;
    for (; environ [count]; count++)
        assert_string_equal (back [count], environ [count]);
    assert_null (back [count]);
    bool found = false;
    for (int i = 0; back [i]; i++)
        found |= strcmp (back [i], "TEST_WRAPPER_ODD=a=b\nc") == 0;
    assert_true (found);
    wrapper_strings_free (&back);
    free (packed);
    unsetenv ("TEST_WRAPPER_ODD");

    //  Not NUL-terminated: refused.
    assert_null (wrapper_unpack_strings ("gcc\0-c", 6));
}

//  One warning per build: only the first claim of a (group, stamp) wins,
//  in this process or any other.
static void
test_warn_once (void **state)
{
    (void) state;
    assert_true (wrapper_warn_claim (s_root, 1000, 4242, "77"));
    assert_false (wrapper_warn_claim (s_root, 1000, 4242, "77"));
    struct stat st;
    assert_int_equal (stat (s_path ("meshcc-1000-warned-4242-77"), &st), 0);
    //  Another group, another user, or a reused group id with a new
    //  leader: each warns once again.
    assert_true (wrapper_warn_claim (s_root, 1000, 4243, "77"));
    assert_true (wrapper_warn_claim (s_root, 1001, 4242, "77"));
    assert_true (wrapper_warn_claim (s_root, 1000, 4242, "78"));
    assert_false (wrapper_warn_claim (s_root, 1000, 4242, "78"));

    //  Many processes racing for one marker: exactly one wins.
    enum { RACERS = 8 };
    pid_t pids [RACERS];
    for (int i = 0; i < RACERS; i++) {
        pids [i] = fork ();
        if (pids [i] == 0)
            _exit (wrapper_warn_claim (s_root, 1000, 5555, "1")? 0: 1);
    }
    int winners = 0;
    for (int i = 0; i < RACERS; i++) {
        int status;
        assert_int_equal (waitpid (pids [i], &status, 0), pids [i]);
        winners += WIFEXITED (status) && WEXITSTATUS (status) == 0;
    }
    assert_int_equal (winners, 1);

    //  A marker that cannot be created at all: warn rather than stay
    //  silent.
    assert_true (wrapper_warn_claim ("/nonexistent-meshcc-dir", 1000, 4242, "77"));
}

//  The compile channel's codec (control.h): a message round-trips, and a
//  body whose lengths do not add up, or has too many fields, is refused.
static void
test_compile_codec (void **state)
{
    (void) state;
    const void *data [3] = { CONTROL_RESULT, "", "x\0y" };
    size_t sizes [3] = { strlen (CONTROL_RESULT), 0, 3 };
    size_t size;
    uint8_t *message = control_message_new (3, data, sizes, &size);
    assert_int_equal (size, 4 + 4 + 6 + 4 + 4 + 3);
    assert_int_equal (control_get_u32 (message), size - 4);
    control_field_t fields [CONTROL_MAX_FIELDS];
    assert_int_equal (control_fields_parse (message + 4, size - 4, fields, CONTROL_MAX_FIELDS), 3);
    assert_true (control_field_is (&fields [0], CONTROL_RESULT));
    assert_int_equal (fields [1].size, 0);
    assert_int_equal (fields [2].size, 3);
    assert_memory_equal (fields [2].data, "x\0y", 3);
    //  Truncated anywhere: refused.
    for (size_t cut = 1; cut < size - 4; cut++)
        if (cut != 10 && cut != 14)         //  field boundaries are valid bodies
            assert_int_equal (control_fields_parse (message + 4, cut, fields, CONTROL_MAX_FIELDS), -1);
    //  More fields than the caller takes: refused.
    assert_int_equal (control_fields_parse (message + 4, size - 4, fields, 2), -1);
    //  A length beyond the body: refused.
    control_put_u32 (message + 4, 0xffffffff);
    assert_int_equal (control_fields_parse (message + 4, size - 4, fields, CONTROL_MAX_FIELDS), -1);
    assert_int_equal (control_fields_parse (message + 4, 0, fields, CONTROL_MAX_FIELDS), 0);
    free (message);
}

static void
test_group_stamp (void **state)
{
    (void) state;
    char stamp [32];
    wrapper_group_stamp (getpgrp (), stamp, sizeof stamp);
    assert_true (strlen (stamp) > 0);
    assert_int_equal (strspn (stamp, "0123456789"), strlen (stamp));
    //  Stable for the life of the group.
    char again [32];
    wrapper_group_stamp (getpgrp (), again, sizeof again);
    assert_string_equal (stamp, again);
    //  Our own process started after (or with) the group's leader.
    char mine [32];
    wrapper_group_stamp (getpid (), mine, sizeof mine);
    assert_true (strtoull (mine, NULL, 10) >= strtoull (stamp, NULL, 10));
    //  A group that does not exist.
    wrapper_group_stamp (0x7ffffff0, stamp, sizeof stamp);
    assert_string_equal (stamp, "0");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftest),
        cmocka_unit_test_setup_teardown (test_path_search, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_is_self, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_resolve_compiler, s_setup, s_teardown),
        cmocka_unit_test (test_pack_strings),
        cmocka_unit_test_setup_teardown (test_warn_once, s_setup, s_teardown),
        cmocka_unit_test (test_compile_codec),
        cmocka_unit_test (test_group_stamp),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
