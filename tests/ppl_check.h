/* ppl_check.h — the perplexity check against llama.cpp, shared by the suites that run it on
 * different devices. */
#ifndef AN_TEST_PPL_CHECK_H
#define AN_TEST_PPL_CHECK_H

/* Runs `anelm perplexity` on TinyScribe F16 with the reference protocol (val.txt, the
 * reference's context and token count, F32 KV cache, 2 threads) plus the options in extra, and
 * checks the result within 0.5% of llama.cpp's and the scored token count. Skips (loudly)
 * without ../shared. */
void t_check_perplexity(const char *extra);

#endif
