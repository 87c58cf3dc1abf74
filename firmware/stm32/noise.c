/* A misbehaving host: what a firmware with the wrong baud rate, a buffer bug or
 * a crash mid-command puts on the modem's UART. The real chip answers each of
 * these with ERROR (or nothing) and still takes the next command; this program
 * checks that the modem does too, and says what it saw on the console. */
#include <stdint.h>
#include "at.h"
#include "board.h"
#include "console.h"
#include "systick.h"

#define NOISE_BYTES 2048u

void at_urc(enum at_urc urc, int arg)
{
    (void)urc;
    (void)arg;
}

static int never(void)
{
    return 0;
}

static void ignore_payload(uint8_t byte)
{
    (void)byte;
}

/* Counts the ERROR replies that arrive within `ms`. */
static unsigned errors_within(uint32_t ms)
{
    uint32_t deadline = millis() + ms;
    unsigned errors = 0;
    int urc;
    const char *line;

    while ((line = at_read_line(deadline, &urc)) != 0)
        if (!urc && line[0] == 'E' && line[1] == 'R' && line[2] == 'R')
            errors++;
    return errors;
}

static void send_noise(void)
{
    /* A 16-bit Galois LFSR: the same bytes every run, so every run is the same test. */
    uint16_t lfsr = 0xACE1u;
    uint8_t chunk[64];

    for (unsigned sent = 0; sent < NOISE_BYTES; sent += sizeof chunk) {
        for (unsigned i = 0; i < sizeof chunk; i++) {
            lfsr = (uint16_t)((lfsr >> 1) ^ (-(lfsr & 1u) & 0xB400u));
            chunk[i] = (uint8_t)lfsr;
        }
        at_send_bytes(chunk, sizeof chunk);
    }
    at_send("\r\n");
}

static void send_long_line(void)
{
    at_send("AT+");
    for (int i = 0; i < 300; i++)
        at_send("A");
    at_send("\r\n");
}

int main(void)
{
    board_init();
    console_start();
    systick_start(board.core_hz);
    at_init(ignore_payload);
    say("atmodem-noise %s: start", board.name);
    (void)errors_within(1500u);   /* the modem's ready, if the UART was up for it */

    send_noise();
    say("noise: %u bytes of binary noise, %u ERROR replies", NOISE_BYTES, errors_within(1000u));

    send_long_line();
    say("noise: a 303-byte line, %u ERROR replies", errors_within(500u));

    /* A crash halfway through a command: the rest of the line never comes. */
    at_send("AT+CWJAP=\"atmo");
    (void)errors_within(300u);
    at_send("\r\n");
    say("noise: half a command, %u ERROR replies", errors_within(500u));

    at_restart();
    at_send("AT\r\n");
    enum at_status status = at_wait(2000u, 0, 0);
    say("noise: AT after all that: %s", status == AT_OK ? "OK" : status == AT_ERROR ? "ERROR" : "no answer");
    say("noise: done");
    for (;;)
        sleep_unless(never);
}
