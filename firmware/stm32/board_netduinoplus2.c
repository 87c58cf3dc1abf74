/* Netduino Plus 2: STM32F405RG, 25 MHz crystal.
 * Console on USART1 (PA9/PA10), modem on USART2 (PA2/PA3), both AF7. */
#include "board.h"
#include "regs.h"

#define RCC          0x40023800u
#define RCC_CR       (RCC + 0x00u)
#define RCC_PLLCFGR  (RCC + 0x04u)
#define RCC_CFGR     (RCC + 0x08u)
#define RCC_AHB1ENR  (RCC + 0x30u)
#define RCC_APB1ENR  (RCC + 0x40u)
#define RCC_APB2ENR  (RCC + 0x44u)
#define FLASH_ACR    0x40023C00u
#define GPIOA        0x40020000u

#define CR_HSEON   (1u << 16)
#define CR_HSERDY  (1u << 17)
#define CR_PLLON   (1u << 24)
#define CR_PLLRDY  (1u << 25)

/* Enough for a real crystal to start (a few ms at 16 MHz HSI), short
 * enough not to be noticed where the flag is never set. */
#define READY_SPINS 200000u

static const struct uart_layout f4_usart = {
    .cr1 = 0x0C, .brr = 0x08, .sr = 0x00, .rdr = 0x04, .tdr = 0x04,
    .icr = UART_NO_ICR, .cr1_ue = 1u << 13,
};

/* 168 MHz is what this firmware sets the PLL to below, and it is also the
 * SYSCLK QEMU models for this SoC (QEMU has no RCC model here: its ready
 * flags read 0, so the bounded waits give up and the emulated clock is
 * already 168 MHz). Renode's stm32f4 platform clocks SysTick from its own
 * `systickFrequency` setting, which a platform script must set to match.
 * APB2 = 84 MHz (USART1), APB1 = 42 MHz (USART2). */
const struct board board = {
    .name = "netduinoplus2",
    .core_hz = 168000000u,
    .console = { 0x40011000u, &f4_usart, 729u, -1 },   /* 84 MHz / 115200 */
    .modem   = { 0x40004400u, &f4_usart, 365u, 38 },   /* 42 MHz / 115200 */
};

static void clock_168mhz(void)
{
    REG32(RCC_CR) |= CR_HSEON;
    if (!wait_bits(RCC_CR, CR_HSERDY, CR_HSERDY, READY_SPINS))
        return;
    /* 25 MHz / M25 * N336 / P2 = 168 MHz; / Q7 = 48 MHz for USB. */
    REG32(RCC_PLLCFGR) = 25u | (336u << 6) | (0u << 16) | (1u << 22) | (7u << 24);
    REG32(RCC_CR) |= CR_PLLON;
    if (!wait_bits(RCC_CR, CR_PLLRDY, CR_PLLRDY, READY_SPINS))
        return;
    /* 5 wait states plus caches for 168 MHz at 3.3 V, set before the switch. */
    REG32(FLASH_ACR) = 5u | (1u << 8) | (1u << 9) | (1u << 10);
    /* AHB /1, APB1 /4 (max 42 MHz), APB2 /2 (max 84 MHz) before the
     * switch, so no bus ever runs above its limit. */
    REG32(RCC_CFGR) = (5u << 10) | (4u << 13);
    REG32(RCC_CFGR) |= 2u;
    (void)wait_bits(RCC_CFGR, 0xCu, 0x8u, READY_SPINS);
}

void board_init(void)
{
    clock_168mhz();
    REG32(RCC_AHB1ENR) |= 1u << 0;          /* GPIOA */
    REG32(RCC_APB2ENR) |= 1u << 4;          /* USART1 */
    REG32(RCC_APB1ENR) |= 1u << 17;         /* USART2 */
    (void)REG32(RCC_APB1ENR);               /* let the gates settle before use */
    gpio_alternate(GPIOA, 9, 7);
    gpio_alternate(GPIOA, 10, 7);
    gpio_alternate(GPIOA, 2, 7);
    gpio_alternate(GPIOA, 3, 7);
}
