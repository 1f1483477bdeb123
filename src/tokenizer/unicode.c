/* unicode.c — UTF-8 coding with llama.cpp's error behaviour and the GPT-2 byte map. */
#include "tokenizer/unicode.h"

uint32_t an_utf8_decode(const uint8_t *s, size_t n, size_t *i) {
    size_t k = *i;
    uint8_t c = s[k];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
        *i = k + 1;
        return c;
    }
    /* llama.cpp tests the lead bits in this order: 10xxxxxx is invalid, then 110, 1110, 11110;
     * 11111xxx is invalid. Only the continuation pattern of the following bytes is checked. */
    if (!(c & 0x40)) goto bad;
    if (!(c & 0x20)) { len = 2; cp = c & 0x1f; }
    else if (!(c & 0x10)) { len = 3; cp = c & 0x0f; }
    else if (!(c & 0x08)) { len = 4; cp = c & 0x07; }
    else goto bad;
    if (k + len > n) goto bad;
    for (size_t j = 1; j < len; j++) {
        if ((s[k + j] & 0xc0) != 0x80) goto bad;
        cp = (cp << 6) | (s[k + j] & 0x3f);
    }
    *i = k + len;
    return cp > 0x10FFFF ? 0xFFFD : cp;
bad:
    *i = k + 1;
    return 0xFFFD;
}

size_t an_utf8_encode(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xc0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xe0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    if (cp > 0x10FFFF) cp = 0xFFFD; /* never produced by an_utf8_decode; defensive */
    if (cp < 0x10000) return an_utf8_encode(cp, o);
    o[0] = (uint8_t)(0xf0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* GPT-2's bytes_to_unicode: printable bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) map to
 * themselves; the other 68 bytes map, in increasing byte order, to U+0100, U+0101, ... */
static int byte_is_self(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t an_byte_to_cp(uint8_t b) {
    if (byte_is_self(b)) return b;
    /* rank of b among the non-self bytes */
    unsigned r;
    if (b <= 0x20) r = b;                       /* 0x00..0x20: 33 bytes */
    else if (b <= 0xA0) r = 33 + (b - 0x7F);    /* 0x7F..0xA0: 34 bytes */
    else r = 67;                                /* 0xAD */
    return 0x100 + r;
}

int an_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_self(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    unsigned r = cp - 0x100;
    if (r < 33) return (int)r;
    if (r < 67) return (int)(0x7F + (r - 33));
    return 0xAD;
}
