//  test_node_sysinfo: the node's reading of its CPU cgroup (issue 5: a
//  node confined to a slice of a machine offers that slice and reports
//  its slice's load). Fake /proc/self/cgroup, mountinfo and cgroup
//  directories in a temporary directory; a real process that busy-loops
//  outside our process tree for the runnable count.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <czmq.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "meshcc/limits.h"
#include "meshcc/saturation.h"
#include "meshcc/sysinfo.h"

static char s_dir [256];

static void
s_write (const char *name, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    char *slash = strrchr (path, '/');
    *slash = 0;
    char command [600];
    snprintf (command, sizeof command, "mkdir -p '%s'", path);
    assert_int_equal (system (command), 0);
    *slash = '/';
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/meshcc-sysinfo-XXXXXX");
    assert_non_null (mkdtemp (s_dir));
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    char command [300];
    snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
    return system (command) == 0? 0: -1;
}

//  A mountinfo with the v1 cpu controller mounted at DIR/cpu (root "/")
//  and the unified hierarchy at DIR/unified.
static void
s_mountinfo (const char *name, const char *cpu_root)
{
    char text [2048];
    snprintf (text, sizeof text,
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "30 22 0:26 / %s/fs rw shared:2 - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:27 / %s/unified rw shared:3 - cgroup2 cgroup2 rw\n"
        "32 30 0:28 %s %s/cpu rw shared:4 - cgroup cgroup rw,cpu\n"
        "33 30 0:29 / %s/cpuacct rw shared:5 - cgroup cgroup rw,cpuacct\n",
        s_dir, s_dir, cpu_root, s_dir, s_dir);
    s_write (name, text);
}

//  sysinfo_cgroup_locate on the fake files DIR/CGROUP and DIR/MOUNTINFO
static int
s_locate (const char *cgroup, const char *mountinfo, char *dir, char *mount)
{
    char cgroup_path [300], mountinfo_path [300];
    snprintf (cgroup_path, sizeof cgroup_path, "%s/%s", s_dir, cgroup);
    snprintf (mountinfo_path, sizeof mountinfo_path, "%s/%s", s_dir, mountinfo);
    return sysinfo_cgroup_locate (cgroup_path, mountinfo_path, dir, mount);
}

static void
test_locate_v1 (void **state)
{
    (void) state;
    char dir [SYSINFO_PATH_MAX], mount [SYSINFO_PATH_MAX];
    s_write ("cgroup", "5:cpuacct:/\n4:cpu:/meshcc-x-h1\n1:name=systemd:/\n0::/\n");
    s_mountinfo ("mountinfo", "/");
    assert_int_equal (s_locate ("cgroup", "mountinfo", dir, mount), 1);
    char expect [600];
    snprintf (expect, sizeof expect, "%s/cpu/meshcc-x-h1", s_dir);
    assert_string_equal (dir, expect);
    snprintf (expect, sizeof expect, "%s/cpu", s_dir);
    assert_string_equal (mount, expect);

    //  A mount of a sub-tree (a container's view): the path below its root
    s_mountinfo ("mountinfo", "/meshcc-x-h1");
    assert_int_equal (s_locate ("cgroup", "mountinfo", dir, mount), 1);
    snprintf (expect, sizeof expect, "%s/cpu", s_dir);
    assert_string_equal (dir, expect);
    //  ... and one that does not hold our cgroup: not visible
    s_mountinfo ("mountinfo", "/other");
    assert_int_equal (s_locate ("cgroup", "mountinfo", dir, mount), -1);

    //  No cgroup mounted at all (as under `ip netns exec`)
    s_write ("mountinfo", "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
                          "40 22 0:50 / /sys rw - sysfs sysfs rw\n");
    assert_int_equal (s_locate ("cgroup", "mountinfo", dir, mount), -1);
    //  Missing files
    assert_int_equal (s_locate ("nonexistent", "mountinfo", dir, mount), -1);
}

static void
test_locate_v2 (void **state)
{
    (void) state;
    char dir [SYSINFO_PATH_MAX], mount [SYSINFO_PATH_MAX];
    s_write ("cgroup2", "0::/meshcc-x-h3\n");
    char text [512];
    snprintf (text, sizeof text,
              "22 1 254:0 / / rw shared:1 - ext4 /dev/vda rw\n"
              "35 22 0:30 / %s/v2 rw shared:9 - cgroup2 cgroup2 rw,nsdelegate\n", s_dir);
    s_write ("mountinfo2", text);
    assert_int_equal (s_locate ("cgroup2", "mountinfo2", dir, mount), 2);
    char expect [600];
    snprintf (expect, sizeof expect, "%s/v2/meshcc-x-h3", s_dir);
    assert_string_equal (dir, expect);
    //  Malformed lines are skipped, not fatal
    s_write ("cgroup2", "garbage\n::\n0::relative\n");
    assert_int_equal (s_locate ("cgroup2", "mountinfo2", dir, mount), -1);
}

static void
test_quota (void **state)
{
    (void) state;
    char mount [400], dir [400];
    snprintf (mount, sizeof mount, "%s/q1", s_dir);
    snprintf (dir, sizeof dir, "%s/q1/outer/inner", s_dir);
    s_write ("q1/cpu.cfs_quota_us", "-1\n");
    s_write ("q1/cpu.cfs_period_us", "100000\n");
    s_write ("q1/outer/cpu.cfs_quota_us", "50000\n");
    s_write ("q1/outer/cpu.cfs_period_us", "100000\n");
    s_write ("q1/outer/inner/cpu.cfs_quota_us", "-1\n");
    s_write ("q1/outer/inner/cpu.cfs_period_us", "100000\n");
    //  The smallest quota on the way: the parent's half core
    assert_int_equal (sysinfo_cgroup_quota_milli (1, dir, mount), 500);
    s_write ("q1/outer/inner/cpu.cfs_quota_us", "25000\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (1, dir, mount), 250);
    s_write ("q1/outer/inner/cpu.cfs_quota_us", "300000\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (1, dir, mount), 500);
    //  No quota anywhere
    s_write ("q1/outer/cpu.cfs_quota_us", "-1\n");
    s_write ("q1/outer/inner/cpu.cfs_quota_us", "-1\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (1, dir, mount), 0);

    //  v2: cpu.max "QUOTA PERIOD" or "max PERIOD"
    snprintf (mount, sizeof mount, "%s/q2", s_dir);
    snprintf (dir, sizeof dir, "%s/q2/h0", s_dir);
    s_write ("q2/h0/cpu.max", "max 100000\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (2, dir, mount), 0);
    s_write ("q2/h0/cpu.max", "12500 100000\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (2, dir, mount), 125);
    s_write ("q2/h0/cpu.max", "garbage\n");
    assert_int_equal (sysinfo_cgroup_quota_milli (2, dir, mount), 0);
}

//  A process that busy-loops, not below us (its parent exits at once),
//  returned by its pid through a pipe.
static pid_t
s_orphan_busy_loop (void)
{
    int fds [2];
    assert_int_equal (pipe (fds), 0);
    pid_t child = fork ();
    assert_true (child >= 0);
    if (child == 0) {
        pid_t grandchild = fork ();
        if (grandchild == 0) {
            close (fds [0]);
            close (fds [1]);
            volatile uint64_t spin = 0;
            alarm (60);             //  never outlives a failed test by long
            while (true)
                spin++;
        }
        if (write (fds [1], &grandchild, sizeof grandchild) != sizeof grandchild)
            _exit (1);
        _exit (0);
    }
    close (fds [1]);
    pid_t orphan = 0;
    assert_int_equal (read (fds [0], &orphan, sizeof orphan), sizeof orphan);
    close (fds [0]);
    waitpid (child, NULL, 0);
    return orphan;
}

static void
test_others_runnable (void **state)
{
    (void) state;
    //  Our own busy child (a compile of ours) does not count...
    pid_t ours = fork ();
    assert_true (ours >= 0);
    if (ours == 0) {
        volatile uint64_t spin = 0;
        alarm (60);
        while (true)
            spin++;
    }
    //  ... an orphaned busy loop does, a sleeping process does not.
    pid_t other = s_orphan_busy_loop ();
    pid_t sleeper = fork ();
    assert_true (sleeper >= 0);
    if (sleeper == 0) {
        alarm (60);
        pause ();
        _exit (0);
    }
    char procs [300], text [256];
    snprintf (text, sizeof text, "%d\n%d\n%d\n%d\n%d\n999999999\n",
              (int) getpid (), (int) ours, (int) other, (int) sleeper, 1);
    s_write ("g/cgroup.procs", text);
    snprintf (procs, sizeof procs, "%s/g", s_dir);
    //  Both loops are runnable (R) whenever sampled, on this 2-core
    //  machine too: R counts running and waiting for a CPU alike.
    uint32_t count = 99, all = 99;
    int64_t deadline = zclock_mono () + 5000;
    do {
        assert_int_equal (sysinfo_cgroup_runnable (procs, (int) getpid (), &all, &count), 0);
        if (count == 1 && all == 2)
            break;
        zclock_sleep (20);          //  a loop has not been scheduled yet
    } while (zclock_mono () < deadline);
    assert_int_equal (count, 1);
    assert_int_equal (all, 2);      //  our loop and the other (not us)
    //  Without the outsider: nothing
    snprintf (text, sizeof text, "%d\n%d\n", (int) ours, (int) sleeper);
    s_write ("g/cgroup.procs", text);
    assert_int_equal (sysinfo_cgroup_runnable (procs, (int) getpid (), &all, &count), 0);
    assert_int_equal (count, 0);
    assert_int_equal (all, 1);      //  our loop
    kill (ours, SIGKILL);
    kill (other, SIGKILL);
    kill (sleeper, SIGKILL);
    waitpid (ours, NULL, 0);
    waitpid (sleeper, NULL, 0);
    //  No cgroup.procs
    assert_int_equal (sysinfo_cgroup_runnable ("/nonexistent", 1, &all, &count), -1);
}

//  Writes `text` as cgroup `name`'s cpu.stat and reads it back.
static int
s_throttling (const char *name, const char *text, uint64_t *periods_p, uint64_t *throttled_p,
              uint64_t *throttled_us_p)
{
    char file [64], dir [400];
    snprintf (file, sizeof file, "%s/cpu.stat", name);
    s_write (file, text);
    snprintf (dir, sizeof dir, "%s/%s", s_dir, name);
    return sysinfo_cgroup_throttling (dir, periods_p, throttled_p, throttled_us_p);
}

//  cpu.stat as cgroup v1 and v2 write it: the periods it wanted the CPU
//  in, those it was throttled in, and the time held back (ns in v1, µs in
//  v2, read as µs).
static void
test_throttling (void **state)
{
    (void) state;
    uint64_t periods = 0, throttled = 0, us = 0;
    assert_int_equal (s_throttling ("t1", "nr_periods 140\nnr_throttled 89\n"
                                    "throttled_time 5699078276\nnr_bursts 0\nburst_time 0\n",
                                    &periods, &throttled, &us), 0);
    assert_int_equal (periods, 140);
    assert_int_equal (throttled, 89);
    assert_int_equal (us, 5699078);
    assert_int_equal (s_throttling ("t2", "usage_usec 9000\nuser_usec 6000\nsystem_usec 3000\n"
                                    "nr_periods 7\nnr_throttled 2\nthrottled_usec 400\n",
                                    &periods, &throttled, &us), 0);
    assert_int_equal (periods, 7);
    assert_int_equal (throttled, 2);
    assert_int_equal (us, 400);
    //  v2 without the cpu controller: usage only, no bandwidth counters
    assert_int_equal (s_throttling ("t2", "usage_usec 9000\nuser_usec 6000\nsystem_usec 3000\n",
                                    &periods, &throttled, &us), -1);
    assert_int_equal (sysinfo_cgroup_throttling ("/nonexistent", &periods, &throttled, &us), -1);
}

//  The counters of `s_ticks`: periods, throttled periods, µs held back.
typedef struct {
    int64_t  now;
    uint64_t periods, throttled, us;
} s_counters_t;

//  `ticks` ticks of 200 ms (two 100 ms periods) on `s`: `throttled` of the
//  two periods throttled, each held back `held_us` µs, with `compiles` of
//  ours running. Returns whether `s` is saturated after them.
static bool
s_ticks (saturation_t *s, s_counters_t *c, int ticks, uint64_t throttled, uint64_t held_us,
         uint32_t compiles, uint32_t quota_milli)
{
    for (int i = 0; i < ticks; i++)
        saturation_update (s, c->now += 200, c->periods += 2, c->throttled += throttled,
                           c->us += throttled * held_us, compiles, quota_milli);
    return s->saturated;
}

//  Saturation from the CFS counters, one 200 ms tick at a time.
static void
test_saturation (void **state)
{
    (void) state;
    saturation_test (false);
    s_counters_t c = { 10000, 100, 0, 0 };
    saturation_t s = { 0 };
    assert_true (saturation_update (&s, c.now, c.periods, c.throttled, c.us, 0, 1000));
    //  A one-core origin running one listing after another: throttled at
    //  the end of every period, held back 0.3 ms each time. Counting the
    //  periods alone called it saturated; weighed by time it has room.
    assert_false (s_ticks (&s, &c, 20, 2, 300, 0, 1000));
    assert_true (s.share < 0.1);
    //  A half-core origin whose make and listings are throttled in a tenth
    //  of the periods, for 30 ms each: room for a compile.
    saturation_t half = { 0 };
    saturation_update (&half, c.now, c.periods, c.throttled, c.us, 0, 500);
    for (int i = 0; i < 20; i++)
        s_ticks (&half, &c, 1, i % 5 == 0, 30000, 0, 500);
    assert_false (half.saturated);
    assert_true (half.share > 0.05 && half.share < 0.2);
    //  Its one local compile is throttled every period: those ticks are
    //  not counted, the last measurement holds for a window ...
    assert_false (s_ticks (&half, &c, 10, 2, 50000, 1, 500));
    //  ... after which it is not known to have room until a counted tick.
    assert_true (s_ticks (&half, &c, 10, 2, 50000, 1, 500));
    assert_true (half.share < 0.2);
    assert_false (s_ticks (&half, &c, 1, 0, 0, 0, 500));
    //  A busy loop on a busy machine: it cannot use all of its half core,
    //  so each period is held back only 12 ms, but every period is
    //  throttled: saturated (the time alone, 12 of 50 ms of quota, was
    //  under the threshold).
    assert_true (s_ticks (&half, &c, 20, 2, 12000, 0, 500));
    assert_true (half.share > 0.7);
    //  Its own work throttled in most periods at length (a quarter-core
    //  origin feeding seven peers): saturated within the window.
    saturation_t quarter = { 0 };
    saturation_update (&quarter, c.now, c.periods, c.throttled, c.us, 0, 250);
    assert_true (s_ticks (&quarter, &c, 20, 2, 75000, 0, 250));
    assert_true (quarter.share > 0.7);
    //  A four-core slice with two compiles of ours running counts them:
    //  throttled means full, and a third compile would only split it.
    saturation_t four = { 0 };
    saturation_update (&four, c.now, c.periods, c.throttled, c.us, 0, 4000);
    assert_false (s_ticks (&four, &c, 5, 0, 0, 2, 4000));
    assert_true (s_ticks (&four, &c, 20, 2, 40000, 2, 4000));
    //  Counters that went back (a new cgroup): not counted, kept as read.
    double share = four.share;
    saturation_update (&four, c.now += 200, 5, 0, 0, 0, 4000);
    assert_int_equal (four.periods, 5);
    assert_true (four.share == share);
}

//  Background work (packaging) on a node with a quota waits for an idle
//  node and a quiet cgroup, unless a peer needs it; with no quota, never.
static void
test_background_waits (void **state)
{
    (void) state;
    int64_t idle = NODE_BACKGROUND_IDLE_MS;
    double quiet = NODE_BACKGROUND_LOAD / 2, loaded = NODE_BACKGROUND_LOAD;
    //  No quota: never waits, busy or not
    assert_false (saturation_background_waits (0, 3.0, 0, false));
    //  Quota, idle long enough, others quiet: runs
    assert_false (saturation_background_waits (250, quiet, idle, false));
    assert_false (saturation_background_waits (250, 0, idle * 10, false));
    //  A job too recent, or others wanting the CPU: waits
    assert_true (saturation_background_waits (250, quiet, idle - 1, false));
    assert_true (saturation_background_waits (250, 0, 0, false));
    assert_true (saturation_background_waits (250, loaded, idle * 10, false));
    assert_true (saturation_background_waits (4000, 1.0, idle * 10, false));
    //  Needed by a peer: runs however busy
    assert_false (saturation_background_waits (250, 3.0, 0, true));
}

static void
test_share_here (void **state)
{
    (void) state;
    //  This machine, as the test runs: slots never exceed the CPUs, and a
    //  quota (when the test runs inside one) caps them.
    sysinfo_share_t share;
    sysinfo_share (&share);
    assert_true (share.cpus >= 1);
    assert_true (share.slots >= 1 && share.slots <= share.cpus);
    if (share.quota_milli)
        assert_true (share.slots <= (share.quota_milli + 999) / 1000);
    else
        assert_int_equal (share.slots, share.cpus);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_locate_v1),
        cmocka_unit_test (test_locate_v2),
        cmocka_unit_test (test_quota),
        cmocka_unit_test (test_others_runnable),
        cmocka_unit_test (test_throttling),
        cmocka_unit_test (test_saturation),
        cmocka_unit_test (test_background_waits),
        cmocka_unit_test (test_share_here),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
