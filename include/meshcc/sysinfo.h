//  sysinfo: what a node reads about its own machine: CPU count, host
//  name, load average, its first non-loopback IPv4 address, a speed
//  figure, and the CPU cgroup it runs in (its quota, and how many other
//  processes in it want the CPU): a node confined to a slice of a machine
//  offers that slice, and its load is its slice's, not the whole
//  machine's. Owns nothing; every function reads the system afresh.

#ifndef MESHCC_SYSINFO_H_INCLUDED
#define MESHCC_SYSINFO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  CPUs this process may run on (its affinity mask; at least 1).
uint32_t sysinfo_cpus (void);

//  The CPU cgroup of this process: the cgroup v1 "cpu" controller's, else
//  the cgroup v2 one, found through `cgroup_file` (/proc/self/cgroup) and
//  `mountinfo_file` (/proc/self/mountinfo). Writes its directory (where
//  it is mounted here) and the directory of the mount's root into `dir`
//  and `mount` (SYSINFO_PATH_MAX bytes each). Returns 1 (v1) or 2 (v2),
//  or -1 when this process's cgroup is not mounted here (e.g. under `ip
//  netns exec`, which remounts /sys).
#define SYSINFO_PATH_MAX 512
int sysinfo_cgroup_locate (const char *cgroup_file, const char *mountinfo_file,
                           char *dir, char *mount);

//  The smallest CPU quota on the way from `mount` down to `dir`, in
//  thousandths of a core (cpu.cfs_quota_us / cpu.cfs_period_us for v1,
//  cpu.max for v2). 0 when there is none.
uint32_t sysinfo_cgroup_quota_milli (int version, const char *dir, const char *mount);

//  Processes of the cgroup at `dir` other than `self` (running whenever
//  it reads this) that are runnable (state R): all of them, and those
//  that are not below `self` either (the cgroup's work that is not ours).
//  Returns 0, or -1 when cgroup.procs cannot be read. Looks at the first
//  SYSINFO_MAX_PROCS processes only.
#define SYSINFO_MAX_PROCS 4096
int sysinfo_cgroup_runnable (const char *dir, int self, uint32_t *all_p, uint32_t *others_p);

//  The CFS bandwidth counters of the cgroup at `dir` (cpu.stat, v1 and
//  v2 alike): periods in which it wanted the CPU, those in which it was
//  throttled at its quota, and the time it was held back, in microseconds
//  summed over CPUs (v1 throttled_time in ns, v2 throttled_usec). Returns
//  0, or -1 when they cannot be read.
int sysinfo_cgroup_throttling (const char *dir, uint64_t *periods_p, uint64_t *throttled_p,
                               uint64_t *throttled_us_p);

//  What this process may use: the default slot count (CPUs, capped by the
//  cgroup quota rounded up) and the quota (0: none) with the cgroup's
//  directory ("" when none or not mounted). Read once at start.
typedef struct {
    uint32_t cpus;                  //  sysinfo_cpus ()
    uint32_t quota_milli;           //  0: no quota (or none visible)
    uint32_t slots;                 //  default slots
    char     dir [SYSINFO_PATH_MAX];
} sysinfo_share_t;
void sysinfo_share (sysinfo_share_t *share);

//  The host name, truncated to `size` - 1 bytes; "localhost" if unknown.
void sysinfo_hostname (char *name, size_t size);

//  1-minute load average × 1000 from /proc/loadavg. Returns 0, or -1 if
//  it cannot be read (the caller keeps its previous figure).
int sysinfo_load_milli (uint32_t *load_milli_p);

//  Writes the dotted address of the first up, non-loopback IPv4
//  interface into `address` (INET_ADDRSTRLEN bytes). Returns 0, or -1 if
//  there is none.
int sysinfo_first_ipv4 (char *address, size_t size);

//  Single-core speed: MB/s of BLAKE2b (crypto_generichash) over a
//  NODE_SPEED_BUFFER_SIZE buffer, hashed repeatedly for about
//  `duration_ms` of the calling thread's CPU time (not wall time: nodes
//  starting at once on one machine, or a CPU quota, would lower it by
//  chance). Comparable across nodes of one build; used to prefer faster
//  machines, not as an absolute measure.
uint32_t sysinfo_speed (uint32_t duration_ms);

void sysinfo_test (bool verbose);

#endif
