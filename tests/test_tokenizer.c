#include "t.h"

const t_case t_suite_tokenizer[] = {{0, 0}};
