#include "systick.h"
#include "regs.h"

static volatile uint32_t ticks;

void systick_start(uint32_t core_hz)
{
    REG32(SYST_RVR) = core_hz / 1000u - 1u;
    REG32(SYST_CVR) = 0;
    /* Processor clock, interrupt on wrap, enabled. */
    REG32(SYST_CSR) = 7u;
}

void systick_handler(void)
{
    ticks++;
}

uint32_t millis(void)
{
    return ticks;
}

void sleep_unless(int (*busy)(void))
{
    /* With interrupts masked, a byte that arrives between the check and
     * the WFI still ends the WFI (a pending IRQ wakes it regardless of
     * PRIMASK) and is handled right after CPSIE. */
    __asm volatile("cpsid i" ::: "memory");
    if (!busy())
        __asm volatile("wfi" ::: "memory");
    __asm volatile("cpsie i" ::: "memory");
}
