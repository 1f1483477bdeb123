/* test_lut.c — (cases being written) */
#include "t.h"

const t_case t_suite_lut[] = {
    {0},
};
