//  sysinfo: reads of the local machine for the node's gossiped capacity.

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <sched.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "meshcc/limits.h"
#include "meshcc/sysinfo.h"

uint32_t
sysinfo_cpus (void)
{
    cpu_set_t set;
    if (sched_getaffinity (0, sizeof set, &set) == 0 && CPU_COUNT (&set) > 0)
        return (uint32_t) CPU_COUNT (&set);
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    return cpus > 0? (uint32_t) cpus: 1;
}

//  True if the comma-separated `list` has the item `item`.
static bool
s_has_item (const char *list, const char *item)
{
    size_t len = strlen (item);
    for (const char *p = list; p && *p; ) {
        const char *end = strchr (p, ',');
        size_t n = end? (size_t) (end - p): strlen (p);
        if (n == len && strncmp (p, item, len) == 0)
            return true;
        p = end? end + 1: NULL;
    }
    return false;
}

int
sysinfo_cgroup_locate (const char *cgroup_file, const char *mountinfo_file,
                       char *dir, char *mount)
{
    //  Our path in each hierarchy: "ID:CONTROLLERS:PATH" lines
    char v1 [SYSINFO_PATH_MAX] = "", v2 [SYSINFO_PATH_MAX] = "";
    bool has_v1 = false, has_v2 = false;
    char line [2048];
    FILE *file = fopen (cgroup_file, "r");
    if (!file)
        return -1;
    while (fgets (line, sizeof line, file)) {
        line [strcspn (line, "\n")] = 0;
        char *first = strchr (line, ':');
        char *second = first? strchr (first + 1, ':'): NULL;
        if (!second || second [1] != '/' || strlen (second + 1) >= SYSINFO_PATH_MAX)
            continue;
        *second = 0;
        if (first == line + 1 && line [0] == '0' && first + 1 == second) {
            snprintf (v2, sizeof v2, "%.*s", (int) sizeof v2 - 1, second + 1);
            has_v2 = true;
        }
        else
        if (s_has_item (first + 1, "cpu")) {
            snprintf (v1, sizeof v1, "%.*s", (int) sizeof v1 - 1, second + 1);
            has_v1 = true;
        }
    }
    fclose (file);
    //  Where each is mounted: "ID PARENT MAJ:MIN ROOT POINT OPTS ... - TYPE SRC SUPER"
    file = fopen (mountinfo_file, "r");
    if (!file)
        return -1;
    int found = -1;
    while (found < 0 && fgets (line, sizeof line, file)) {
        char root [SYSINFO_PATH_MAX], point [SYSINFO_PATH_MAX];
        char type [64], super [512];
        const char *dash = strstr (line, " - ");
        if (!dash
        ||  sscanf (line, "%*s %*s %*s %511s %511s", root, point) != 2
        ||  sscanf (dash + 3, "%63s %*s %511s", type, super) != 2)
            continue;
        int version = 0;
        const char *ours = NULL;
        if (has_v1 && strcmp (type, "cgroup") == 0 && s_has_item (super, "cpu")) {
            version = 1;
            ours = v1;
        }
        else
        if (has_v2 && !has_v1 && strcmp (type, "cgroup2") == 0) {
            version = 2;
            ours = v2;
        }
        else
            continue;
        //  Our path seen from this mount: below its root, or not visible
        size_t root_len = strcmp (root, "/") == 0? 0: strlen (root);
        if (strncmp (ours, root, root_len) != 0 || (ours [root_len] && ours [root_len] != '/'))
            continue;
        const char *below = ours + root_len;
        if (strcmp (below, "/") == 0)
            below = "";
        if ((size_t) snprintf (dir, SYSINFO_PATH_MAX, "%s%s", point, below) >= SYSINFO_PATH_MAX)
            continue;
        snprintf (mount, SYSINFO_PATH_MAX, "%s", point);
        found = version;
    }
    fclose (file);
    return found;
}

//  Reads up to two integers (a number or "max", -1 for "max" or a
//  missing second) from `path`. Returns the count read.
static int
s_read_numbers (const char *path, long long *a, long long *b)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    char first [32] = "", second [32] = "";
    int fields = fscanf (file, "%31s %31s", first, second);
    fclose (file);
    if (fields < 1)
        return 0;
    *a = strcmp (first, "max") == 0? -1: atoll (first);
    *b = fields == 2? (strcmp (second, "max") == 0? -1: atoll (second)): -1;
    return fields;
}

uint32_t
sysinfo_cgroup_quota_milli (int version, const char *dir, const char *mount)
{
    char path [SYSINFO_PATH_MAX + 32], here [SYSINFO_PATH_MAX];
    snprintf (here, sizeof here, "%s", dir);
    size_t mount_len = strlen (mount);
    uint32_t best = 0;
    while (strlen (here) >= mount_len) {
        long long quota = -1, period = -1, unused;
        if (version == 1) {
            snprintf (path, sizeof path, "%s/cpu.cfs_quota_us", here);
            if (s_read_numbers (path, &quota, &unused) >= 1) {
                snprintf (path, sizeof path, "%s/cpu.cfs_period_us", here);
                if (s_read_numbers (path, &period, &unused) < 1)
                    period = -1;
            }
        }
        else {
            snprintf (path, sizeof path, "%s/cpu.max", here);
            if (s_read_numbers (path, &quota, &period) < 2)
                quota = -1;
        }
        if (quota > 0 && period > 0) {
            long long milli = quota * 1000 / period;
            uint32_t value = milli < 1? 1: milli > UINT32_MAX? UINT32_MAX: (uint32_t) milli;
            if (best == 0 || value < best)
                best = value;
        }
        char *slash = strrchr (here, '/');
        if (!slash || (size_t) (slash - here) < mount_len)
            break;
        *slash = 0;
    }
    return best;
}

//  State and parent of process `pid` from /proc/PID/stat. Returns 0 or -1.
static int
s_proc_stat (int pid, char *state, int *ppid)
{
    char path [64], buffer [512];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    size_t size = fread (buffer, 1, sizeof buffer - 1, file);
    fclose (file);
    buffer [size] = 0;
    //  "PID (COMM) S PPID ...": COMM may hold spaces and parentheses
    char *close = strrchr (buffer, ')');
    if (!close || sscanf (close + 1, " %c %d", state, ppid) != 2)
        return -1;
    return 0;
}

int
sysinfo_cgroup_runnable (const char *dir, int self, uint32_t *all_p, uint32_t *others_p)
{
    char path [SYSINFO_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/cgroup.procs", dir);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    uint32_t all = 0, count = 0;
    int pid, read = 0;
    //  At most SYSINFO_MAX_PROCS of them: a bounded cost per reading.
    while (read++ < SYSINFO_MAX_PROCS && fscanf (file, "%d", &pid) == 1) {
        char state;
        int parent;
        //  Ourselves: running whenever we read this, so it says nothing
        if (pid == self || s_proc_stat (pid, &state, &parent) || state != 'R')
            continue;
        all++;
        bool ours = false;
        for (int depth = 0; depth < 64 && parent > 1 && !ours; depth++) {
            char unused;
            ours = parent == self;
            if (ours || s_proc_stat (parent, &unused, &parent))
                break;
        }
        if (!ours)
            count++;
    }
    fclose (file);
    *all_p = all;
    *others_p = count;
    return 0;
}

int
sysinfo_cgroup_throttling (const char *dir, uint64_t *periods_p, uint64_t *throttled_p,
                           uint64_t *throttled_us_p)
{
    char path [SYSINFO_PATH_MAX + 32];
    snprintf (path, sizeof path, "%s/cpu.stat", dir);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char key [64];
    unsigned long long value;
    int found = 0;
    while (fscanf (file, "%63s %llu", key, &value) == 2) {
        if (strcmp (key, "nr_periods") == 0) {
            *periods_p = value;
            found |= 1;
        }
        else
        if (strcmp (key, "nr_throttled") == 0) {
            *throttled_p = value;
            found |= 2;
        }
        else
        if (strcmp (key, "throttled_time") == 0) {
            *throttled_us_p = value / 1000;
            found |= 4;
        }
        else
        if (strcmp (key, "throttled_usec") == 0) {
            *throttled_us_p = value;
            found |= 4;
        }
    }
    fclose (file);
    return found == 7? 0: -1;
}

void
sysinfo_share (sysinfo_share_t *share)
{
    memset (share, 0, sizeof *share);
    share->cpus = sysinfo_cpus ();
    share->slots = share->cpus;
    char mount [SYSINFO_PATH_MAX];
    int version = sysinfo_cgroup_locate ("/proc/self/cgroup", "/proc/self/mountinfo",
                                         share->dir, mount);
    if (version < 0) {
        share->dir [0] = 0;
        return;
    }
    share->quota_milli = sysinfo_cgroup_quota_milli (version, share->dir, mount);
    if (share->quota_milli == 0) {
        share->dir [0] = 0;         //  not confined: the machine's load applies
        return;
    }
    uint32_t cores = (share->quota_milli + 999) / 1000;
    if (cores < share->slots)
        share->slots = cores? cores: 1;
}

void
sysinfo_hostname (char *name, size_t size)
{
    char buffer [256];
    if (gethostname (buffer, sizeof buffer) || !buffer [0])
        strcpy (buffer, "localhost");
    buffer [sizeof buffer - 1] = 0;
    snprintf (name, size, "%s", buffer);
}

int
sysinfo_load_milli (uint32_t *load_milli_p)
{
    FILE *file = fopen ("/proc/loadavg", "r");
    if (!file)
        return -1;
    double load;
    int fields = fscanf (file, "%lf", &load);
    fclose (file);
    if (fields != 1 || load < 0)
        return -1;
    *load_milli_p = (uint32_t) (load * 1000 + 0.5);
    return 0;
}

int
sysinfo_first_ipv4 (char *address, size_t size)
{
    struct ifaddrs *list;
    if (getifaddrs (&list))
        return -1;
    int rc = -1;
    for (struct ifaddrs *entry = list; entry; entry = entry->ifa_next) {
        if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET)
            continue;
        if (!(entry->ifa_flags & IFF_UP) || (entry->ifa_flags & IFF_LOOPBACK))
            continue;
        struct sockaddr_in *in = (struct sockaddr_in *) entry->ifa_addr;
        if (inet_ntop (AF_INET, &in->sin_addr, address, size)) {
            rc = 0;
            break;
        }
    }
    freeifaddrs (list);
    return rc;
}

//  This thread's CPU time (ms): what the speed sample measures, so that
//  other processes wanting the same CPUs (a machine whose nodes all start
//  at once, a quota reached within the sample) do not lower it.
static int64_t
s_thread_cpu_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t
sysinfo_speed (uint32_t duration_ms)
{
    uint8_t *buffer = (uint8_t *) calloc (1, NODE_SPEED_BUFFER_SIZE);
    assert (buffer);
    uint8_t digest [crypto_generichash_BYTES];
    //  Chaining each digest into the next input keeps the compiler from
    //  hoisting the work out of the loop.
    int64_t start = s_thread_cpu_ms ();
    int64_t elapsed = 0;
    uint64_t rounds = 0;
    do {
        crypto_generichash (digest, sizeof digest, buffer, NODE_SPEED_BUFFER_SIZE, NULL, 0);
        memcpy (buffer, digest, sizeof digest);
        rounds++;
        elapsed = s_thread_cpu_ms () - start;
    } while (elapsed < (int64_t) duration_ms);
    free (buffer);
    if (elapsed < 1)
        elapsed = 1;
    //  MiB per second.
    return (uint32_t) (rounds * 1000 / (uint64_t) elapsed);
}

void
sysinfo_test (bool verbose)
{
    if (verbose)
        printf (" * sysinfo: ");
    assert (sysinfo_cpus () >= 1);
    char name [8];
    sysinfo_hostname (name, sizeof name);
    assert (strlen (name) > 0 && strlen (name) < sizeof name);
    uint32_t load = 12345678;
    assert (sysinfo_load_milli (&load) == 0);
    assert (load < 10000000);
    char address [INET_ADDRSTRLEN];
    if (sysinfo_first_ipv4 (address, sizeof address) == 0)
        assert (strncmp (address, "127.", 4) != 0);
    uint32_t speed = sysinfo_speed (10);
    assert (speed > 0);
    if (verbose)
        printf ("OK (speed %u)\n", speed);
}
