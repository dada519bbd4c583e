//  Unit tests of the CLI's control client: JSON escaping and typing,
//  table layout, field order, and the fast "no node" answer.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "meshcc/control_client.h"

static void
test_control_client_selftest (void **state)
{
    (void) state;
    control_client_test (false);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_control_client_selftest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
