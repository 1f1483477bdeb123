#include "t.h"

const t_case t_suite_model[] = {{0, 0}};
