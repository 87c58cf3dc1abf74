/* Reset entry, vector table and fault handling. */
#include <stdint.h>
#include "board.h"
#include "console.h"
#include "regs.h"
#include "uart.h"

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern int main(void);
void reset_handler(void);
void systick_handler(void);

typedef void (*vector_t)(void);
extern const vector_t vectors[];

/* F405 and L475 both have 82 external interrupt lines. */
#define IRQ_LINES 82

void reset_handler(void)
{
    uint32_t *src = _sidata, *dst = _sdata;

    while (dst < _edata)
        *dst++ = *src++;
    for (dst = _sbss; dst < _ebss; dst++)
        *dst = 0;
    /* QEMU starts with VTOR 0 (a flash alias); point it at the table
     * itself so nothing depends on the alias. */
    REG32(SCB_VTOR) = (uint32_t)(uintptr_t)vectors;
    main();
    for (;;)
        ;
}

/* Every external IRQ comes here; which one it is comes from IPSR. This
 * keeps the table board-independent while the IRQ number lives in the
 * board file. */
static void irq_dispatch(void)
{
    uint32_t ipsr;
    int irq;

    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    irq = (int)(ipsr & 0x1FFu) - 16;
    if (irq == board.modem.irq)
        modem_uart_isr();
    else if (irq >= 0)
        /* Nothing else is ever enabled; switch it off rather than spin. */
        REG32(NVIC_ICER + 4u * ((unsigned)irq / 32u)) = 1u << ((unsigned)irq % 32u);
}

/* A fault means a bug; restarting gets the device back into a known
 * state, which beats hanging silently. */
static void fault_handler(void)
{
    console_raw("\r\nfatal: CPU fault, resetting\r\n");
    REG32(SCB_AIRCR) = AIRCR_SYSRESET;
    for (;;)
        ;
}

static void unused_handler(void)
{
}

__attribute__((section(".vectors"), used))
const vector_t vectors[16 + IRQ_LINES] = {
    [0] = (vector_t)(uintptr_t)_estack,
    [1] = reset_handler,
    [2] = fault_handler,        /* NMI */
    [3] = fault_handler,        /* HardFault */
    [4] = fault_handler,        /* MemManage */
    [5] = fault_handler,        /* BusFault */
    [6] = fault_handler,        /* UsageFault */
    [11] = unused_handler,      /* SVCall */
    [12] = unused_handler,      /* DebugMonitor */
    [14] = unused_handler,      /* PendSV */
    [15] = systick_handler,
    [16 ... 16 + IRQ_LINES - 1] = irq_dispatch,
};
