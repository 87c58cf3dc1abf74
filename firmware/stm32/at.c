#include "at.h"
#include "board.h"
#include "lib.h"
#include "systick.h"
#include "uart.h"

/* The modem's own line limit is 200 bytes; anything longer is garbage
 * and is dropped whole rather than acted on in pieces. */
#define LINE_MAX 256
#define INFO_MAX 128
/* Largest +IPD block believed: a TLS record (16 KB) plus slack. A bigger
 * number is garbage, and swallowing it would blind the parser. */
#define IPD_MAX 20000u

static char line[LINE_MAX];
static size_t line_len;
static int line_overflow;
static uint32_t ipd_left;
static void (*sink)(uint8_t);
static char info[INFO_MAX];

void at_init(void (*ipd_sink)(uint8_t byte))
{
    sink = ipd_sink;
    modem_uart_start();
    at_restart();
}

void at_restart(void)
{
    while (modem_getc() >= 0)
        ;
    line_len = 0;
    line_overflow = 0;
    ipd_left = 0;
}

void at_send(const char *text)
{
    uart_write(&board.modem, text, strlen(text));
}

void at_send_bytes(const void *data, size_t len)
{
    uart_write(&board.modem, data, len);
}

const char *at_info(void)
{
    return info;
}

/* `line` holds "+IPD,<n>:" or "+IPD,<id>,<n>:"; returns n or -1. */
static long ipd_length(void)
{
    unsigned long value[2] = { 0, 0 };
    int fields = 0, digits = 0;
    size_t i;

    for (i = 5; i < line_len - 1u; i++) {
        char c = line[i];
        if (is_digit(c) && digits < 6) {
            value[fields] = value[fields] * 10u + (unsigned long)(c - '0');
            digits++;
        } else if (c == ',' && digits && fields == 0) {
            fields = 1;
            digits = 0;
        } else {
            return -1;
        }
    }
    if (!digits || value[fields] > IPD_MAX)
        return -1;
    return (long)value[fields];
}

static int parse_reason(const char *s)
{
    int v = 0, digits = 0;

    while (*s && *s != '(')
        s++;
    if (*s)
        s++;
    while (is_digit(*s) && digits < 6) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    return digits && *s == ')' ? v : -1;
}

/* URCs are matched exactly (or by their fixed prefix) so that a response
 * that merely contains such words is not mistaken for one. */
static int classify(const char *l)
{
    if (!strcmp(l, "ready"))
        at_urc(URC_READY, 0);
    else if (!strcmp(l, "WIFI CONNECTED"))
        at_urc(URC_WIFI_CONNECTED, 0);
    else if (!strcmp(l, "WIFI GOT IP"))
        at_urc(URC_WIFI_GOT_IP, 0);
    else if (starts_with(l, "WIFI DISCONNECT"))
        at_urc(URC_WIFI_DISCONNECT, parse_reason(l));
    else if (!strcmp(l, "CLOSED") || (is_digit(l[0]) && !strcmp(l + 1, ",CLOSED")))
        at_urc(URC_CLOSED, 0);
    else if (starts_with(l, "busy "))
        at_urc(URC_BUSY, 0);
    else
        return 0;
    return 1;
}

/* Ends the current line; returns it, or NULL if there is nothing to report. */
static const char *finish_line(void)
{
    size_t end = line_len, start = 0;
    int overflow = line_overflow;

    line_len = 0;
    line_overflow = 0;
    if (overflow)
        return NULL;
    /* CR before LF, and the space the "> " prompt leaves behind. */
    while (end && (line[end - 1] == '\r' || line[end - 1] == ' '))
        end--;
    while (start < end && line[start] == ' ')
        start++;
    if (start == end)
        return NULL;
    memmove(line, line + start, end - start);
    line[end - start] = '\0';
    return line;
}

/* Feeds one byte; returns a finished line or NULL. */
static const char *feed(uint8_t c)
{
    if (ipd_left) {
        ipd_left--;
        if (sink)
            sink(c);
        return NULL;
    }
    /* LF alone ends a line: AT+CIPSNTPTIME? ends its line with a bare LF. */
    if (c == '\n')
        return finish_line();
    if (line_len < LINE_MAX - 1u)
        line[line_len++] = (char)c;
    else
        line_overflow = 1;
    /* The data prompts ("> " and ">") never end in a newline. */
    if (line_len == 1u && c == '>') {
        line_len = 0;
        line[0] = '>';
        line[1] = '\0';
        return line;
    }
    /* +IPD payload follows the colon with no line end of its own. */
    if (c == ':' && !line_overflow && line_len > 6u && starts_with(line, "+IPD,")) {
        long n;
        line[line_len] = '\0';
        n = ipd_length();
        if (n >= 0) {
            ipd_left = (uint32_t)n;
            line_len = 0;
        }
    }
    return NULL;
}

const char *at_read_line(uint32_t deadline, int *urc)
{
    for (;;) {
        int c;
        const char *l;

        /* Checked before every byte too: a modem that never stops
         * sending garbage must not keep a wait alive for ever. */
        if (expired(deadline))
            return NULL;
        c = modem_getc();
        if (c < 0) {
            sleep_unless(modem_rx_pending);
            continue;
        }
        l = feed((uint8_t)c);
        if (l) {
            *urc = l[0] != '>' && classify(l);
            return l;
        }
    }
}

static void keep(const char *l)
{
    size_t n = strlen(l);

    if (n >= INFO_MAX)
        n = INFO_MAX - 1u;
    memcpy(info, l, n);
    info[n] = '\0';
}

enum at_status at_wait(uint32_t timeout_ms, unsigned flags, const char *capture)
{
    uint32_t deadline = millis() + timeout_ms;
    int captured = 0;

    info[0] = '\0';
    for (;;) {
        int urc;
        const char *l = at_read_line(deadline, &urc);

        if (!l)
            return AT_TIMEOUT;
        if (urc) {
            if (!strcmp(l, "ready"))
                return AT_REBOOT;
            continue;
        }
        if (!strcmp(l, ">")) {
            if (flags & AT_WANT_PROMPT)
                return AT_PROMPT;
            continue;
        }
        if (!strcmp(l, "ERROR"))
            return AT_ERROR;
        if (!strcmp(l, "FAIL") || !strcmp(l, "SEND FAIL"))
            return AT_FAIL;
        if (!(flags & AT_WANT_PROMPT) && (!strcmp(l, "OK") || !strcmp(l, "SEND OK")))
            return AT_OK;
        if (!capture) {
            keep(l);
        } else if (!captured && starts_with(l, capture)) {
            keep(l);
            captured = 1;
        }
    }
}
