//  Unit tests of toolchain packaging and the toolchain registry: packaging
//  the host gcc twice into two directories gives the same bytes; the
//  archive holds cc1, as, the libc the loader resolves, the LTO plugin and
//  the loader, and nothing of /usr/include or of gcc's directory beyond
//  its programs and headers; the unpacked archive, as the root of a
//  bubblewrap sandbox, compiles to the same object as the host (gcc, and
//  clang when installed); a corrupted or hostile archive is refused with
//  nothing extracted; the registry records, finds by weak key, migrates
//  and keeps its data; holders are recorded and forgotten.
//
//  The group packages /usr/bin/gcc once and the tests share that archive.
//
//  With MESHCC_BENCH_TOOLCHAIN="COMPILER..." set, the binary runs no test:
//  it packages each compiler MESHCC_BENCH_RUNS times (default 5) into
//  fresh directories and prints one line per run (scripts/bench-toolchain).

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <czmq.h>
#include <dirent.h>
#include <ftw.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/sysmacros.h>
#include "meshcc/limits.h"
#include "meshcc/toolchain.h"
#include "meshcc/tree_remove.h"
#include "meshcc/toolchain_db.h"

typedef struct {
    char dir [64];                  //  /tmp/test-toolchain-XXXXXX
    bool packaged;                  //  gcc_a is valid
    toolchain_info_t gcc_a;         //  /usr/bin/gcc packaged in DIR/a
    char gcc_err [512];
    bool sandbox;                   //  bwrap can make a sandbox here
    char why [512];
} fixture_t;

static fixture_t s_fx;

//  --------------------------------------------------------------------------
//  Helpers


static void
s_write (const char *path, const char *text)
{
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
    uint8_t *data = malloc (size > 0 ? (size_t) size : 1);
    assert_non_null (data);
    if (size > 0 && fread (data, 1, (size_t) size, file) != (size_t) size)
        size = -1;
    fclose (file);
    if (size < 0) {
        free (data);
        return NULL;
    }
    *size_p = (size_t) size;
    return data;
}

//  First line of a shell command's output into out (empty on failure).
static void
s_shell_line (const char *command, char *out, size_t out_size)
{
    out [0] = 0;
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    if (fgets (out, (int) out_size, pipe))
        out [strcspn (out, "\r\n")] = 0;
    pclose (pipe);
}

//  The realpath of a shell command's answer, without its leading slash
//  (an archive entry name), into out.
static void
s_shell_entry (const char *command, char *out, size_t out_size)
{
    char line [PATH_MAX], real [PATH_MAX];
    s_shell_line (command, line, sizeof line);
    if (!*line || !realpath (line, real))
        fail_msg ("`%s` answered \"%s\"", command, line);
    snprintf (out, out_size, "%s", real + 1);
}

static bool
s_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

//  Number of entries of a directory (besides . and ..).
static int
s_dir_count (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    struct dirent *item;
    while ((item = readdir (dir)))
        if (!streq (item->d_name, ".") && !streq (item->d_name, ".."))
            count++;
    closedir (dir);
    return count;
}

//  Whether DIR holds a ".*.tmp-*" entry (an unpacking's leftover).
static bool
s_has_temporary (const char *path)
{
    DIR *dir = opendir (path);
    assert_non_null (dir);
    bool found = false;
    struct dirent *item;
    while ((item = readdir (dir)))
        if (item->d_name [0] == '.' && strstr (item->d_name, ".tmp-"))
            found = true;
    closedir (dir);
    return found;
}

//  An archive entry as read back.
typedef struct {
    char *name;
    mode_t type;
    unsigned mode;
    int64_t size;
    char *target;
} s_read_entry_t;

//  Every entry of a .tar.zst, in archive order; *count_p entries.
static s_read_entry_t *
s_list_archive (const char *path, size_t *count_p)
{
    struct archive *archive = archive_read_new ();
    archive_read_support_filter_zstd (archive);
    archive_read_support_format_tar (archive);
    if (archive_read_open_filename (archive, path, 65536) != ARCHIVE_OK)
        fail_msg ("cannot open %s: %s", path, archive_error_string (archive));
    s_read_entry_t *entries = NULL;
    size_t count = 0;
    struct archive_entry *entry;
    while (archive_read_next_header (archive, &entry) == ARCHIVE_OK) {
        entries = realloc (entries, (count + 1) * sizeof *entries);
        s_read_entry_t *e = &entries [count++];
        e->name = strdup (archive_entry_pathname (entry));
        size_t len = strlen (e->name);
        if (len > 1 && e->name [len - 1] == '/')
            e->name [len - 1] = 0;
        e->type = archive_entry_filetype (entry);
        e->mode = archive_entry_mode (entry) & 07777;
        e->size = archive_entry_size (entry);
        e->target = archive_entry_symlink (entry) ? strdup (archive_entry_symlink (entry)) : NULL;
        //  Fixed metadata
        assert_int_equal (archive_entry_mtime (entry), 0);
        assert_int_equal (archive_entry_mtime_nsec (entry), 0);
        assert_int_equal (archive_entry_uid (entry), 0);
        assert_int_equal (archive_entry_gid (entry), 0);
        assert_true (!archive_entry_uname (entry) || !*archive_entry_uname (entry));
        assert_true (!archive_entry_gname (entry) || !*archive_entry_gname (entry));
        assert_false (archive_entry_atime_is_set (entry));
        assert_false (archive_entry_ctime_is_set (entry));
        assert_null (archive_entry_hardlink (entry));
        assert_int_equal (archive_entry_mode (entry) & 07000, 0);
    }
    archive_read_free (archive);
    *count_p = count;
    return entries;
}

static void
s_free_entries (s_read_entry_t *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free (entries [i].name);
        free (entries [i].target);
    }
    free (entries);
}

static const s_read_entry_t *
s_find (const s_read_entry_t *entries, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (streq (entries [i].name, name))
            return &entries [i];
    return NULL;
}

#define SKIP_WITHOUT_GCC() do { \
    if (!s_fx.packaged) { \
        print_message ("skipped: /usr/bin/gcc could not be packaged: %s\n", s_fx.gcc_err); \
        skip (); \
    } \
} while (0)

#define SKIP_WITHOUT_SANDBOX() do { \
    if (!s_fx.sandbox) { \
        print_message ("skipped: bwrap cannot create a sandbox here: %s\n", s_fx.why); \
        skip (); \
    } \
} while (0)

//  Runs `bwrap ROOT_ARGS --proc /proc --dev /dev --bind WORK /tmp -- ARGS`
//  with a clean environment; its exit status, output in DIR/bwrap.log
//  (shown on failure unless `quiet`).
static int
s_bwrap_run (const char *root_args, const char *work, const char *args, bool quiet)
{
    char *command = zsys_sprintf (
        "env -i PATH=" INPUTS_SANDBOX_PATH " LC_ALL=C bwrap %s --proc /proc --dev /dev"
        " --bind %s /tmp --chdir /tmp -- %s >%s/bwrap.log 2>&1",
        root_args, work, args, s_fx.dir);
    int status = system (command);
    zstr_free (&command);
    if (status != 0 && !quiet) {
        char *log = zsys_sprintf ("%s/bwrap.log", s_fx.dir);
        size_t size;
        uint8_t *text = s_read (log, &size);
        if (text) {
            print_message ("bwrap %s: %.*s\n", args, (int) (size < 2000 ? size : 2000), text);
            free (text);
        }
        zstr_free (&log);
    }
    return status;
}

static int
s_bwrap (const char *root_args, const char *work, const char *args)
{
    return s_bwrap_run (root_args, work, args, false);
}

//  Compiles SOURCE (text) as /tmp/NAME with COMPILER ARGS, once in the
//  unpacked `root` and once on the host (also through bwrap, so that the
//  paths are the same), and asserts that the two objects are identical.
static void
s_assert_same_object (const char *root, const char *compiler, const char *name,
                      const char *source)
{
    char *sandboxed = zsys_sprintf ("%s/work-root", s_fx.dir);
    char *host = zsys_sprintf ("%s/work-host", s_fx.dir);
    tree_remove (sandboxed);
    tree_remove (host);
    assert_int_equal (mkdir (sandboxed, 0700), 0);
    assert_int_equal (mkdir (host, 0700), 0);
    char *path = zsys_sprintf ("%s/%s", sandboxed, name);
    s_write (path, source);
    zstr_free (&path);
    path = zsys_sprintf ("%s/%s", host, name);
    s_write (path, source);
    zstr_free (&path);

    char *args = zsys_sprintf ("%s -O2 -c /tmp/%s -o /tmp/out.o", compiler, name);
    char *root_args = zsys_sprintf ("--bind %s /", root);
    assert_int_equal (s_bwrap (root_args, sandboxed, args), 0);
    assert_int_equal (s_bwrap ("--ro-bind / /", host, args), 0);
    zstr_free (&root_args);
    zstr_free (&args);

    char *a_path = zsys_sprintf ("%s/out.o", sandboxed);
    char *b_path = zsys_sprintf ("%s/out.o", host);
    size_t a_size = 0, b_size = 0;
    uint8_t *a = s_read (a_path, &a_size);
    uint8_t *b = s_read (b_path, &b_size);
    assert_non_null (a);
    assert_non_null (b);
    assert_true (a_size > 0);
    if (a_size != b_size || memcmp (a, b, a_size) != 0)
        fail_msg ("%s objects differ: %zu bytes in the toolchain's root, %zu on the host",
                  compiler, a_size, b_size);
    free (a);
    free (b);
    zstr_free (&a_path);
    zstr_free (&b_path);
    zstr_free (&sandboxed);
    zstr_free (&host);
}

//  --------------------------------------------------------------------------
//  Crafting archives (as a hostile peer would)

typedef struct {
    const char *name;
    mode_t type;                    //  AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR
    const char *content;            //  files; symlink target; hard link target
    bool hardlink;
} s_craft_t;

static void
s_craft (const char *path, const s_craft_t *entries, size_t count)
{
    struct archive *archive = archive_write_new ();
    archive_write_set_format_pax_restricted (archive);
    archive_write_add_filter_zstd (archive);
    assert_int_equal (archive_write_open_filename (archive, path), ARCHIVE_OK);
    struct archive_entry *entry = archive_entry_new ();
    for (size_t i = 0; i < count; i++) {
        const s_craft_t *c = &entries [i];
        archive_entry_clear (entry);
        archive_entry_set_pathname (entry, c->name);
        archive_entry_set_filetype (entry, c->type);
        archive_entry_set_perm (entry, c->type == AE_IFDIR ? 0755 : 0644);
        size_t size = 0;
        if (c->hardlink)
            archive_entry_set_hardlink (entry, c->content);
        else
        if (c->type == AE_IFLNK)
            archive_entry_set_symlink (entry, c->content);
        else
        if (c->type == AE_IFREG) {
            size = strlen (c->content);
            archive_entry_set_size (entry, (la_int64_t) size);
        }
        else
        if (c->type == AE_IFCHR)
            archive_entry_set_rdev (entry, makedev (1, 3));
        assert_int_equal (archive_write_header (archive, entry), ARCHIVE_OK);
        if (size)
            assert_int_equal (archive_write_data (archive, c->content, size), (la_ssize_t) size);
    }
    archive_entry_free (entry);
    assert_int_equal (archive_write_close (archive), ARCHIVE_OK);
    archive_write_free (archive);
}

//  --------------------------------------------------------------------------
//  Group set-up: /usr/bin/gcc packaged once; can bwrap make sandboxes?

static int
s_group_setup (void **state)
{
    (void) state;
    snprintf (s_fx.dir, sizeof s_fx.dir, "/tmp/test-toolchain-XXXXXX");
    if (!mkdtemp (s_fx.dir))
        return -1;
    char *dir = zsys_sprintf ("%s/a", s_fx.dir);
    int64_t start = zclock_mono ();
    s_fx.packaged = toolchain_package ("/usr/bin/gcc", dir, &s_fx.gcc_a,
                                       s_fx.gcc_err, sizeof s_fx.gcc_err) == 0;
    if (s_fx.packaged)
        print_message ("packaged /usr/bin/gcc in %" PRId64 " ms: %" PRIu64 " bytes, %" PRIu64
                       " files, %" PRIu64 " bytes unpacked\n", zclock_mono () - start,
                       s_fx.gcc_a.archive_size, s_fx.gcc_a.files, s_fx.gcc_a.unpacked_size);
    zstr_free (&dir);

    char *command = zsys_sprintf ("bwrap --ro-bind / / --proc /proc --dev /dev true"
                                  " >%s/probe.log 2>&1", s_fx.dir);
    s_fx.sandbox = system (command) == 0;
    zstr_free (&command);
    if (!s_fx.sandbox) {
        char *log = zsys_sprintf ("%s/probe.log", s_fx.dir);
        size_t size = 0;
        uint8_t *text = s_read (log, &size);
        snprintf (s_fx.why, sizeof s_fx.why, "%.*s", text ? (int) strcspn ((char *) text, "\n") : 0,
                  text ? (char *) text : "");
        if (!*s_fx.why)
            snprintf (s_fx.why, sizeof s_fx.why, "bwrap failed (is it installed?)");
        free (text);
        zstr_free (&log);
    }
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    tree_remove (s_fx.dir);
    return 0;
}

//  --------------------------------------------------------------------------
//  Tests

static void
test_selftests (void **state)
{
    (void) state;
    toolchain_test (false);
    toolchain_db_test (false);
}

static void
test_weak_key (void **state)
{
    (void) state;
    char err [512], expected [256];
    toolchain_weak_key_t key;
    if (!s_exists ("/usr/bin/gcc"))
        skip ();
    //  A bare name is looked up in PATH; the key says what the shell says
    char *saved = getenv ("PATH") ? strdup (getenv ("PATH")) : NULL;
    setenv ("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
    int rc = toolchain_weak_key ("gcc", &key, err, sizeof err);
    if (saved)
        setenv ("PATH", saved, 1);
    free (saved);
    assert_int_equal (rc, 0);
    char real [PATH_MAX];
    assert_non_null (realpath ("/usr/bin/gcc", real));
    s_shell_line ("PATH=/usr/local/bin:/usr/bin:/bin command -v gcc", expected, sizeof expected);
    assert_string_equal (key.compiler, expected);
    assert_string_equal (key.resolved, real);
    struct stat st;
    assert_int_equal (stat (real, &st), 0);
    assert_int_equal (key.size, (uint64_t) st.st_size);
    assert_int_equal (key.inode, (uint64_t) st.st_ino);
    assert_int_equal (key.mtime_ns, (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    s_shell_line ("gcc -dumpfullversion", expected, sizeof expected);
    assert_string_equal (key.version, expected);
    s_shell_line ("gcc -dumpmachine", expected, sizeof expected);
    assert_string_equal (key.target, expected);

    //  Not a compiler, not absolute, not there, not normalised
    assert_int_equal (toolchain_weak_key ("/bin/true", &key, err, sizeof err), -1);
    assert_int_equal (toolchain_weak_key ("bin/gcc", &key, err, sizeof err), -1);
    assert_int_equal (toolchain_weak_key ("/nonexistent/gcc", &key, err, sizeof err), -1);
    assert_int_equal (toolchain_weak_key ("/usr/bin/../bin/gcc", &key, err, sizeof err), -1);
    assert_int_equal (toolchain_weak_key ("no-such-compiler-here", &key, err, sizeof err), -1);
}

static void
test_package_deterministic (void **state)
{
    (void) state;
    SKIP_WITHOUT_GCC ();
    char err [512];
    toolchain_info_t b;
    char *dir = zsys_sprintf ("%s/b", s_fx.dir);
    assert_int_equal (toolchain_package ("/usr/bin/gcc", dir, &b, err, sizeof err), 0);
    zstr_free (&dir);
    assert_memory_equal (b.hash, s_fx.gcc_a.hash, BLOB_HASH_SIZE);
    assert_string_equal (b.hex, s_fx.gcc_a.hex);
    assert_string_not_equal (b.archive, s_fx.gcc_a.archive);

    size_t a_size, b_size;
    uint8_t *a_bytes = s_read (s_fx.gcc_a.archive, &a_size);
    uint8_t *b_bytes = s_read (b.archive, &b_size);
    assert_non_null (a_bytes);
    assert_non_null (b_bytes);
    assert_int_equal (a_size, b_size);
    assert_memory_equal (a_bytes, b_bytes, a_size);
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (a_bytes, a_size, hash);
    assert_memory_equal (hash, b.hash, BLOB_HASH_SIZE);
    free (a_bytes);
    free (b_bytes);

    //  Named by its hash, read-only, and what info says
    char *expected = zsys_sprintf ("%s/b/toolchains/%s.tar.zst", s_fx.dir, b.hex);
    assert_string_equal (b.archive, expected);
    zstr_free (&expected);
    struct stat st;
    assert_int_equal (stat (b.archive, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0444);
    assert_int_equal (b.archive_size, (uint64_t) st.st_size);
    assert_string_equal (b.key.compiler, "/usr/bin/gcc");
    char line [256];
    s_shell_line ("/usr/bin/gcc -dumpfullversion", line, sizeof line);
    assert_string_equal (b.key.version, line);
    s_shell_line ("/usr/bin/gcc -dumpmachine", line, sizeof line);
    assert_string_equal (b.key.target, line);
    assert_false (b.clang);
    assert_true (b.files > 10);
    assert_true (b.entries > b.files);
    assert_true (b.unpacked_size > b.archive_size);
    //  No temporary file left behind
    char *store = zsys_sprintf ("%s/b/toolchains", s_fx.dir);
    assert_int_equal (s_dir_count (store), 1);
    zstr_free (&store);
}

//  A pace function that counts its calls and stops the packaging after
//  `stop_after` of them (0: never).
typedef struct {
    uint64_t calls;
    uint64_t stop_after;
} s_pace_t;

static int
s_pace (void *arg)
{
    s_pace_t *pace = (s_pace_t *) arg;
    pace->calls++;
    return pace->stop_after && pace->calls > pace->stop_after ? -1 : 0;
}

static void
test_package_paced (void **state)
{
    (void) state;
    SKIP_WITHOUT_GCC ();
    char err [512];
    //  Asked before every read of TOOLCHAIN_PACE_BYTES at most; the same
    //  archive, byte for byte
    s_pace_t pace = { 0, 0 };
    toolchain_info_t c;
    char *dir = zsys_sprintf ("%s/paced", s_fx.dir);
    assert_int_equal (toolchain_package_paced ("/usr/bin/gcc", dir, s_pace, &pace, &c,
                                               err, sizeof err), 0);
    assert_memory_equal (c.hash, s_fx.gcc_a.hash, BLOB_HASH_SIZE);
    assert_int_equal (c.archive_size, s_fx.gcc_a.archive_size);
    assert_true (pace.calls >= c.unpacked_size / TOOLCHAIN_PACE_BYTES);
    assert_true (pace.calls >= c.files);
    zstr_free (&dir);

    //  Stopped midway: it fails, says so, and leaves nothing behind
    s_pace_t stop = { 0, 10 };
    dir = zsys_sprintf ("%s/stopped", s_fx.dir);
    assert_int_equal (toolchain_package_paced ("/usr/bin/gcc", dir, s_pace, &stop, &c,
                                               err, sizeof err), -1);
    assert_non_null (strstr (err, "stopped"));
    assert_int_equal (stop.calls, 11);
    char *store = zsys_sprintf ("%s/toolchains", dir);
    assert_int_equal (s_dir_count (store), 0);
    zstr_free (&store);
    zstr_free (&dir);
}

static void
test_package_contents (void **state)
{
    (void) state;
    SKIP_WITHOUT_GCC ();
    size_t count;
    s_read_entry_t *entries = s_list_archive (s_fx.gcc_a.archive, &count);
    assert_int_equal (count, s_fx.gcc_a.entries);

    //  Sorted, unique; counts and sizes as info says; nothing of /usr/include
    uint64_t files = 0, bytes = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && strcmp (entries [i - 1].name, entries [i].name) >= 0)
            fail_msg ("%s comes after %s", entries [i].name, entries [i - 1].name);
        if (strncmp (entries [i].name, "usr/include/", 12) == 0 || streq (entries [i].name, "usr/include"))
            fail_msg ("the archive holds %s", entries [i].name);
        if (entries [i].type == AE_IFREG) {
            files++;
            bytes += (uint64_t) entries [i].size;
        }
        //  Every parent is a directory entry listed before its children
        char parent [PATH_MAX];
        snprintf (parent, sizeof parent, "%s", entries [i].name);
        char *slash = strrchr (parent, '/');
        if (slash) {
            *slash = 0;
            const s_read_entry_t *p = s_find (entries, i, parent);
            if (!p || p->type != AE_IFDIR)
                fail_msg ("%s has no directory entry %s before it", entries [i].name, parent);
        }
    }
    assert_int_equal (files, s_fx.gcc_a.files);
    assert_int_equal (bytes, s_fx.gcc_a.unpacked_size);

    //  The file set says the same, in the same order
    char err [512];
    toolchain_files_t *set = toolchain_files_new ("/usr/bin/gcc", err, sizeof err);
    if (!set)
        fail_msg ("toolchain_files_new: %s", err);
    assert_int_equal (toolchain_files_size (set), count);
    for (size_t i = 0; i < count; i++) {
        const toolchain_entry_t *e = toolchain_files_get (set, i);
        assert_string_equal (e->name, entries [i].name);
        assert_ptr_equal (toolchain_files_find (set, e->name), e);
    }
    assert_null (toolchain_files_get (set, count));
    assert_null (toolchain_files_find (set, "usr/include/stdio.h"));
    assert_memory_equal (toolchain_files_key (set), &s_fx.gcc_a.key, sizeof (toolchain_weak_key_t));
    assert_false (toolchain_files_clang (set));
    toolchain_files_destroy (&set);
    assert_null (set);

    //  What must be there, each found here without the module's help
    char name [PATH_MAX], target [PATH_MAX];
    struct {
        const char *what;
        const char *command;
    } wanted [] = {
        { "the driver", "readlink -f /usr/bin/gcc" },
        { "cc1", "/usr/bin/gcc -print-prog-name=cc1" },
        { "cc1plus", "/usr/bin/gcc -print-prog-name=cc1plus" },
        { "as", "PATH=/usr/bin:/bin command -v as" },
        { "objcopy", "PATH=/usr/bin:/bin command -v objcopy" },
        { "the LTO plugin", "/usr/bin/gcc -print-file-name=liblto_plugin.so" },
        { "libc", "ldd $(/usr/bin/gcc -print-prog-name=cc1) | awk '$1 ~ /^libc\\.so/ {print $3}'" },
        { "cc1's libmpfr", "ldd $(/usr/bin/gcc -print-prog-name=cc1) | awk '$1 ~ /^libmpfr/ {print $3}'" },
        { "as's libbfd", "ldd $(readlink -f /usr/bin/as) | awk '$1 ~ /^libbfd/ {print $3}'" },
        { "the loader", "readelf -l /usr/bin/gcc | sed -n 's/.*interpreter: \\(.*\\)]/\\1/p'" },
        { "gcc's stddef.h", "echo $(/usr/bin/gcc -print-file-name=include)/stddef.h" },
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted [0]; i++) {
        s_shell_entry (wanted [i].command, name, sizeof name);
        const s_read_entry_t *e = s_find (entries, count, name);
        if (!e || e->type != AE_IFREG)
            fail_msg ("%s (%s) is not a file in the archive", wanted [i].what, name);
        struct stat st;
        char host [PATH_MAX + 2];
        snprintf (host, sizeof host, "/%s", name);
        assert_int_equal (stat (host, &st), 0);
        assert_int_equal (e->size, st.st_size);
        assert_int_equal (e->mode, st.st_mode & 0777);
    }
    //  The invoked path and the merged-/usr links, as symlinks
    const char *links [] = { "usr/bin/gcc", "usr/bin/as", "lib64", "lib" };
    for (size_t i = 0; i < sizeof links / sizeof links [0]; i++) {
        char host [PATH_MAX];
        snprintf (host, sizeof host, "/%s", links [i]);
        ssize_t len = readlink (host, target, sizeof target - 1);
        if (len < 0)
            continue;               //  not a symlink on this machine
        target [len] = 0;
        const s_read_entry_t *e = s_find (entries, count, links [i]);
        if (!e || e->type != AE_IFLNK || !e->target || !streq (e->target, target))
            fail_msg ("%s is not the symlink -> %s in the archive", links [i], target);
    }
    assert_null (s_find (entries, count, "etc/ld.so.cache"));     //  see toolchain.c
    assert_non_null (s_find (entries, count, "etc/ld.so.conf"));

    //  Nothing else of gcc's own directory: its programs, plugin, specs
    //  and include/ only (not f951, gnat1, libgcc.a, the sanitizers...)
    char install [PATH_MAX];
    s_shell_entry ("/usr/bin/gcc -print-file-name=include/..", install, sizeof install);
    size_t install_len = strlen (install);
    const char *allowed [] = { "cc1", "cc1plus", "cc1obj", "cc1objplus", "collect2", "lto1",
                               "lto-wrapper", "liblto_plugin.so", "specs", NULL };
    for (size_t i = 0; i < count; i++) {
        const char *n = entries [i].name;
        if (entries [i].type != AE_IFREG || strncmp (n, install, install_len) != 0
        ||  n [install_len] != '/')
            continue;
        const char *rest = n + install_len + 1;
        if (strncmp (rest, "include/", 8) == 0 || strncmp (rest, "include-fixed/", 14) == 0)
            continue;
        bool ok = false;
        for (const char **a = allowed; *a; a++)
            ok = ok || streq (rest, *a);
        if (!ok)
            fail_msg ("the archive holds %s, which no compile runs", n);
    }
    s_free_entries (entries, count);
}

static void
test_unpack_runs (void **state)
{
    (void) state;
    SKIP_WITHOUT_GCC ();
    char err [512];
    char *root = zsys_sprintf ("%s/root", s_fx.dir);
    int64_t start = zclock_mono ();
    assert_int_equal (toolchain_unpack (s_fx.gcc_a.archive, s_fx.gcc_a.hash, root, err, sizeof err), 0);
    print_message ("unpacked in %" PRId64 " ms\n", zclock_mono () - start);
    //  The driver is there, executable, reached from the invoked path
    char *driver = zsys_sprintf ("%s%s", root, s_fx.gcc_a.key.resolved);
    struct stat st;
    assert_int_equal (stat (driver, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0755);
    zstr_free (&driver);
    char *invoked = zsys_sprintf ("%s/usr/bin/gcc", root);
    assert_int_equal (lstat (invoked, &st), 0);
    assert_true (S_ISLNK (st.st_mode));
    zstr_free (&invoked);
    //  No temporary directory left next to it
    assert_false (s_has_temporary (s_fx.dir));
    //  Again: already there
    assert_int_equal (toolchain_unpack (s_fx.gcc_a.archive, s_fx.gcc_a.hash, root, err, sizeof err), 0);

    SKIP_WITHOUT_SANDBOX ();
    //  The unpacked gcc, as the whole root, compiles to the host's object
    s_assert_same_object (root, "/usr/bin/gcc", "x.c",
        "static const char msg [] = \"hello\";\n"
        "int square (int x) { return x * x + 3; }\n"
        "const char *message (void) { return msg; }\n"
        "double mix (double a, int b) { return a * b / 3.0; }\n");
    //  ...and really runs without the host: no host header is visible
    char *work = zsys_sprintf ("%s/work-root", s_fx.dir);
    char *path = zsys_sprintf ("%s/y.c", work);
    s_write (path, "#include <stdio.h>\nint main (void) { return puts (\"x\"); }\n");
    char *root_args = zsys_sprintf ("--bind %s /", root);
    assert_int_not_equal (s_bwrap_run (root_args, work, "/usr/bin/gcc -c /tmp/y.c -o /tmp/y.o",
                                       true), 0);
    zstr_free (&root_args);
    zstr_free (&path);
    zstr_free (&work);
    zstr_free (&root);
}

static void
test_unpack_corrupt (void **state)
{
    (void) state;
    SKIP_WITHOUT_GCC ();
    char err [512];
    char *area = zsys_sprintf ("%s/corrupt", s_fx.dir);
    assert_int_equal (mkdir (area, 0700), 0);
    size_t size;
    uint8_t *bytes = s_read (s_fx.gcc_a.archive, &size);
    assert_non_null (bytes);
    char *bad = zsys_sprintf ("%s/bad.tar.zst", area);
    char *dest = zsys_sprintf ("%s/dest", area);

    //  One byte flipped: the hash no longer matches, nothing extracted
    bytes [size / 2] ^= 0x40;
    FILE *file = fopen (bad, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (bytes, 1, size, file), size);
    fclose (file);
    assert_int_equal (toolchain_unpack (bad, s_fx.gcc_a.hash, dest, err, sizeof err), -1);
    assert_non_null (strstr (err, "hash"));
    assert_false (s_exists (dest));
    assert_int_equal (s_dir_count (area), 1);

    //  The same corrupted file with its own hash (a hostile holder): the
    //  hash passes, zstd's checksum or the tar reader fails, and what was
    //  extracted before that is removed
    uint8_t hash [BLOB_HASH_SIZE];
    blob_hash_buffer (bytes, size, hash);
    assert_int_equal (toolchain_unpack (bad, hash, dest, err, sizeof err), -1);
    assert_false (s_exists (dest));
    assert_int_equal (s_dir_count (area), 1);

    //  Truncated
    truncate (bad, (off_t) (size / 3));
    assert_int_equal (blob_hash_file (bad, hash), 0);
    assert_int_equal (toolchain_unpack (bad, hash, dest, err, sizeof err), -1);
    assert_false (s_exists (dest));
    assert_int_equal (s_dir_count (area), 1);
    free (bytes);
    zstr_free (&bad);
    zstr_free (&dest);
    zstr_free (&area);
}

static void
test_unpack_hostile (void **state)
{
    (void) state;
    char err [512];
    char *area = zsys_sprintf ("%s/hostile", s_fx.dir);
    char *outside = zsys_sprintf ("%s/outside", area);
    assert_int_equal (mkdir (area, 0700), 0);
    assert_int_equal (mkdir (outside, 0700), 0);
    char *archive = zsys_sprintf ("%s/archive.tar.zst", area);
    char *dest = zsys_sprintf ("%s/dest", area);
    char *absolute = zsys_sprintf ("%s/absolute-evil", area);
    char *through = zsys_sprintf ("%s/x", outside);
    uint8_t hash [BLOB_HASH_SIZE];

    //  A well-formed archive unpacks (the crafting itself is sound)
    s_craft_t good [] = {
        { "a", AE_IFDIR, NULL, false },
        { "a/file", AE_IFREG, "content\n", false },
        { "a/link", AE_IFLNK, "file", false },
        { "b", AE_IFLNK, "/etc", false },
    };
    s_craft (archive, good, 4);
    assert_int_equal (blob_hash_file (archive, hash), 0);
    assert_int_equal (toolchain_unpack (archive, hash, dest, err, sizeof err), 0);
    char *check = zsys_sprintf ("%s/a/link", dest);
    size_t size;
    uint8_t *text = s_read (check, &size);
    assert_non_null (text);
    assert_int_equal (size, 8);
    assert_memory_equal (text, "content\n", 8);
    free (text);
    zstr_free (&check);
    tree_remove (dest);

    struct {
        const char *why;
        s_craft_t entries [3];
        size_t count;
    } cases [] = {
        { "..", { { "a", AE_IFDIR, NULL, false }, { "a/../../evil", AE_IFREG, "x", false } }, 2 },
        { "..", { { "../evil", AE_IFREG, "x", false } }, 1 },
        { "absolute", { { absolute, AE_IFREG, "x", false } }, 1 },
        { "hard link", { { "a", AE_IFREG, "x", false }, { "b", AE_IFREG, "a", true } }, 2 },
        { "below a symlink", { { "a", AE_IFLNK, outside, false },
                               { "a/x", AE_IFREG, "x", false } }, 2 },
        { "device", { { "null", AE_IFCHR, NULL, false } }, 1 },
        { "device, FIFO", { { "fifo", AE_IFIFO, NULL, false } }, 1 },
        { "out of order", { { "b", AE_IFREG, "x", false }, { "a", AE_IFREG, "y", false } }, 2 },
        { "repeated", { { "a", AE_IFREG, "x", false }, { "a", AE_IFREG, "y", false } }, 2 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_craft (archive, cases [i].entries, cases [i].count);
        assert_int_equal (blob_hash_file (archive, hash), 0);
        int rc = toolchain_unpack (archive, hash, dest, err, sizeof err);
        if (rc != -1 || !strstr (err, cases [i].why))
            fail_msg ("case %zu (%s): rc %d, \"%s\"", i, cases [i].why, rc, err);
        assert_false (s_exists (dest));
        //  area holds the archive and outside/ only: no evil, no leftovers
        assert_int_equal (s_dir_count (area), 2);
        assert_int_equal (s_dir_count (outside), 0);
        assert_false (s_exists (absolute));
        assert_false (s_exists (through));
        char *evil = zsys_sprintf ("%s/../evil", area);
        assert_false (s_exists (evil));
        zstr_free (&evil);
        evil = zsys_sprintf ("%s/evil", area);
        assert_false (s_exists (evil));
        zstr_free (&evil);
    }
    zstr_free (&through);
    zstr_free (&absolute);
    zstr_free (&dest);
    zstr_free (&archive);
    zstr_free (&outside);
    zstr_free (&area);
}

static int
s_user_version (const char *path)
{
    sqlite3 *db;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    sqlite3_stmt *stmt;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    int version = sqlite3_column_int (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return version;
}

static void
test_registry (void **state)
{
    (void) state;
    char err [512];
    char *dir = zsys_sprintf ("%s/registry", s_fx.dir);
    char *path = zsys_sprintf ("%s/toolchains.db", dir);
    assert_int_equal (mkdir (dir, 0700), 0);
    s_write (path, "");             //  an empty file: migrated from nothing

    //  What packaging gave (or a made-up toolchain if gcc is missing)
    toolchain_info_t info = s_fx.gcc_a;
    if (!s_fx.packaged) {
        memset (&info, 0, sizeof info);
        blob_hash_buffer ("fake", 4, info.hash);
        snprintf (info.key.compiler, sizeof info.key.compiler, "/usr/bin/cc");
        snprintf (info.key.resolved, sizeof info.key.resolved, "/usr/bin/cc-1");
        snprintf (info.key.version, sizeof info.key.version, "1.2.3");
        snprintf (info.key.target, sizeof info.key.target, "x86_64-linux-gnu");
        info.key.size = 1;
        info.archive_size = 100;
        info.files = 3;
    }
    toolchain_db_t *db = toolchain_db_new (dir, err, sizeof err);
    if (!db)
        fail_msg ("toolchain_db_new: %s", err);
    assert_int_equal (s_user_version (path), TOOLCHAIN_DB_SCHEMA_VERSION);
    toolchain_db_set_now (db, 1000);
    uint8_t hash [BLOB_HASH_SIZE];
    assert_false (toolchain_db_lookup (db, &info.key, hash));
    assert_int_equal (toolchain_db_record_info (db, &info), 0);
    assert_true (toolchain_db_lookup (db, &info.key, hash));
    assert_memory_equal (hash, info.hash, BLOB_HASH_SIZE);

    //  The key computed again (as a node does at its next start) finds it
    if (s_fx.packaged) {
        toolchain_weak_key_t fresh;
        assert_int_equal (toolchain_weak_key ("/usr/bin/gcc", &fresh, err, sizeof err), 0);
        memset (hash, 0, sizeof hash);
        assert_true (toolchain_db_lookup (db, &fresh, hash));
        assert_memory_equal (hash, info.hash, BLOB_HASH_SIZE);
    }
    //  Every field of the key counts
    for (int field = 0; field < 7; field++) {
        toolchain_weak_key_t other = info.key;
        switch (field) {
            case 0: strcat (other.compiler, "x"); break;
            case 1: strcat (other.resolved, "x"); break;
            case 2: other.size++; break;
            case 3: other.mtime_ns++; break;
            case 4: other.inode++; break;
            case 5: strcat (other.target, "x"); break;
            case 6: strcat (other.version, "x"); break;
        }
        if (toolchain_db_lookup (db, &other, hash))
            fail_msg ("a key differing in field %d still matched", field);
    }

    toolchain_record_t record;
    assert_true (toolchain_db_get (db, info.hash, &record));
    assert_string_equal (record.compiler, info.key.compiler);
    assert_string_equal (record.version, info.key.version);
    assert_string_equal (record.target, info.key.target);
    assert_int_equal (record.size, info.archive_size);
    assert_int_equal (record.files, info.files);
    assert_int_equal (record.created, 1000);
    assert_int_equal (record.last_used, 1000);
    toolchain_db_set_now (db, 2000);
    assert_int_equal (toolchain_db_touch (db, info.hash), 0);
    toolchain_db_set_now (db, 3000);
    assert_int_equal (toolchain_db_record_info (db, &info), 0);     //  again: keeps created
    uint8_t other_hash [BLOB_HASH_SIZE];
    blob_hash_buffer ("other", 5, other_hash);
    assert_int_equal (toolchain_db_touch (db, other_hash), -1);
    toolchain_db_set_now (db, 2500);
    assert_int_equal (toolchain_db_record (db, other_hash, "/usr/bin/clang", "14.0.6",
                                           "x86_64-pc-linux-gnu", 7, 8, NULL), 0);
    toolchain_db_destroy (&db);
    assert_null (db);

    //  Reopened: all kept, listed most recently used first
    db = toolchain_db_new (dir, err, sizeof err);
    assert_non_null (db);
    assert_int_equal (s_user_version (path), TOOLCHAIN_DB_SCHEMA_VERSION);
    assert_true (toolchain_db_lookup (db, &info.key, hash));
    assert_memory_equal (hash, info.hash, BLOB_HASH_SIZE);
    size_t count;
    toolchain_record_t *records = toolchain_db_list (db, &count);
    assert_int_equal (count, 2);
    assert_memory_equal (records [0].hash, info.hash, BLOB_HASH_SIZE);
    assert_int_equal (records [0].created, 1000);
    assert_int_equal (records [0].last_used, 3000);
    assert_memory_equal (records [1].hash, other_hash, BLOB_HASH_SIZE);
    assert_string_equal (records [1].compiler, "/usr/bin/clang");
    assert_int_equal (records [1].size, 7);
    assert_int_equal (records [1].files, 8);
    free (records);

    //  Deleted: the row and its weak keys go, the other stays
    assert_int_equal (toolchain_db_delete (db, info.hash), 0);
    assert_int_equal (toolchain_db_delete (db, info.hash), -1);
    assert_false (toolchain_db_lookup (db, &info.key, hash));
    assert_false (toolchain_db_get (db, info.hash, &record));
    records = toolchain_db_list (db, &count);
    assert_int_equal (count, 1);
    free (records);
    //  Recorded again after deletion: the key works again
    assert_int_equal (toolchain_db_record_info (db, &info), 0);
    assert_true (toolchain_db_lookup (db, &info.key, hash));
    toolchain_db_destroy (&db);

    //  A registry from a newer meshcc is refused, not downgraded
    sqlite3 *raw;
    assert_int_equal (sqlite3_open (path, &raw), SQLITE_OK);
    assert_int_equal (sqlite3_exec (raw, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (raw);
    db = toolchain_db_new (dir, err, sizeof err);
    assert_null (db);
    assert_non_null (strstr (err, "newer"));
    zstr_free (&path);
    zstr_free (&dir);
}

static void
test_holders (void **state)
{
    (void) state;
    char err [512];
    char *dir = zsys_sprintf ("%s/holders", s_fx.dir);
    toolchain_db_t *db = toolchain_db_new (dir, err, sizeof err);
    assert_non_null (db);
    uint8_t hash [BLOB_HASH_SIZE], other [BLOB_HASH_SIZE];
    blob_hash_buffer ("one", 3, hash);
    blob_hash_buffer ("two", 3, other);
    uint8_t p1 [MESHCC_ID_SIZE], p2 [MESHCC_ID_SIZE];
    memset (p1, 0x11, sizeof p1);
    memset (p2, 0x22, sizeof p2);
    size_t count;
    toolchain_holder_t *holders = toolchain_db_holders (db, hash, &count);
    assert_null (holders);
    assert_int_equal (count, 0);

    toolchain_db_set_now (db, 100);
    assert_int_equal (toolchain_db_holder_record (db, hash, p1), 0);
    toolchain_db_set_now (db, 200);
    assert_int_equal (toolchain_db_holder_record (db, hash, p2), 0);
    assert_int_equal (toolchain_db_holder_record (db, other, p1), 0);
    holders = toolchain_db_holders (db, hash, &count);
    assert_int_equal (count, 2);
    assert_memory_equal (holders [0].peer, p2, MESHCC_ID_SIZE);
    assert_int_equal (holders [0].seen, 200);
    assert_memory_equal (holders [1].peer, p1, MESHCC_ID_SIZE);
    assert_int_equal (holders [1].seen, 100);
    free (holders);

    //  Seen again: newer, first, not twice
    toolchain_db_set_now (db, 300);
    assert_int_equal (toolchain_db_holder_record (db, hash, p1), 0);
    holders = toolchain_db_holders (db, hash, &count);
    assert_int_equal (count, 2);
    assert_memory_equal (holders [0].peer, p1, MESHCC_ID_SIZE);
    assert_int_equal (holders [0].seen, 300);
    free (holders);

    assert_int_equal (toolchain_db_holder_forget (db, hash, p2), 0);
    assert_int_equal (toolchain_db_holder_forget (db, hash, p2), -1);
    holders = toolchain_db_holders (db, hash, &count);
    assert_int_equal (count, 1);
    assert_memory_equal (holders [0].peer, p1, MESHCC_ID_SIZE);
    free (holders);

    //  A peer that left holds nothing any more, of any hash
    assert_int_equal (toolchain_db_holder_forget_peer (db, p1), 2);
    holders = toolchain_db_holders (db, hash, &count);
    assert_int_equal (count, 0);
    free (holders);
    holders = toolchain_db_holders (db, other, &count);
    assert_int_equal (count, 0);
    free (holders);
    toolchain_db_destroy (&db);
    zstr_free (&dir);
}

static void
test_clang (void **state)
{
    (void) state;
    if (!s_exists ("/usr/bin/clang")) {
        print_message ("skipped: clang is not installed\n");
        skip ();
    }
    char err [512];
    toolchain_info_t info;
    char *dir = zsys_sprintf ("%s/clang", s_fx.dir);
    int64_t start = zclock_mono ();
    if (toolchain_package ("/usr/bin/clang", dir, &info, err, sizeof err))
        fail_msg ("toolchain_package clang: %s", err);
    print_message ("packaged /usr/bin/clang in %" PRId64 " ms: %" PRIu64 " bytes, %" PRIu64
                   " bytes unpacked\n", zclock_mono () - start, info.archive_size,
                   info.unpacked_size);
    assert_true (info.clang);
    size_t count;
    s_read_entry_t *entries = s_list_archive (info.archive, &count);
    char resource [PATH_MAX];
    s_shell_entry ("/usr/bin/clang -print-resource-dir", resource, sizeof resource);
    char *name = zsys_sprintf ("%s/include/stddef.h", resource);
    assert_non_null (s_find (entries, count, name));
    zstr_free (&name);
    name = zsys_sprintf ("%s/lib/", resource);
    for (size_t i = 0; i < count; i++)
        if (strncmp (entries [i].name, name, strlen (name)) == 0)
            fail_msg ("the archive holds %s (a runtime library)", entries [i].name);
    zstr_free (&name);
    s_free_entries (entries, count);

    SKIP_WITHOUT_SANDBOX ();
    char *root = zsys_sprintf ("%s/root", dir);
    assert_int_equal (toolchain_unpack (info.archive, info.hash, root, err, sizeof err), 0);
    s_assert_same_object (root, "/usr/bin/clang", "z.c",
        "struct point { int x, y; };\n"
        "int dot (const struct point *a, const struct point *b)\n"
        "{ return a->x * b->x + a->y * b->y; }\n");
    zstr_free (&root);
    zstr_free (&dir);
}

//  --------------------------------------------------------------------------
//  Benchmark mode (scripts/bench-toolchain)

static int
s_bench (const char *compilers)
{
    const char *runs_text = getenv ("MESHCC_BENCH_RUNS");
    int runs = runs_text ? atoi (runs_text) : 5;
    char base [] = "/tmp/bench-toolchain-XXXXXX";
    if (!mkdtemp (base))
        return 1;
    char *list = strdup (compilers);
    int rc = 0;
    char *save = NULL;
    for (char *compiler = strtok_r (list, " ", &save); compiler && rc == 0;
         compiler = strtok_r (NULL, " ", &save)) {
        for (int run = 0; run < runs && rc == 0; run++) {
            char dir [128], root [160], err [1024];
            snprintf (dir, sizeof dir, "%s/run-%d", base, run);
            toolchain_info_t info;
            int64_t start = zclock_usecs ();
            if (toolchain_package (compiler, dir, &info, err, sizeof err)) {
                fprintf (stderr, "bench: %s\n", err);
                rc = 1;
                break;
            }
            int64_t packaged = zclock_usecs ();
            snprintf (root, sizeof root, "%s/root", dir);
            if (toolchain_unpack (info.archive, info.hash, root, err, sizeof err)) {
                fprintf (stderr, "bench: %s\n", err);
                rc = 1;
                break;
            }
            int64_t unpacked = zclock_usecs ();
            printf ("compiler=%s run=%d package_ms=%.1f unpack_ms=%.1f archive_bytes=%" PRIu64
                    " unpacked_bytes=%" PRIu64 " files=%" PRIu64 " entries=%" PRIu64
                    " hash=%s\n", compiler, run, (packaged - start) / 1000.0,
                    (unpacked - packaged) / 1000.0, info.archive_size, info.unpacked_size,
                    info.files, info.entries, info.hex);
            fflush (stdout);
            tree_remove (dir);
        }
    }
    free (list);
    tree_remove (base);
    return rc;
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    const char *bench = getenv ("MESHCC_BENCH_TOOLCHAIN");
    if (bench)
        return s_bench (bench);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_selftests),
        cmocka_unit_test (test_weak_key),
        cmocka_unit_test (test_package_deterministic),
        cmocka_unit_test (test_package_paced),
        cmocka_unit_test (test_package_contents),
        cmocka_unit_test (test_unpack_runs),
        cmocka_unit_test (test_unpack_corrupt),
        cmocka_unit_test (test_unpack_hostile),
        cmocka_unit_test (test_registry),
        cmocka_unit_test (test_holders),
        cmocka_unit_test (test_clang),
    };
    return cmocka_run_group_tests_name ("toolchain", tests, s_group_setup, s_group_teardown);
}
