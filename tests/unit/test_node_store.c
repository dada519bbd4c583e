//  Unit tests of the node's SQLite store (through its self-test, which
//  covers identity, incarnations, peers, pruning and schema versions).

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "meshcc/node_store.h"

static void
test_node_store_selftest (void **state)
{
    (void) state;
    node_store_test (false);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_node_store_selftest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
