#ifndef SYSTICK_H
#define SYSTICK_H

#include <stdbool.h>
#include <stdint.h>

void systick_start(uint32_t core_hz);
uint32_t millis(void);

/* Wrap-safe: true once `deadline` (a millis() value) has been reached. */
static inline bool expired(uint32_t deadline)
{
    return (int32_t)(millis() - deadline) >= 0;
}

/* Sleeps until the next interrupt unless `busy()` is already true. */
void sleep_unless(int (*busy)(void));

#endif
