/* cmd_synth.c — `anelm synth` (being written). */
#include "cli.h"

int cmd_synth(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_usage_error("synth", "not implemented yet");
}
