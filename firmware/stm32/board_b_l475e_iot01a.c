/* B-L475E-IOT01A: STM32L475VG. Console on USART1 (PB6/PB7, the ST-LINK
 * virtual COM port), modem on USART2 (PA2/PA3), both AF7. */
#include "board.h"
#include "regs.h"

#define RCC           0x40021000u
#define RCC_AHB2ENR   (RCC + 0x4Cu)
#define RCC_APB1ENR1  (RCC + 0x58u)
#define RCC_APB2ENR   (RCC + 0x60u)
#define GPIOA         0x48000000u
#define GPIOB         0x48000400u

static const struct uart_layout l4_usart = {
    .cr1 = 0x00, .brr = 0x0C, .sr = 0x1C, .rdr = 0x24, .tdr = 0x28,
    .icr = 0x20, .cr1_ue = 1u << 0,
};

/* The clock stays at the 4 MHz MSI it resets to: the application is
 * I/O bound, and QEMU's L4 model derives SysTick and the USART kernel
 * clocks from the same RCC state, so nothing here needs a faster clock. */
const struct board board = {
    .name = "b-l475e-iot01a",
    .core_hz = 4000000u,
    .console = { 0x40013800u, &l4_usart, 35u, -1 },    /* 4 MHz / 115200 */
    .modem   = { 0x40004400u, &l4_usart, 35u, 38 },
};

void board_init(void)
{
    /* Unlike the F405 model, QEMU's L4 USARTs stay dead until clocked. */
    REG32(RCC_AHB2ENR) |= (1u << 0) | (1u << 1);   /* GPIOA, GPIOB */
    REG32(RCC_APB2ENR) |= 1u << 14;                /* USART1 */
    REG32(RCC_APB1ENR1) |= 1u << 17;               /* USART2 */
    (void)REG32(RCC_APB1ENR1);
    gpio_alternate(GPIOB, 6, 7);
    gpio_alternate(GPIOB, 7, 7);
    gpio_alternate(GPIOA, 2, 7);
    gpio_alternate(GPIOA, 3, 7);
}
