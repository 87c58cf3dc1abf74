/* Just enough HTTP/1.1 response parsing for a GET with "Connection: close". */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>

struct http_response {
    int code;                 /* status code, -1 if the status line is not HTTP */
    const char *status;       /* status line, not NUL-terminated */
    size_t status_len;
    const char *body;
    size_t body_len;
    long content_length;      /* -1 when absent */
    int chunked;
};

/* Parses a response held in `buf`; a chunked body is decoded in place.
 * Returns 0 when not even the header block is complete. */
int http_parse(char *buf, size_t len, struct http_response *r);

/* 1 once `buf` holds the whole response its Content-Length announces. */
int http_complete(const char *buf, size_t len);

#endif
