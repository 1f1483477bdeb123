#include "t.h"

const t_case t_suite_kernels[] = {{0, 0}};
