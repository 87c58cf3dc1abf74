/* USART driver for both register layouts (see struct uart_layout). */
#include "uart.h"
#include "regs.h"

#define CR1_RE      (1u << 2)
#define CR1_TE      (1u << 3)
#define CR1_RXNEIE  (1u << 5)
#define SR_ORE      (1u << 3)
#define SR_RXNE     (1u << 5)
#define SR_TXE      (1u << 7)
#define ICR_ORECF   (1u << 3)

/* At 115200 Bd one byte takes ~87 us; this bound is far longer even at
 * 168 MHz, and only matters if a model never raises TXE. */
#define TXE_SPINS 200000u

/* A power of two, so the indices can run freely and wrap by masking.
 * 4 KB holds more than a full TLS record's worth of +IPD at 115200 Bd
 * while the application prints a line. */
#define RX_RING 4096u
static uint8_t rx_ring[RX_RING];
static volatile uint32_t rx_head;     /* written only by the ISR */
static volatile uint32_t rx_tail;     /* written only by the main loop */
static volatile uint32_t rx_dropped;

#define R(port, off) REG32((port)->base + (port)->layout->off)

void uart_init(const struct uart_port *port)
{
    uint32_t cr1 = port->layout->cr1_ue | CR1_TE | CR1_RE;

    if (port->irq >= 0)
        cr1 |= CR1_RXNEIE;
    /* The L4 ignores BRR writes while UE is set; clearing CR1 only when
     * needed keeps QEMU from checking a not yet written BRR. */
    if (R(port, cr1) & port->layout->cr1_ue)
        R(port, cr1) = 0;
    R(port, brr) = port->brr;
    R(port, cr1) = cr1;
}

void uart_write(const struct uart_port *port, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len--) {
        (void)wait_bits(port->base + port->layout->sr, SR_TXE, SR_TXE, TXE_SPINS);
        R(port, tdr) = *p++;
    }
}

void modem_uart_start(void)
{
    const struct uart_port *m = &board.modem;

    rx_head = rx_tail = 0;
    uart_init(m);
    REG32(NVIC_ISER + 4u * ((unsigned)m->irq / 32u)) = 1u << ((unsigned)m->irq % 32u);
}

void modem_uart_isr(void)
{
    const struct uart_port *m = &board.modem;
    uint32_t sr = R(m, sr);

    /* On the F4 the SR read above plus this DR read also clears an
     * overrun; RXNEIE enables the overrun interrupt too, so it must be
     * cleared here or the IRQ would fire for ever. */
    if (sr & (SR_RXNE | SR_ORE)) {
        uint8_t c = (uint8_t)R(m, rdr);
        if (sr & SR_RXNE) {
            uint32_t head = rx_head;
            if (head - rx_tail < RX_RING) {
                rx_ring[head & (RX_RING - 1u)] = c;
                rx_head = head + 1u;
            } else {
                rx_dropped++;
            }
        }
    }
    if ((sr & SR_ORE) && m->layout->icr != UART_NO_ICR) {
        R(m, icr) = ICR_ORECF;
        rx_dropped++;
    }
}

int modem_rx_pending(void)
{
    return rx_head != rx_tail;
}

int modem_getc(void)
{
    uint32_t tail = rx_tail;
    int c;

    if (rx_head == tail)
        return -1;
    c = rx_ring[tail & (RX_RING - 1u)];
    rx_tail = tail + 1u;
    return c;
}

uint32_t modem_rx_dropped(void)
{
    return rx_dropped;
}
