/* A small bounded formatter, for console lines and AT commands.
 *   %s  string            %S  string with non-printable bytes shown as '.'
 *   %q  AT string: quoted, with '"', '\\' and ',' escaped by a backslash
 *   %d %u  decimal        %c  character      %%  percent
 *   %.*s / %.*S  at most N bytes (an int argument before the pointer)
 * The output is always NUL-terminated and cut at `cap`.
 * (No printf format attribute: -Wformat would reject %S and %q.) */
#ifndef FMT_H
#define FMT_H

#include <stdarg.h>
#include <stddef.h>

size_t fmt(char *buf, size_t cap, const char *f, ...);
size_t vfmt(char *buf, size_t cap, const char *f, va_list ap);

#endif
