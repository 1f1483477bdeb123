/* lex.c — MIL text to tokens. Identifiers, numbers (decimal, and hex with an optional binary
 * exponent, e.g. 0x1.8p+1; a leading sign belongs to the number), strings ("..." with \" and
 * \\ escapes, one line), punctuation ( ) [ ] { } < > , = ; and ->. // comments are skipped.
 * Every token keeps its line and column (1-based, columns in bytes) for error messages. */
#include <stdlib.h>
#include <string.h>

#include "backends/ane/ref/ref_impl.h"

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_xdigit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

an_status ref_lex(const char *text, size_t len, ref_tok **toks, size_t *n_toks, an_err *err) {
    *toks = NULL;
    *n_toks = 0;
    size_t cap = 256, n = 0;
    ref_tok *t = malloc(cap * sizeof *t);
    if (!t) return an_err_set(err, AN_E_NOMEM, "MIL: out of memory tokenizing %zu bytes", len);
    size_t i = 0;
    int line = 1;
    size_t line_start = 0;
    for (;;) {
        /* skip blanks and comments */
        while (i < len) {
            char c = text[i];
            if (c == '\n') {
                line++;
                line_start = ++i;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                i++;
            } else if (c == '/' && i + 1 < len && text[i + 1] == '/') {
                while (i < len && text[i] != '\n') i++;
            } else {
                break;
            }
        }
        if (n + 1 >= cap) {
            ref_tok *nt = realloc(t, cap * 2 * sizeof *t);
            if (!nt) {
                free(t);
                return an_err_set(err, AN_E_NOMEM, "MIL: out of memory tokenizing %zu bytes", len);
            }
            t = nt;
            cap *= 2;
        }
        const int col = (int)(i - line_start) + 1;
        ref_tok *k = &t[n];
        *k = (ref_tok){TK_EOF, text + i, 0, line, col};
        if (i >= len) {
            n++;
            break;
        }
        const size_t s = i;
        const char c = text[i];
        if (is_alpha(c)) {
            while (i < len && (is_alpha(text[i]) || is_digit(text[i]))) i++;
            k->kind = TK_IDENT;
        } else if (is_digit(c) || ((c == '-' || c == '+') && i + 1 < len && is_digit(text[i + 1]))) {
            if (c == '-' || c == '+') i++;
            if (text[i] == '0' && i + 1 < len && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
                i += 2;
                while (i < len && (is_xdigit(text[i]) || text[i] == '.')) i++;
                if (i < len && (text[i] == 'p' || text[i] == 'P')) {
                    i++;
                    if (i < len && (text[i] == '+' || text[i] == '-')) i++;
                    while (i < len && is_digit(text[i])) i++;
                }
            } else {
                while (i < len && (is_digit(text[i]) || text[i] == '.')) i++;
                if (i < len && (text[i] == 'e' || text[i] == 'E')) {
                    i++;
                    if (i < len && (text[i] == '+' || text[i] == '-')) i++;
                    while (i < len && is_digit(text[i])) i++;
                }
            }
            /* "12abc" is one malformed token, not a number and an identifier */
            while (i < len && (is_alpha(text[i]) || is_digit(text[i]))) i++;
            k->kind = TK_NUMBER;
        } else if (c == '"') {
            i++;
            while (i < len && text[i] != '"') {
                if (text[i] == '\n' || text[i] == 0) break;
                if (text[i] == '\\' && i + 1 < len && text[i + 1] != '\n') i++;
                i++;
            }
            if (i >= len || text[i] != '"') {
                free(t);
                return an_err_set(err, AN_E_FORMAT, "MIL line %d, column %d: unterminated string", line, col);
            }
            i++;
            k->kind = TK_STRING;
        } else if (c == '-' && i + 1 < len && text[i + 1] == '>') {
            i += 2;
            k->kind = TK_ARROW;
        } else {
            static const char punct[] = "()[]{}<>,=;";
            static const ref_tok_kind kinds[] = {TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE,
                                                 TK_LT,     TK_GT,     TK_COMMA,  TK_EQ,     TK_SEMI};
            const char *p = c ? strchr(punct, c) : NULL;
            if (!p) {
                free(t);
                unsigned char u = (unsigned char)c;
                if (u >= 0x20 && u < 0x7f)
                    return an_err_set(err, AN_E_FORMAT, "MIL line %d, column %d: unexpected character '%c'", line,
                                      col, c);
                return an_err_set(err, AN_E_FORMAT, "MIL line %d, column %d: unexpected byte 0x%02X", line, col, u);
            }
            i++;
            k->kind = kinds[p - punct];
        }
        k->n = i - s;
        n++;
    }
    *toks = t;
    *n_toks = n;
    return AN_OK;
}
