#ifndef UART_H
#define UART_H

#include <stddef.h>
#include <stdint.h>
#include "board.h"

void uart_init(const struct uart_port *port);
void uart_write(const struct uart_port *port, const void *data, size_t len);

/* The modem port: received bytes land in a ring buffer from its IRQ. */
void modem_uart_start(void);
int modem_getc(void);                 /* -1 when nothing is waiting */
int modem_rx_pending(void);      /* 1 when a byte is waiting */
uint32_t modem_rx_dropped(void);      /* bytes lost to a full ring */
void modem_uart_isr(void);

#endif
