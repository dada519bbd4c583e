//  Unit tests of the node's event loop (one node on loopback driven by raw
//  sockets: garbage counted, a SYN answered, the control protocol), its
//  log and its reads of the machine.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "meshcc/node.h"
#include "meshcc/node_log.h"
#include "meshcc/sysinfo.h"

static void
test_node_log_selftest (void **state)
{
    (void) state;
    node_log_test (false);
}

static void
test_sysinfo_selftest (void **state)
{
    (void) state;
    sysinfo_test (false);
}

static void
test_node_selftest (void **state)
{
    (void) state;
    node_test (false);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_node_log_selftest),
        cmocka_unit_test (test_sysinfo_selftest),
        cmocka_unit_test (test_node_selftest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
