#include "t.h"

const t_case t_suite_cli[] = {{0, 0}};
