//  sysinfo: what a node reads about its own machine: CPU count, host
//  name, load average, its first non-loopback IPv4 address, and a speed
//  figure. Owns nothing; every function reads the system afresh.

#ifndef MESHCC_SYSINFO_H_INCLUDED
#define MESHCC_SYSINFO_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Online CPUs (at least 1).
uint32_t sysinfo_cpus (void);

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
//  `duration_ms`. Comparable across nodes of one build; used to prefer
//  faster machines, not as an absolute measure.
uint32_t sysinfo_speed (uint32_t duration_ms);

void sysinfo_test (bool verbose);

#endif
