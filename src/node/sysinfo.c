//  sysinfo: reads of the local machine for the node's gossiped capacity.

#include <arpa/inet.h>
#include <assert.h>
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
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    return cpus > 0? (uint32_t) cpus: 1;
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

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
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
    int64_t start = s_mono_ms ();
    int64_t elapsed = 0;
    uint64_t rounds = 0;
    do {
        crypto_generichash (digest, sizeof digest, buffer, NODE_SPEED_BUFFER_SIZE, NULL, 0);
        memcpy (buffer, digest, sizeof digest);
        rounds++;
        elapsed = s_mono_ms () - start;
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
