/* cmd_bench.c — `anelm bench` (being written). */
#include "cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_usage_error("bench", "not implemented yet");
}
