//  Unit tests of meshccd's settings: option values, config files and the
//  defaults that depend on the mesh key.

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "meshcc/node_config.h"

static void
test_node_config_selftest (void **state)
{
    (void) state;
    node_config_test (false);
}

//  Every bad value names the key in its message.
static void
test_node_config_messages (void **state)
{
    (void) state;
    node_config_t *config = node_config_new ();
    char err [512];
    const char *cases [][2] = {
        { "listen", "127.0.0.1:99999" }, { "listen", "localhost:7400" },
        { "advertise", "1.2.3.4" }, { "join", "1.2.3.4:x" }, { "slots", "-3" },
        { "slots", "4x" }, { "beacon-port", "0" }, { "discovery", "yes please" },
        { "log-level", "chatty" }, { "name", "" }, { "insecure", "perhaps" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        assert_int_equal (node_config_set (config, cases [i][0], cases [i][1],
                                           NODE_CONFIG_FILE, err, sizeof err), -1);
        assert_non_null (strstr (err, cases [i][0]));
    }
    node_config_destroy (&config);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_node_config_selftest),
        cmocka_unit_test (test_node_config_messages),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
