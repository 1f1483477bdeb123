/* budget.c — the per-process compile budget as a pure function (research/ane.md §1.7, §6.3:
 * the framework refuses a process after about 119 compiles; anelm stops at
 * AN_ANE_COMPILE_BUDGET). bridge.m calls it under its lock before every compile. */
#include "backends/ane/bridge/internal.h"

bool an_ane_budget_take(int *counter, int budget) {
    if (!counter || *counter < 0 || *counter >= budget) return false;
    (*counter)++;
    return true;
}
