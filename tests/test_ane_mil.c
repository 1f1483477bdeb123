/* test_ane_mil.c — (cases being written) */
#include "t.h"

const t_case t_suite_ane_mil[] = {
    {0},
};
