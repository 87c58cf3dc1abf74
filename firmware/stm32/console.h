#ifndef CONSOLE_H
#define CONSOLE_H

void console_start(void);
void console_raw(const char *s);
/* One console line; "\r\n" is appended. Lines longer than 240 bytes are cut. */
void say(const char *f, ...);

#endif
