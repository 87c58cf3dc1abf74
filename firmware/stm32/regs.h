/* Register access and the Cortex-M4 core peripherals both boards share.
 * Written from the ARMv7-M architecture manual; no vendor headers on purpose,
 * so the firmware builds with nothing but a bare cross compiler. */
#ifndef REGS_H
#define REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define SYST_CSR   0xE000E010u
#define SYST_RVR   0xE000E014u
#define SYST_CVR   0xE000E018u
#define NVIC_ISER  0xE000E100u
#define NVIC_ICER  0xE000E180u
#define SCB_VTOR   0xE000ED08u
#define SCB_AIRCR  0xE000ED0Cu

#define AIRCR_SYSRESET (0x05FA0000u | (1u << 2))

/* Both STM32 families use the same GPIO register layout. */
#define GPIO_MODER   0x00u
#define GPIO_OSPEEDR 0x08u
#define GPIO_PUPDR   0x0Cu
#define GPIO_AFRL    0x20u
#define GPIO_AFRH    0x24u

static inline void gpio_alternate(uintptr_t port, unsigned pin, unsigned af)
{
    uint32_t shift2 = pin * 2u;
    uintptr_t afr = port + (pin < 8u ? GPIO_AFRL : GPIO_AFRH);
    uint32_t shift4 = (pin & 7u) * 4u;

    /* AF number before mode, so the pin never drives a wrong function. */
    REG32(afr) = (REG32(afr) & ~(0xFu << shift4)) | ((uint32_t)af << shift4);
    REG32(port + GPIO_OSPEEDR) |= 2u << shift2;
    REG32(port + GPIO_PUPDR) = (REG32(port + GPIO_PUPDR) & ~(3u << shift2)) | (1u << shift2);
    REG32(port + GPIO_MODER) = (REG32(port + GPIO_MODER) & ~(3u << shift2)) | (2u << shift2);
}

/* For every wait on a hardware flag: some emulators do not model the
 * peripheral at all and read zero, so a wait may never see the flag. */
static inline int wait_bits(uintptr_t addr, uint32_t mask, uint32_t want, uint32_t spins)
{
    while (spins--)
        if ((REG32(addr) & mask) == want)
            return 1;
    return 0;
}

#endif
