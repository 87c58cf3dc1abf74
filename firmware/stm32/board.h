/* What differs between the boards; each board_*.c defines `board` and board_init(). */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

/* The F4 USART (SR/DR) and the L4 USART (ISR/RDR/TDR/ICR) put their
 * registers at different offsets and UE in a different bit, but the
 * status bits and the other CR1 bits we use sit at the same positions. */
struct uart_layout {
    uint8_t cr1, brr, sr, rdr, tdr;
    uint8_t icr;         /* UART_NO_ICR on F4: errors clear by reading SR then DR */
    uint32_t cr1_ue;
};
#define UART_NO_ICR 0xFFu

struct uart_port {
    uintptr_t base;
    const struct uart_layout *layout;
    uint32_t brr;        /* divider for 115200 Bd at this port's kernel clock */
    int irq;             /* NVIC line, or -1 for a polled port */
};

struct board {
    const char *name;
    uint32_t core_hz;    /* SysTick counts this clock */
    struct uart_port console;
    struct uart_port modem;
};

extern const struct board board;

/* Clocks, clock gates and pins; runs before any UART is touched. */
void board_init(void);

#endif
