/* AT client for the ESP_ATMod dialect: turns the modem's byte stream into
 * response lines, handles unsolicited messages (URCs) wherever they show
 * up, and passes +IPD payload bytes to a sink. */
#ifndef AT_H
#define AT_H

#include <stddef.h>
#include <stdint.h>

enum at_status {
    AT_OK,          /* OK, SEND OK */
    AT_ERROR,       /* ERROR */
    AT_FAIL,        /* FAIL, SEND FAIL */
    AT_PROMPT,      /* the '>' data prompt */
    AT_TIMEOUT,
    AT_REBOOT,      /* the modem printed "ready" when nobody expected it */
};

enum at_urc {
    URC_READY,
    URC_WIFI_CONNECTED,
    URC_WIFI_GOT_IP,
    URC_WIFI_DISCONNECT,    /* arg: the reason code, -1 if unreadable */
    URC_CLOSED,
    URC_BUSY,
};

/* at_wait() flags */
#define AT_WANT_PROMPT  1u  /* ">" ends the wait; "OK" before it does not */

/* Implemented by the application; called for every URC as it is read. */
void at_urc(enum at_urc urc, int arg);

void at_init(void (*ipd_sink)(uint8_t byte));
/* Forgets unread input and any half-read line or +IPD block. */
void at_restart(void);
void at_send(const char *text);
void at_send_bytes(const void *data, size_t len);

/* Reads until a complete non-empty line (URCs included, after at_urc()
 * has seen them) or the deadline; NULL at the deadline. The line stays
 * valid until the next call. `*urc` tells whether it was a URC. */
const char *at_read_line(uint32_t deadline, int *urc);

/* Reads lines until a final response or `timeout_ms`. Other lines are
 * kept as "info": the first one starting with `capture` or, if `capture`
 * is NULL, the last one. */
enum at_status at_wait(uint32_t timeout_ms, unsigned flags, const char *capture);
const char *at_info(void);

#endif
