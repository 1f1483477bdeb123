#include "t.h"

const t_case t_suite_core[] = {{0, 0}};
