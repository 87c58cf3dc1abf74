#include "http.h"
#include "lib.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive "name:" match at `p`; returns the value start or NULL. */
static const char *header_value(const char *p, const char *end, const char *name)
{
    for (; *name; name++, p++)
        if (p >= end || lower(*p) != *name)
            return NULL;
    if (p >= end || *p != ':')
        return NULL;
    for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
        ;
    return p;
}

/* Index just past the blank line ending the headers, or 0. */
static size_t header_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i + 1u < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2u;
        if (i + 2u < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3u;
    }
    return 0;
}

static const char *line_end(const char *p, const char *end)
{
    while (p < end && *p != '\n')
        p++;
    return p;
}

static void read_headers(const char *buf, size_t hdr_len, struct http_response *r)
{
    const char *end = buf + hdr_len;
    const char *p = line_end(buf, end);

    r->content_length = -1;
    r->chunked = 0;
    while (p < end) {
        const char *eol, *v;
        p++;
        eol = line_end(p, end);
        if ((v = header_value(p, eol, "content-length")) != NULL) {
            long n = 0;
            int digits = 0;
            for (; v < eol && is_digit(*v) && digits < 9; v++, digits++)
                n = n * 10 + (*v - '0');
            r->content_length = digits ? n : -1;
        } else if ((v = header_value(p, eol, "transfer-encoding")) != NULL) {
            for (; v + 7 <= eol; v++)
                if (lower(v[0]) == 'c' && !strncmp(v + 1, "hunked", 6))
                    r->chunked = 1;
        }
        p = eol;
    }
}

static int hex_value(int c)
{
    c = lower(c);
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes in place; stops quietly at malformed or missing data, keeping
 * what was decoded so far. Returns the decoded length. */
static size_t dechunk(char *body, size_t len)
{
    const char *p = body, *end = body + len;
    char *out = body;

    while (p < end) {
        size_t size = 0;
        int digits = 0, v;

        while (p < end && (v = hex_value(*p)) >= 0 && digits < 7) {
            size = size * 16u + (size_t)v;
            p++;
            digits++;
        }
        if (!digits)
            break;
        p = line_end(p, end);       /* chunk extensions, CR LF */
        if (p < end)
            p++;
        if (size == 0)
            break;
        if (size > (size_t)(end - p))
            size = (size_t)(end - p);
        memmove(out, p, size);
        out += size;
        p += size;
        if (p < end && *p == '\r')
            p++;
        if (p < end && *p == '\n')
            p++;
    }
    return (size_t)(out - body);
}

int http_parse(char *buf, size_t len, struct http_response *r)
{
    size_t hdr = header_end(buf, len);
    const char *eol;

    if (!hdr)
        return 0;
    eol = line_end(buf, buf + hdr);
    r->status = buf;
    r->status_len = (size_t)(eol - buf);
    if (r->status_len && buf[r->status_len - 1] == '\r')
        r->status_len--;
    r->code = -1;
    if (r->status_len >= 12 && starts_with(buf, "HTTP/")) {
        const char *p = buf + 5;
        while (p < eol && *p != ' ')
            p++;
        if (p + 4 <= eol && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]))
            r->code = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    }
    read_headers(buf, hdr, r);
    r->body = buf + hdr;
    r->body_len = len - hdr;
    if (r->chunked)
        r->body_len = dechunk(buf + hdr, len - hdr);
    else if (r->content_length >= 0 && (size_t)r->content_length < r->body_len)
        r->body_len = (size_t)r->content_length;
    return 1;
}

int http_complete(const char *buf, size_t len)
{
    size_t hdr = header_end(buf, len);
    struct http_response r;

    if (!hdr)
        return 0;
    read_headers(buf, hdr, &r);
    return !r.chunked && r.content_length >= 0 && len - hdr >= (size_t)r.content_length;
}
