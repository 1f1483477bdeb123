/* test_ane_bridge.c — (cases being written) */
#include "t.h"

const t_case t_suite_ane_bridge[] = {
    {0},
};
