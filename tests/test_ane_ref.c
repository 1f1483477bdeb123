/* test_ane_ref.c — (cases being written) */
#include "t.h"

const t_case t_suite_ane_ref[] = {
    {0},
};
