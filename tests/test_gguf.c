#include "t.h"

const t_case t_suite_gguf[] = {{0, 0}};
