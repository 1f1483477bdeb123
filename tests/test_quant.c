#include "t.h"

const t_case t_suite_quant[] = {{0, 0}};
