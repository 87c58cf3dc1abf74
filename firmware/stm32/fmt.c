#include "fmt.h"

struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1u < o->cap)
        o->buf[o->len++] = c;
}

static void put_unsigned(struct out *o, unsigned v)
{
    char digits[10];
    int n = 0;

    do {
        digits[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        put(o, digits[--n]);
}

static void put_text(struct out *o, const char *s, int max, char mode)
{
    if (!s)
        s = "(null)";
    if (mode == 'q')
        put(o, '"');
    /* With a length, %.*S also shows NUL bytes (as '.') instead of
     * stopping, so binary junk cannot hide the rest of a line. */
    for (; max != 0 && (*s || (mode == 'S' && max > 0)); s++, max--) {
        unsigned char c = (unsigned char)*s;
        if (mode == 'S' && (c < 0x20u || c >= 0x7Fu))
            c = '.';
        if (mode == 'q' && (c == '"' || c == '\\' || c == ','))
            put(o, '\\');
        put(o, (char)c);
    }
    if (mode == 'q')
        put(o, '"');
}

size_t vfmt(char *buf, size_t cap, const char *f, va_list ap)
{
    struct out o = { buf, cap, 0 };

    for (; *f; f++) {
        int max = -1;

        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        if (f[0] == '.' && f[1] == '*') {
            max = va_arg(ap, int);
            if (max < 0)
                max = 0;
            f += 2;
        }
        switch (*f) {
        case 's':
        case 'S':
        case 'q':
            put_text(&o, va_arg(ap, const char *), max, *f);
            break;
        case 'd': {
            int v = va_arg(ap, int);
            if (v < 0) {
                put(&o, '-');
                put_unsigned(&o, 0u - (unsigned)v);
            } else {
                put_unsigned(&o, (unsigned)v);
            }
            break;
        }
        case 'u':
            put_unsigned(&o, va_arg(ap, unsigned));
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case '%':
            put(&o, '%');
            break;
        default:
            /* An unknown conversion is a bug in the format; show it. */
            put(&o, '%');
            if (!*f)
                f--;
            else
                put(&o, *f);
            break;
        }
    }
    if (cap)
        buf[o.len] = '\0';
    return o.len;
}

size_t fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, f);
    n = vfmt(buf, cap, f, ap);
    va_end(ap);
    return n;
}
