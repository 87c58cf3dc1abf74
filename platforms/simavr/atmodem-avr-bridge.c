/*
 * atmodem-avr-bridge: run an AVR firmware in simavr and wire one of its UARTs
 * to the atmodem model over TCP, another one to stdout.
 *
 * Design notes (the why; see also README.md next to this file):
 *  - Single-threaded on purpose. simavr is not thread-safe, and a second
 *    thread feeding the UART would need locks around every avr_run().
 *    Instead the CPU runs in short slices of AVR time and all socket work
 *    happens between slices.
 *  - Bytes enter the UART through its INPUT IRQ only, so simavr's own
 *    baud-rate pacing (one RXC per byte time) and 64-byte FIFO stay in
 *    charge. We stop feeding on XOFF (FIFO full) and resume on XON, so
 *    nothing is lost in the emulated hardware; the sketch's own RX ring can
 *    still overflow, exactly as on a real board.
 *  - simavr only syncs to wall time while the AVR sleeps, and Arduino
 *    sketches never sleep. Left alone, it runs several times faster than
 *    real time and every millis()-based timeout in the sketch expires
 *    before the modem (which runs on wall time) can answer. So we throttle
 *    to the wall clock ourselves, waiting in ppoll() on the socket so data
 *    that arrives meanwhile is still picked up at once.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_io.h>
#include <sim_irq.h>
#include <avr_uart.h>

#define PROG "avr-bridge"

/* 0.5 ms of AVR time: well below one byte time at 115200 Bd (~95 us x 64
 * FIFO entries = 6 ms), so the UART FIFO never runs dry between slices,
 * yet long enough that the per-slice syscalls stay cheap. */
#define SLICE_NS 500000ULL
/* Beyond this lag behind the wall clock we stop trying to catch up: a burst
 * of catch-up execution would compress the sketch's timeouts instead. */
#define MAX_LAG_NS 100000000ULL
#define RETRY_NS 200000000ULL
#define CONNECT_TIMEOUT_NS 2000000000ULL

#define RX_CAP 4096   /* socket -> AVR, a few FIFO refills */
#define TX_CAP 65536  /* AVR -> socket; at 11 kB/s that is seconds of backlog */
#define CON_CAP 4096

enum { EXIT_OK = 0, EXIT_CRASH = 1, EXIT_USAGE = 2 };

struct endpoint {
	int listen_mode;          /* 1: -l, 0: -C */
	char text[300];           /* as given, for messages */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

static struct {
	avr_t *avr;
	avr_irq_t *link_in;
	int xon;                  /* the UART FIFO has room */
	int feeding;

	uint8_t rx[RX_CAP];       /* ring: bytes from the modem not yet in the UART */
	size_t rx_head, rx_len;
	uint8_t tx[TX_CAP];       /* bytes for the modem not yet sent */
	size_t tx_len;
	uint8_t con[CON_CAP];
	size_t con_len;

	struct endpoint ep;
	int listen_fd;
	int peer_fd;              /* connected peer, or -1 */
	int connecting_fd;        /* -C: non-blocking connect in flight */
	uint64_t connect_started_ns;
	uint64_t next_attempt_ns;
	int waiting_reported;     /* say "waiting for the modem" only once per outage */
	uint64_t dropped;         /* link output while no peer was there */

	int verbose;
	uint64_t bytes_in, bytes_out;
} B = { .listen_fd = -1, .peer_fd = -1, .connecting_fd = -1 };

static volatile sig_atomic_t stop_signal;

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One write per message so lines from a parallel reader never interleave. */
	dprintf(STDERR_FILENO, PROG ": %s\n", line);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t cycles_to_ns(uint64_t cycles, uint32_t hz)
{
	/* Split so that hours of AVR time at 16 MHz cannot overflow 64 bits. */
	return cycles / hz * 1000000000ULL + (cycles % hz) * 1000000000ULL / hz;
}

/* --- simavr hooks ------------------------------------------------------ */

/* simavr's default logger writes to stdout, which is the sketch console
 * here; route everything to stderr and keep only what the user asked for. */
static void bridge_logger(avr_t *avr, const int level, const char *fmt, va_list ap)
{
	(void)avr;
	if (level > LOG_WARNING + B.verbose)
		return;
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	if (n)
		dprintf(STDERR_FILENO, PROG ": simavr: %s\n", line);
}

/* The CPU sleeping must not block us: our own loop does the waiting, with
 * the socket in the poll set. */
static void bridge_sleep(avr_t *avr, avr_cycle_count_t how_long)
{
	(void)avr;
	(void)how_long;
}

static void feed_link(void)
{
	if (B.feeding)
		return;
	B.feeding = 1;
	/* Each byte may fill the FIFO, which raises XOFF synchronously and
	 * clears B.xon, so this stops exactly at "full". */
	while (B.xon && B.rx_len) {
		uint8_t b = B.rx[B.rx_head];
		B.rx_head = (B.rx_head + 1) % RX_CAP;
		B.rx_len--;
		B.bytes_in++;
		avr_raise_irq(B.link_in, b);
	}
	B.feeding = 0;
}

static void on_link_xon(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	if (!value)
		return;
	B.xon = 1;
	/* Refill right away rather than at the slice end: the FIFO drained,
	 * and waiting up to a slice would leave gaps that a real line at full
	 * speed would not have. */
	feed_link();
}

static void on_link_xoff(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	if (value)
		B.xon = 0;
}

static void on_link_output(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	/* Like a serial line with nothing plugged in: output without a peer is lost. */
	if (B.peer_fd < 0) {
		B.dropped++;
		return;
	}
	if (B.tx_len == TX_CAP) {
		B.dropped++;
		return;
	}
	B.tx[B.tx_len++] = (uint8_t)value;
}

static void flush_console(void)
{
	size_t off = 0;
	while (off < B.con_len) {
		ssize_t n = write(STDOUT_FILENO, B.con + off, B.con_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* reader gone: the run itself goes on */
		off += (size_t)n;
	}
	B.con_len = 0;
}

static void on_console_output(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	(void)param;
	if (B.con_len == CON_CAP)
		flush_console();
	B.con[B.con_len++] = (uint8_t)value;
}

/* --- sockets ----------------------------------------------------------- */

static int parse_endpoint(const char *text, int listen_mode, struct endpoint *ep)
{
	char host[256];
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text || !colon[1] || (size_t)(colon - text) >= sizeof host)
		return -1;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = 0;
	/* Accept [::1]:5555 as well as 127.0.0.1:5555. */
	char *h = host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 || (!listen_mode && port == 0))
		return -1;

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_NUMERICSERV | (listen_mode ? AI_PASSIVE : 0) };
	struct addrinfo *res;
	int rc = getaddrinfo(h, colon + 1, &hints, &res);
	if (rc) {
		msg("cannot resolve %s: %s", h, gai_strerror(rc));
		return -1;
	}
	memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
	ep->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	ep->listen_mode = listen_mode;
	snprintf(ep->text, sizeof ep->text, "%s", text);
	return 0;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void peer_up(int fd)
{
	int one = 1;
	/* The sketch writes commands a few bytes per slice; Nagle would hold
	 * each fragment back for a delayed ACK and add ~40 ms per command. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	set_nonblock(fd);
	B.peer_fd = fd;
	B.waiting_reported = 0;
	/* Worth knowing: a sketch that spoke first has lost those bytes. */
	if (B.dropped)
		msg("%llu byte(s) from the AVR were dropped while no modem was attached",
		    (unsigned long long)B.dropped);
	B.dropped = 0;
}

static void peer_down(const char *why)
{
	close(B.peer_fd);
	B.peer_fd = -1;
	/* Whatever the old peer had not taken yet belongs to that session. */
	B.tx_len = 0;
	msg("modem link %s", why);
	B.next_attempt_ns = now_ns(); /* reconnect at once, then every RETRY_NS */
}

static int open_listener(void)
{
	int fd = socket(B.ep.addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&B.ep.addr, B.ep.addrlen) < 0 || listen(fd, 1) < 0) {
		msg("cannot listen on %s: %s", B.ep.text, strerror(errno));
		close(fd);
		return -1;
	}
	set_nonblock(fd);
	char host[128], port[16];
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	getnameinfo((struct sockaddr *)&sa, sl, host, sizeof host, port, sizeof port,
	            NI_NUMERICHOST | NI_NUMERICSERV);
	/* Port 0 picks a free port; the launcher learns it from this line. */
	msg("listening on %s:%s", host, port);
	B.listen_fd = fd;
	return 0;
}

static void try_connect(uint64_t now)
{
	/* A SYN into the void would otherwise pin us to one attempt for
	 * minutes; give up on it and start over. */
	if (B.connecting_fd >= 0 && now - B.connect_started_ns > CONNECT_TIMEOUT_NS) {
		close(B.connecting_fd);
		B.connecting_fd = -1;
	}
	if (B.connecting_fd >= 0 || now < B.next_attempt_ns)
		return;
	B.next_attempt_ns = now + RETRY_NS;
	int fd = socket(B.ep.addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return;
	set_nonblock(fd);
	if (connect(fd, (struct sockaddr *)&B.ep.addr, B.ep.addrlen) == 0) {
		peer_up(fd);
		msg("connected to %s", B.ep.text);
		return;
	}
	if (errno == EINPROGRESS) {
		B.connecting_fd = fd;
		B.connect_started_ns = now;
		return;
	}
	close(fd);
	if (!B.waiting_reported) {
		msg("waiting for the modem at %s (%s), retrying every 200 ms", B.ep.text, strerror(errno));
		B.waiting_reported = 1;
	}
}

static void finish_connect(void)
{
	int err = 0;
	socklen_t len = sizeof err;
	getsockopt(B.connecting_fd, SOL_SOCKET, SO_ERROR, &err, &len);
	int fd = B.connecting_fd;
	B.connecting_fd = -1;
	if (err) {
		close(fd);
		if (!B.waiting_reported) {
			msg("waiting for the modem at %s (%s), retrying every 200 ms", B.ep.text, strerror(err));
			B.waiting_reported = 1;
		}
		return;
	}
	peer_up(fd);
	msg("connected to %s", B.ep.text);
}

static void accept_peer(void)
{
	struct sockaddr_storage sa;
	socklen_t sl = sizeof sa;
	int fd = accept(B.listen_fd, (struct sockaddr *)&sa, &sl);
	if (fd < 0)
		return;
	char host[128], port[16];
	getnameinfo((struct sockaddr *)&sa, sl, host, sizeof host, port, sizeof port,
	            NI_NUMERICHOST | NI_NUMERICSERV);
	peer_up(fd);
	msg("modem connected from %s:%s", host, port);
}

/* Non-blocking: move whatever the kernel has, in both directions. */
static void service_io(const struct pollfd *pfd, int npfd)
{
	for (int i = 0; i < npfd; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == B.connecting_fd && B.connecting_fd >= 0)
			finish_connect();
		else if (pfd[i].fd == B.listen_fd && B.peer_fd < 0)
			accept_peer();
	}

	if (B.peer_fd < 0) {
		if (!B.ep.listen_mode)
			try_connect(now_ns());
		return;
	}

	/* Read only into free space, so a flood from the modem is held back by
	 * TCP rather than dropped here. */
	while (B.rx_len < RX_CAP) {
		size_t tail = (B.rx_head + B.rx_len) % RX_CAP;
		size_t room = tail >= B.rx_head ? RX_CAP - tail : B.rx_head - tail;
		if (room > RX_CAP - B.rx_len)
			room = RX_CAP - B.rx_len;
		ssize_t n = recv(B.peer_fd, B.rx + tail, room, 0);
		if (n > 0) {
			B.rx_len += (size_t)n;
			continue;
		}
		if (n == 0) {
			peer_down("closed by peer");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		peer_down(strerror(errno));
		return;
	}

	size_t off = 0;
	while (off < B.tx_len) {
		ssize_t n = send(B.peer_fd, B.tx + off, B.tx_len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			B.bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		peer_down(n < 0 ? strerror(errno) : "closed");
		return;
	}
	if (off) {
		memmove(B.tx, B.tx + off, B.tx_len - off);
		B.tx_len -= off;
	}
}

static int build_pollset(struct pollfd *pfd)
{
	int n = 0;
	if (B.peer_fd >= 0) {
		short ev = 0;
		if (B.rx_len < RX_CAP)
			ev |= POLLIN;
		if (B.tx_len)
			ev |= POLLOUT;
		pfd[n++] = (struct pollfd){ .fd = B.peer_fd, .events = ev };
	} else if (B.connecting_fd >= 0) {
		pfd[n++] = (struct pollfd){ .fd = B.connecting_fd, .events = POLLOUT };
	} else if (B.listen_fd >= 0) {
		pfd[n++] = (struct pollfd){ .fd = B.listen_fd, .events = POLLIN };
	}
	return n;
}

/* --- main -------------------------------------------------------------- */

static void on_signal(int sig)
{
	stop_signal = sig;
}

static const char *state_name(int state)
{
	switch (state) {
	case cpu_Limbo: return "cpu_Limbo";
	case cpu_Stopped: return "cpu_Stopped";
	case cpu_Running: return "cpu_Running";
	case cpu_Sleeping: return "cpu_Sleeping";
	case cpu_Step: return "cpu_Step";
	case cpu_StepDone: return "cpu_StepDone";
	case cpu_Done: return "cpu_Done (sleeping with interrupts off)";
	case cpu_Crashed: return "cpu_Crashed";
	default: return "unknown";
	}
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: atmodem-avr-bridge -m MCU [-f HZ] [-u N] [-c N] (-C HOST:PORT | -l HOST:PORT)\n"
	        "                          [-t SECONDS] [-s 0|1] [-v] FIRMWARE.elf\n"
	        "  -m MCU         simavr core name (atmega2560, atmega328p, ...); default: from the ELF\n"
	        "  -f HZ          CPU clock (default 16000000)\n"
	        "  -u N           UART wired to the modem (default: 1 if the MCU has it, else 0)\n"
	        "  -c N           UART copied to stdout, -1 for none (default: 0 unless -u 0, then -1)\n"
	        "  -C HOST:PORT   connect to the modem; retry every 200 ms, reconnect when it goes away\n"
	        "  -l HOST:PORT   listen for the modem, one peer at a time (port 0: any free port)\n"
	        "  -t SECONDS     stop after this much AVR time (default 0: run until signalled)\n"
	        "  -s 0|1         keep AVR time in step with the wall clock (default 1)\n"
	        "  -v             more simavr log on stderr (repeat for more)\n"
	        "exit status: 0 signal or time limit, 1 the AVR crashed or stopped, 2 usage or setup error\n");
}

static int uart_exists(avr_t *avr, int n)
{
	return avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0' + n), UART_IRQ_OUTPUT) != NULL;
}

int main(int argc, char **argv)
{
	const char *mcu = NULL;
	unsigned long hz = 16000000;
	int link = -2, console = -2; /* -2: not given */
	const char *ep_text = NULL;
	int listen_mode = 0;
	double limit_s = 0;
	int throttle = 1;
	int opt;
	char *end;

	while ((opt = getopt(argc, argv, "m:f:u:c:C:l:t:s:vh")) != -1) {
		switch (opt) {
		case 'm': mcu = optarg; break;
		case 'f':
			hz = strtoul(optarg, &end, 10);
			if (*end || hz < 1000 || hz > 100000000) {
				msg("bad clock: %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'u':
		case 'c': {
			long v = strtol(optarg, &end, 10);
			if (*end || v < (opt == 'c' ? -1 : 0) || v > 3) {
				msg("bad UART number for -%c: %s", opt, optarg);
				return EXIT_USAGE;
			}
			if (opt == 'u')
				link = (int)v;
			else
				console = (int)v;
			break;
		}
		case 'C':
		case 'l':
			if (ep_text) {
				msg("give only one of -C and -l");
				return EXIT_USAGE;
			}
			ep_text = optarg;
			listen_mode = opt == 'l';
			break;
		case 't':
			limit_s = strtod(optarg, &end);
			/* a bound keeps limit_s * hz inside a uint64_t */
			if (*end || !(limit_s >= 0 && limit_s <= 1e7)) {
				msg("bad time limit: %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (strcmp(optarg, "0") && strcmp(optarg, "1")) {
				msg("-s takes 0 or 1");
				return EXIT_USAGE;
			}
			throttle = optarg[0] == '1';
			break;
		case 'v': B.verbose++; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || !ep_text) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *elf_path = argv[optind];
	if (parse_endpoint(ep_text, listen_mode, &B.ep) < 0) {
		msg("bad address for -%c: %s (want HOST:PORT)", listen_mode ? 'l' : 'C', ep_text);
		return EXIT_USAGE;
	}

	avr_global_logger_set(bridge_logger);

	/* elf_read_firmware reports a missing file only vaguely; check first. */
	struct stat st;
	if (stat(elf_path, &st) < 0 || access(elf_path, R_OK) < 0) {
		msg("cannot read firmware %s: %s", elf_path, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISREG(st.st_mode)) {
		msg("cannot read firmware %s: not a regular file", elf_path);
		return EXIT_USAGE;
	}
	/* libelf's complaint about a non-ELF file is cryptic ("Success"), and
	 * libsimavr crashes on an ELF for another CPU; check the header first. */
	unsigned char hdr[20] = { 0 };
	FILE *f = fopen(elf_path, "rb");
	size_t got = f ? fread(hdr, 1, sizeof hdr, f) : 0;
	if (f)
		fclose(f);
	if (got != sizeof hdr || memcmp(hdr, "\177ELF", 4)) {
		msg("cannot load firmware %s: not an ELF file", elf_path);
		return EXIT_USAGE;
	}
	/* 32-bit little-endian, e_machine EM_AVR (83): what avr-gcc writes. */
	if (hdr[4] != 1 || hdr[5] != 1 || hdr[18] != 83 || hdr[19] != 0) {
		msg("cannot load firmware %s: not an AVR ELF file", elf_path);
		return EXIT_USAGE;
	}
	static elf_firmware_t fw;
	if (elf_read_firmware(elf_path, &fw) < 0 || fw.flashsize == 0) {
		msg("cannot load firmware %s: not an AVR ELF file", elf_path);
		return EXIT_USAGE;
	}
	/* Arduino ELFs carry no .mmcu section, so -m is normally needed. */
	if (!mcu) {
		if (!fw.mmcu[0]) {
			msg("%s does not name its MCU; give -m (atmega2560, atmega328p, ...)", elf_path);
			return EXIT_USAGE;
		}
		mcu = fw.mmcu;
	}
	snprintf(fw.mmcu, sizeof fw.mmcu, "%s", mcu);
	fw.frequency = (uint32_t)hz;

	avr_t *avr = avr_make_mcu_by_name(mcu);
	if (!avr) {
		msg("unknown MCU '%s' (see simavr --list-cores)", mcu);
		return EXIT_USAGE;
	}
	B.avr = avr;
	avr_init(avr);
	avr->log = LOG_WARNING + B.verbose > LOG_DEBUG ? LOG_DEBUG : LOG_WARNING + B.verbose;
	avr_load_firmware(avr, &fw);
	avr->frequency = (uint32_t)hz;
	avr->sleep = bridge_sleep;

	if (link == -2)
		link = uart_exists(avr, 1) ? 1 : 0;
	if (console == -2)
		console = link == 0 ? -1 : 0;
	if (link == console) {
		msg("the modem link and the console cannot share UART%d", link);
		return EXIT_USAGE;
	}
	if (!uart_exists(avr, link)) {
		msg("%s has no UART%d", mcu, link);
		return EXIT_USAGE;
	}
	if (console >= 0 && !uart_exists(avr, console)) {
		msg("%s has no UART%d", mcu, console);
		return EXIT_USAGE;
	}

	/* The UART model would otherwise echo output lines to stdout in colour
	 * and usleep() whenever the firmware polls its status register; both
	 * get in the way of a clean console and of our own pacing. */
	for (int n = 0; n < 4; n++) {
		uint32_t flags;
		if (avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0' + n), &flags) == 0) {
			flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
			avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0' + n), &flags);
		}
	}

	uint32_t lctl = AVR_IOCTL_UART_GETIRQ('0' + link);
	B.link_in = avr_io_getirq(avr, lctl, UART_IRQ_INPUT);
	avr_irq_register_notify(avr_io_getirq(avr, lctl, UART_IRQ_OUTPUT), on_link_output, NULL);
	avr_irq_register_notify(avr_io_getirq(avr, lctl, UART_IRQ_OUT_XON), on_link_xon, NULL);
	avr_irq_register_notify(avr_io_getirq(avr, lctl, UART_IRQ_OUT_XOFF), on_link_xoff, NULL);
	/* Until the firmware enables its receiver the UART drops input, so
	 * start in XOFF and let the UART's first XON open the gate. */
	B.xon = 0;
	if (console >= 0)
		avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0' + console), UART_IRQ_OUTPUT),
		                        on_console_output, NULL);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (listen_mode) {
		if (open_listener() < 0)
			return EXIT_USAGE;
	} else {
		B.next_attempt_ns = 0;
		try_connect(now_ns());
		/* Let the first attempt finish before the CPU starts: a sketch that
		 * talks at once would otherwise lose its first bytes to a connect
		 * that was about to succeed. Later attempts run alongside the CPU. */
		if (B.connecting_fd >= 0) {
			struct pollfd p = { .fd = B.connecting_fd, .events = POLLOUT };
			struct timespec first_wait = { 1, 0 };
			if (ppoll(&p, 1, &first_wait, NULL) > 0)
				finish_connect();
		}
	}

	if (B.verbose) {
		char con_text[16] = "none";
		if (console >= 0)
			snprintf(con_text, sizeof con_text, "UART%d", console);
		msg("%s at %lu Hz, modem on UART%d, console %s, %s", mcu, hz, link, con_text,
		    throttle ? "real time" : "unthrottled");
	}

	/* At least one cycle, or a slow clock would never advance. */
	uint64_t slice_cycles = (uint64_t)hz * SLICE_NS / 1000000000ULL;
	if (slice_cycles == 0)
		slice_cycles = 1;
	const uint64_t limit_cycles = (uint64_t)(limit_s * (double)hz);
	uint64_t wall_base = now_ns();
	uint64_t cycle_base = avr->cycle;
	int rc = EXIT_OK;
	int state = cpu_Running;

	for (;;) {
		uint64_t target = avr->cycle + slice_cycles;
		if (limit_cycles && target > limit_cycles)
			target = limit_cycles;
		while (avr->cycle < target) {
			state = avr_run(avr);
			if (state == cpu_Done || state == cpu_Crashed || state == cpu_Stopped)
				break;
		}
		flush_console();

		if (state == cpu_Done || state == cpu_Crashed || state == cpu_Stopped) {
			msg("AVR stopped: %s at pc=0x%05x after %.6f s AVR time", state_name(state),
			    (unsigned)avr->pc, (double)cycles_to_ns(avr->cycle, avr->frequency) / 1e9);
			rc = EXIT_CRASH;
			break;
		}
		if (stop_signal) {
			msg("stopped by %s", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
			break;
		}
		if (limit_cycles && avr->cycle >= limit_cycles) {
			msg("time limit reached (%.3f s AVR time)", limit_s);
			break;
		}

		struct pollfd pfd[2];
		int npfd = build_pollset(pfd);
		struct timespec zero = { 0, 0 };
		if (ppoll(pfd, (nfds_t)npfd, &zero, NULL) > 0)
			service_io(pfd, npfd);
		else
			service_io(pfd, 0);
		feed_link();

		if (!throttle)
			continue;
		/* Wait until the wall clock has caught up with AVR time, but wake
		 * for socket traffic so replies reach the UART without delay. */
		for (;;) {
			uint64_t sim = cycles_to_ns(avr->cycle - cycle_base, avr->frequency);
			uint64_t wall = now_ns() - wall_base;
			if (wall > sim + MAX_LAG_NS) {
				/* The host could not keep up (or we were stopped); slip
				 * rather than race to catch up. */
				wall_base += wall - sim;
				break;
			}
			if (sim <= wall || stop_signal)
				break;
			uint64_t wait = sim - wall;
			struct timespec ts = { (time_t)(wait / 1000000000ULL), (long)(wait % 1000000000ULL) };
			npfd = build_pollset(pfd);
			int n = ppoll(pfd, (nfds_t)npfd, &ts, NULL);
			if (n > 0) {
				service_io(pfd, npfd);
				feed_link();
			}
		}
	}

	flush_console();
	if (B.verbose)
		msg("%llu byte(s) to the AVR, %llu byte(s) to the modem",
		    (unsigned long long)B.bytes_in, (unsigned long long)B.bytes_out);
	if (B.peer_fd >= 0)
		close(B.peer_fd);
	if (B.connecting_fd >= 0)
		close(B.connecting_fd);
	if (B.listen_fd >= 0)
		close(B.listen_fd);
	avr_terminate(avr);
	return rc;
}
