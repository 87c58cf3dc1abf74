/* Console on the board's console USART, polled: output is rare and
 * short, and polling keeps it usable from fault handlers. */
#include <stdarg.h>
#include "console.h"
#include "board.h"
#include "fmt.h"
#include "lib.h"
#include "uart.h"

void console_start(void)
{
    uart_init(&board.console);
}

void console_raw(const char *s)
{
    uart_write(&board.console, s, strlen(s));
}

void say(const char *f, ...)
{
    char line[244];
    va_list ap;
    size_t n;

    va_start(ap, f);
    n = vfmt(line, sizeof line - 2u, f, ap);
    va_end(ap);
    line[n++] = '\r';
    line[n++] = '\n';
    uart_write(&board.console, line, n);
}
