//  Unit tests of src/common: data directory resolution and locking, and
//  the mesh key files (through meshkey's self-test).

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "meshcc/datadir.h"
#include "meshcc/meshkey.h"
#include "meshcc/tree_remove.h"

static void
test_meshkey_selftest (void **state)
{
    (void) state;
    meshkey_test (false);
}

//  A tree with a 000 directory and a symlink leading out: all gone, the
//  symlink's target untouched.
static void
test_tree_remove_selftest (void **state)
{
    (void) state;
    tree_remove_test (false);
}

static void
test_datadir_resolve (void **state)
{
    (void) state;
    setenv ("HOME", "/home/someone", 1);
    unsetenv ("MESHCC_DIR");
    char *dir = datadir_resolve (NULL);
    assert_string_equal (dir, "/home/someone/.meshcc");
    free (dir);

    setenv ("MESHCC_DIR", "/srv/mesh", 1);
    dir = datadir_resolve (NULL);
    assert_string_equal (dir, "/srv/mesh");
    free (dir);

    //  --dir wins over the environment, and relative paths become absolute.
    dir = datadir_resolve ("/opt/node");
    assert_string_equal (dir, "/opt/node");
    free (dir);
    assert_int_equal (chdir ("/tmp"), 0);
    dir = datadir_resolve ("rel/dir");
    assert_string_equal (dir, "/tmp/rel/dir");
    free (dir);
    unsetenv ("MESHCC_DIR");
}

static void
test_datadir_lock (void **state)
{
    (void) state;
    char base [] = "/tmp/datadir-test-XXXXXX";
    assert_non_null (mkdtemp (base));
    char *dir = datadir_path (base, "a/b");
    assert_int_equal (datadir_create (dir), 0);
    struct stat st;
    assert_int_equal (stat (dir, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0700);

    assert_false (datadir_locked (dir));
    pid_t holder = -1;
    int fd = datadir_lock (dir, &holder);
    assert_true (fd >= 0);
    assert_true (datadir_locked (dir));

    //  Another process cannot take it, and learns who holds it.
    pid_t child = fork ();
    if (child == 0) {
        pid_t other = 0;
        int rc = datadir_lock (dir, &other);
        _exit (rc == -1 && other == getppid ()? 0: 1);
    }
    int status = 0;
    assert_int_equal (waitpid (child, &status, 0), child);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);

    //  Testing the lock never takes it: the holder keeps it.
    assert_true (datadir_locked (dir));
    close (fd);
    assert_false (datadir_locked (dir));
    fd = datadir_lock (dir, &holder);
    assert_true (fd >= 0);
    close (fd);

    char *lock = datadir_path (dir, "meshccd.lock");
    unlink (lock);
    free (lock);
    rmdir (dir);
    free (dir);
    char *parent = datadir_path (base, "a");
    rmdir (parent);
    free (parent);
    rmdir (base);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_meshkey_selftest),
        cmocka_unit_test (test_tree_remove_selftest),
        cmocka_unit_test (test_datadir_resolve),
        cmocka_unit_test (test_datadir_lock),
    };
    return cmocka_run_group_tests_name ("common", tests, NULL, NULL);
}
