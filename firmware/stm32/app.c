/* The device: reset the modem, join Wi-Fi, get the time, trust one CA,
 * then fetch one HTTPS page every 10 s, for ever, recovering from
 * whatever the modem or the network does. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include "at.h"
#include "atmodem_config.h"
#include "board.h"
#include "console.h"
#include "fmt.h"
#include "http.h"
#include "lib.h"
#include "systick.h"
#include "uart.h"

#define FETCH_EVERY_MS     10000u
#define JOIN_RETRY_MS       5000u
#define READY_WAIT_MS       3000u
#define COMMAND_MS          2000u
#define CWJAP_MS           20000u
#define SNTP_GIVE_UP_MS    30000u
#define SNTP_POLL_MS         500u
#define CERT_MS            10000u
#define CIPSTART_MS        15000u
#define PROMPT_MS           5000u
#define SEND_MS            10000u
#define CLOSED_MS          15000u
/* After the body is complete by Content-Length, how long the peer gets
 * to close before we close ourselves. */
#define LINGER_MS           2000u

/* Wi-Fi limits (SSID 32 bytes, WPA passphrase 64), and every command
 * line must stay within the modem's 200-byte line buffer. */
_Static_assert(sizeof(WIFI_SSID) - 1 <= 32, "WIFI_SSID longer than 32 bytes");
_Static_assert(sizeof(WIFI_PASS) - 1 <= 64, "WIFI_PASS longer than 64 bytes");
_Static_assert(sizeof(HTTPS_HOST) - 1 <= 150, "HTTPS_HOST too long for AT+CIPSTART");
_Static_assert(sizeof(SNTP_SERVER) - 1 <= 150, "SNTP_SERVER too long for AT+CIPSNTPCFG");
_Static_assert(sizeof(HTTPS_PATH) - 1 <= 200, "HTTPS_PATH too long");
_Static_assert(HTTPS_PORT > 0 && HTTPS_PORT <= 65535, "HTTPS_PORT out of range");

#define BROKEN(st) ((st) == AT_TIMEOUT || (st) == AT_REBOOT)

static bool wifi_joined;
static bool modem_rebooted;
static bool tls_ready;
static bool link_open;       /* the modem may still hold our connection */
static bool link_closed;     /* CLOSED seen since the last CIPSTART */

/* The HTTP response as +IPD delivers it; bytes past the end are counted
 * but dropped. */
static char resp[8192];
static size_t resp_len;
static uint32_t resp_total;

static char cmd[256];

void at_urc(enum at_urc urc, int arg)
{
    switch (urc) {
    case URC_READY:
        modem_rebooted = true;
        break;
    case URC_WIFI_DISCONNECT:
        /* Disconnects while joining belong to the join; only a loss of
         * an established link matters here. */
        if (wifi_joined) {
            wifi_joined = false;
            if (arg >= 0)
                say("wifi: lost (%d)", arg);
            else
                say("wifi: lost (?)");
        }
        break;
    case URC_CLOSED:
        link_closed = true;
        break;
    default:
        break;
    }
}

static void ipd_sink(uint8_t byte)
{
    if (resp_len < sizeof resp)
        resp[resp_len++] = (char)byte;
    resp_total++;
}

static enum at_status expect(const char *what, uint32_t timeout_ms, unsigned flags,
                             const char *capture)
{
    enum at_status st = at_wait(timeout_ms, flags, capture);

    if (st == AT_TIMEOUT)
        say("modem: timeout waiting for %s", what);
    else if (st == AT_REBOOT)
        say("modem: unexpected reset");
    return st;
}

/* Sends one formatted command line and waits for its final response. */
static enum at_status command(const char *what, uint32_t timeout_ms, unsigned flags,
                              const char *capture, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vfmt(cmd, sizeof cmd, f, ap);
    va_end(ap);
    at_send(cmd);
    return expect(what, timeout_ms, flags, capture);
}

/* Keeps reading the modem for `ms` so URCs are acted on while idle.
 * False if the modem rebooted on its own; with `stop_on_loss` it returns
 * early (true) as soon as Wi-Fi is lost. */
static bool pause_for(uint32_t ms, bool stop_on_loss)
{
    uint32_t deadline = millis() + ms;
    int urc;

    while (!modem_rebooted && !(stop_on_loss && !wifi_joined))
        if (!at_read_line(deadline, &urc))
            break;
    if (modem_rebooted) {
        say("modem: unexpected reset");
        return false;
    }
    return true;
}

static bool wait_line(const char *a, const char *b, uint32_t ms)
{
    uint32_t deadline = millis() + ms;
    const char *l;
    int urc;

    while ((l = at_read_line(deadline, &urc)) != NULL)
        if (!strcmp(l, a) || (b && !strcmp(l, b)))
            return true;
    return false;
}

/* Reads and ignores input for `ms`; URCs still reach at_urc(). */
static void drain(uint32_t ms)
{
    uint32_t deadline = millis() + ms;
    int urc;

    while (at_read_line(deadline, &urc))
        ;
}

static bool modem_reset(void)
{
    enum at_status st;
    bool up;
    int i;

    /* Whatever the modem knew is about to be gone. */
    wifi_joined = false;
    tls_ready = false;
    link_open = false;
    at_restart();
    at_send("AT+RST\r\n");
    up = wait_line("ready", NULL, READY_WAIT_MS);
    /* "ready" is lost when it comes before our UART is up, or the modem
     * ignored AT+RST because it was in a data mode. The '.' ends a stuck
     * certificate upload (an illegal PEM byte), fills a stuck AT+CIPSEND
     * a little more, and is a harmless bad line otherwise. */
    for (i = 0; !up && i < 10; i++) {
        at_send(i ? ".\r\nAT\r\n" : "AT\r\n");
        up = wait_line("OK", "ready", 1000u);
    }
    if (!up) {
        say("modem: timeout waiting for ready");
        return false;
    }
    /* Answers to earlier attempts may still be on their way; reading them
     * now keeps them from being taken as answers to what follows. */
    drain(300u);
    /* A fallback "AT" can be answered just before a late "ready"; the
     * modem has then only just booted, so ask once more. */
    for (i = 0; i < 2; i++) {
        modem_rebooted = false;
        at_send("ATE0\r\n");
        st = at_wait(COMMAND_MS, 0, NULL);
        if (st != AT_REBOOT)
            break;
    }
    modem_rebooted = false;
    if (st == AT_TIMEOUT)
        say("modem: timeout waiting for ATE0");
    else if (st == AT_REBOOT)
        say("modem: unexpected reset");
    if (st != AT_OK) {
        if (!BROKEN(st))
            say("modem: ATE0 refused");
        return false;
    }
    say("modem: ready");
    return true;
}

static int number_after(const char *s, char sep)
{
    int v = 0, digits = 0;

    while (*s && *s != sep)
        s++;
    if (*s)
        s++;
    for (; is_digit(*s) && digits < 6; s++, digits++)
        v = v * 10 + (*s - '0');
    return digits ? v : -1;
}

/* Joins until it works; false only when the modem stops answering. */
static bool wifi_join(void)
{
    for (;;) {
        enum at_status st = command("CWJAP", CWJAP_MS, 0, "+CWJAP:",
                                    "AT+CWJAP=%q,%q\r\n", WIFI_SSID, WIFI_PASS);
        if (BROKEN(st))
            return false;
        if (st == AT_OK) {
            /* Every URC of this join came before its OK, so from here on
             * a disconnect is a real loss. */
            wifi_joined = true;
            say("wifi: joined %s", WIFI_SSID);
            return true;
        }
        if (st == AT_FAIL && at_info()[0])
            say("wifi: join failed (%d)", number_after(at_info(), ':'));
        else
            say("wifi: join failed (ERROR)");
        if (!pause_for(JOIN_RETRY_MS, false))
            return false;
    }
}

static bool wifi_setup(void)
{
    enum at_status st = command("CWMODE", COMMAND_MS, 0, NULL, "AT+CWMODE=1\r\n");

    if (st != AT_OK) {
        if (!BROKEN(st))
            say("wifi: AT+CWMODE=1 refused");
        return false;
    }
    return wifi_join();
}

/* The asctime text if the clock is set, else NULL. */
static const char *sntp_time(const char *info)
{
    static const char prefix[] = "+CIPSNTPTIME:";
    const char *t;
    size_t n;

    if (!starts_with(info, prefix))
        return NULL;
    t = info + sizeof prefix - 1;
    n = strlen(t);
    if (n < 4 || !is_digit(t[n - 4]) || !is_digit(t[n - 1]) || !strcmp(t + n - 4, "1970"))
        return NULL;
    return t;
}

static bool sntp_sync(void)
{
    uint32_t give_up;
    enum at_status st;

    st = command("CIPSNTPCFG", COMMAND_MS, 0, NULL, "AT+CIPSNTPCFG=1,0,%q\r\n", SNTP_SERVER);
    if (BROKEN(st))
        return false;
    if (st != AT_OK) {
        /* Without time only certificate checks fail; go on regardless. */
        say("sntp: AT+CIPSNTPCFG refused");
        return true;
    }
    give_up = millis() + SNTP_GIVE_UP_MS;
    for (;;) {
        uint32_t next = millis() + SNTP_POLL_MS;
        const char *t;

        st = command("CIPSNTPTIME", COMMAND_MS, 0, "+CIPSNTPTIME:", "AT+CIPSNTPTIME?\r\n");
        if (BROKEN(st))
            return false;
        if (st == AT_OK && (t = sntp_time(at_info())) != NULL) {
            say("sntp: %S", t);
            return true;
        }
        if (expired(give_up)) {
            say("sntp: no time");
            return true;
        }
        if (!expired(next) && !pause_for(next - millis(), false))
            return false;
    }
}

static bool tls_setup(void)
{
    bool uploaded = false;
    enum at_status st;

    tls_ready = false;
    st = command("CIPSSLCERT", COMMAND_MS, AT_WANT_PROMPT, NULL, "AT+CIPSSLCERT\r\n");
    if (BROKEN(st))
        return false;
    if (st == AT_PROMPT) {
        /* The PEM goes out with LF line ends and no trailing newline:
         * the modem ends the upload on the END line itself, and a stray
         * newline afterwards would be parsed as an empty command. */
        at_send_bytes(ca_pem, sizeof ca_pem - 1);
        st = expect("certificate upload", CERT_MS, 0, NULL);
        if (BROKEN(st))
            return false;
        /* The certificate survives a soft reset of the modem. */
        uploaded = st == AT_OK || starts_with(at_info(), "Tried to load already existing");
        if (starts_with(at_info(), "Loading certificate failed")) {
            /* The modem stays in upload mode after this error; an illegal
             * PEM byte gets it out. */
            at_send(".");
            if (BROKEN(expect("certificate upload abort", COMMAND_MS, 0, NULL)))
                return false;
        }
    }
    if (!uploaded && at_info()[0])
        say("tls: modem said: %S", at_info());
    say(uploaded ? "tls: CA uploaded" : "tls: CA upload failed");

    st = command("CIPSSLAUTH", COMMAND_MS, 0, NULL, "AT+CIPSSLAUTH=2\r\n");
    if (BROKEN(st))
        return false;
    if (st == AT_OK) {
        tls_ready = true;
        say("tls: verify chain");
    } else {
        say("tls: AT+CIPSSLAUTH=2 refused (%S)", at_info());
    }
    return true;
}

static void print_body(const char *b, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i, e;
        while (j < n && b[j] != '\n')
            j++;
        e = j;
        if (e > i && b[e - 1] == '\r')
            e--;
        say("body: %.*S", (int)(e - i), b + i);
        i = j + 1;
    }
}

static void report(void)
{
    struct http_response r;
    size_t body_total;

    if (!http_parse(resp, resp_len, &r)) {
        say("https: no complete HTTP response (%u bytes)", (unsigned)resp_total);
        say("result: FAIL http");
        return;
    }
    say("status: %.*S", (int)r.status_len, r.status);
    print_body(r.body, r.body_len);
    body_total = r.body_len;
    if (resp_total > resp_len) {
        say("https: response cut to %u of %u bytes", (unsigned)resp_len, (unsigned)resp_total);
        if (!r.chunked) {
            body_total += resp_total - resp_len;
            if (r.content_length >= 0 && body_total > (size_t)r.content_length)
                body_total = (size_t)r.content_length;
        }
    }
    if (r.code >= 200 && r.code <= 299)
        say("result: OK %u bytes", (unsigned)body_total);
    else
        say("result: FAIL http %d", r.code);
}

static bool close_link(void)
{
    enum at_status st = command("CIPCLOSE", PROMPT_MS, 0, NULL, "AT+CIPCLOSE\r\n");

    link_open = false;
    return !BROKEN(st);
}

static size_t build_request(char *buf, size_t cap)
{
    if (HTTPS_PORT == 443)
        return fmt(buf, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                   HTTPS_PATH, HTTPS_HOST);
    return fmt(buf, cap, "GET %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n\r\n",
               HTTPS_PATH, HTTPS_HOST, (unsigned)HTTPS_PORT);
}

/* One GET. False only when the modem must be reset. */
/* A fast modem and a slow main loop lose bytes as they would on the bench: say so. */
static void report_lost_bytes(void)
{
    static uint32_t reported;
    uint32_t lost = modem_rx_dropped();

    if (lost != reported) {
        say("modem: %u bytes lost to a full receive ring or an overrun", (unsigned)(lost - reported));
        reported = lost;
    }
}

static bool https_fetch(void)
{
    char request[512];
    size_t n;
    uint32_t deadline;
    bool complete = false;
    enum at_status st;
    int attempt;

    if (!tls_ready && !tls_setup())
        return false;
    if (HTTPS_PORT == 443)
        say("https: GET https://%s%s", HTTPS_HOST, HTTPS_PATH);
    else
        say("https: GET https://%s:%u%s", HTTPS_HOST, (unsigned)HTTPS_PORT, HTTPS_PATH);
    if (!tls_ready) {
        say("https: no trusted CA, not connecting unverified");
        say("result: FAIL tls");
        return true;
    }
    if (link_open && !close_link())
        return false;

    for (attempt = 0;; attempt++) {
        resp_len = 0;
        resp_total = 0;
        st = command("CIPSTART", CIPSTART_MS, 0, NULL, "AT+CIPSTART=\"SSL\",%q,%u\r\n",
                     HTTPS_HOST, (unsigned)HTTPS_PORT);
        if (BROKEN(st))
            return false;
        /* A link we lost track of (e.g. its CLOSED never came). */
        if (st == AT_ERROR && attempt == 0 && !strcmp(at_info(), "ALREADY CONNECTED")) {
            if (!close_link())
                return false;
            continue;
        }
        break;
    }
    if (st != AT_OK) {
        say("https: connect failed");
        say("result: FAIL tls");
        return true;
    }
    /* Any CLOSED of an earlier link was read before this OK. */
    link_open = true;
    link_closed = false;

    n = build_request(request, sizeof request);
    st = command("CIPSEND prompt", PROMPT_MS, AT_WANT_PROMPT, NULL, "AT+CIPSEND=%u\r\n",
                 (unsigned)n);
    if (BROKEN(st))
        return false;
    if (st == AT_PROMPT) {
        at_send_bytes(request, n);
        st = expect("SEND OK", SEND_MS, 0, NULL);
        if (BROKEN(st))
            return false;
    }
    if (st != AT_OK) {
        say("https: send failed");
        say("result: FAIL send");
        if (link_closed) {
            link_open = false;
            return true;
        }
        return close_link();
    }

    deadline = millis() + CLOSED_MS;
    while (!link_closed && !modem_rebooted && !expired(deadline)) {
        uint32_t step = millis() + 100u;
        int urc;
        (void)at_read_line((int32_t)(step - deadline) < 0 ? step : deadline, &urc);
        if (!complete && http_complete(resp, resp_len)) {
            complete = true;
            if ((int32_t)(deadline - (millis() + LINGER_MS)) > 0)
                deadline = millis() + LINGER_MS;
        }
    }
    if (modem_rebooted) {
        say("modem: unexpected reset");
        return false;
    }
    if (link_closed)
        link_open = false;
    else if (!close_link())
        return false;
    report();
    report_lost_bytes();
    return true;
}

int main(void)
{
    board_init();
    console_start();
    systick_start(board.core_hz);
    at_init(ipd_sink);
    say("atmodem-https %s: start", board.name);

    for (;;) {
        if (!modem_reset() || !wifi_setup() || !sntp_sync() || !tls_setup()) {
            /* Already reported; a breather keeps a dead modem from
             * being hammered. */
            modem_rebooted = false;
            (void)pause_for(1000u, false);
            continue;
        }
        for (;;) {
            if (!wifi_joined && !wifi_join())
                break;
            if (!https_fetch())
                break;
            if (!pause_for(FETCH_EVERY_MS, true))
                break;
        }
    }
}
