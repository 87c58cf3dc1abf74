// WebClient: a small hand-written AT client for an ESP8266 running ESP_ATMod
// (AT 1.7 dialect), used as the host firmware in atmodem's emulator runs.
//
// It joins the lab network, fetches http://www.atmodem.test/ over plain TCP,
// prints what it got, then POSTs a one-line summary to /report. The report is
// how a board without a console (the Uno, whose only UART is the modem) shows
// what it received. Then it repeats every 10 s.
//
// Plain Arduino core only. Protocol details follow the project's
// ESP_ATMod spec: passive receive (+IPD,<total unread>, AT+CIPRECVDATA), the
// "OK\r\n> " send prompt and the CLOSED notice that only comes once all data
// was read.

#define WIFI_SSID "atmodem-lab"
#define WIFI_PASS "atmodem-pass"
#define HTTP_HOST "www.atmodem.test"
#define HTTP_PORT 80
#define REPEAT_MS 10000UL

#if defined(HAVE_HWSERIAL1)
// Mega and friends: a spare hardware port for the modem keeps the USB one
// free for humans.
#define MODEM Serial1
#define CONSOLE Serial
#else
// Uno: one UART, and the modem needs it. There is no console; the report
// POST is the only way results leave the board.
#define MODEM Serial
#endif

#if defined(ARDUINO_AVR_MEGA2560)
#define BOARD_NAME "mega2560"
#elif defined(ARDUINO_AVR_UNO)
#define BOARD_NAME "uno"
#elif defined(__AVR_ATmega2560__)
#define BOARD_NAME "mega2560"
#elif defined(__AVR_ATmega328P__)
#define BOARD_NAME "uno"
#else
#define BOARD_NAME "unknown"
#endif

// Sizes are bounded everywhere: the Uno has 2 KB of RAM in total.
#define LINE_CAP 64      // one line from the modem; longer ones are junk to us
#define STATUS_CAP 40    // "HTTP/1.1 200 OK" and some slack
#define FIRST_CAP 41     // first body line, as reported (40 chars)
#define SHOW_CAP 72      // body line shown on the console

// What a line from the modem turned out to be.
enum Result {
  R_NONE,      // nothing complete yet, or a line we do not care about
  R_OK,
  R_ERROR,
  R_FAIL,
  R_SEND_OK,
  R_SEND_FAIL,
  R_PROMPT,    // the "> " of AT+CIPSEND
  R_DATA,      // "+CIPRECVDATA,<k>:", k raw bytes follow
  R_READY,
  R_TIMEOUT
};

enum HttpPart { H_STATUS, H_HEADERS, H_BODY };

// Incremental HTTP response reader: bytes come 32 at a time from
// AT+CIPRECVDATA, so nothing here may assume a whole line is at hand.
struct Http {
  uint8_t part;
  bool show;                  // print status/body lines (the GET, not the report)
  uint16_t status;
  uint32_t bodyLen;
  char statusLine[STATUS_CAP];
  uint8_t statusLen;
  uint8_t headerLen;          // length of the current header line; 0 at its end means "body next"
  char first[FIRST_CAP];
  uint8_t firstLen;
  bool firstDone;
  char shown[SHOW_CAP];
  uint8_t showLen;
};

// --- modem line reader state ---------------------------------------------
static char line[LINE_CAP];
static uint8_t lineLen;
static bool skipSpace;        // the blank after the '>' prompt
static uint16_t dataLen;      // k of the last "+CIPRECVDATA,<k>:"
static int cwjapCode;         // n of the last "+CWJAP:<n>"
static char info[24];         // last unclassified line, to explain failures

// --- what the modem told us on its own --------------------------------------
static bool modemReady;
static bool wifiJoined;
static bool modemRebooted;    // "ready" outside AT+RST: the modem restarted
static uint16_t ipdAvail;     // unread bytes on the link, per the last +IPD
static bool linkClosed;

static unsigned long lastRun;
static bool ranOnce;

// --- console ------------------------------------------------------------------
// Console text is queued and written only while the modem is quiet (before a
// command, or idle): a blocking print while a +CIPRECVDATA reply streams in
// could let the modem overrun the 64-byte RX ring.
#ifdef CONSOLE
static char conQ[256];
static uint16_t conLen;

static void conFlush() {
  if (conLen) CONSOLE.write((const uint8_t *)conQ, conLen);
  conLen = 0;
}
static void conPut(char c) {
  if (conLen == sizeof conQ) conFlush();
  conQ[conLen++] = c;
}
static void conStr(const char *s) {
  while (*s) conPut(*s++);
}
static void conStrP(const __FlashStringHelper *s) {
  PGM_P p = (PGM_P)s;
  char c;
  while ((c = pgm_read_byte(p++))) conPut(c);
}
static void conNum(unsigned long n) {
  char b[11];
  ultoa(n, b, 10);
  conStr(b);
}
static void conEnd() {
  conPut('\r');
  conPut('\n');
}
#else
static inline void conFlush() {}
static inline void conStr(const char *) {}
static inline void conStrP(const __FlashStringHelper *) {}
static inline void conNum(unsigned long) {}
static inline void conEnd() {}
#endif

// --- small helpers -------------------------------------------------------------
static bool startsWith(const char *s, const __FlashStringHelper *prefix) {
  return strncmp_P(s, (PGM_P)prefix, strlen_P((PGM_P)prefix)) == 0;
}

static bool equalsP(const char *s, const __FlashStringHelper *text) {
  return strcmp_P(s, (PGM_P)text) == 0;
}

static unsigned long parseNum(const char *s) {
  unsigned long n = 0;
  while (*s >= '0' && *s <= '9') n = n * 10 + (*s++ - '0');
  return n;
}

static uint8_t digits(unsigned long n) {
  uint8_t d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

// --- reading the modem ---------------------------------------------------------

// Collects one line without blocking. True when `line` holds a complete one.
// Two things end a "line" early: the send prompt '>' (no newline follows it)
// and the colon of "+CIPRECVDATA,<k>:" (raw data follows it).
static bool pollLine() {
  while (MODEM.available()) {
    char c = MODEM.read();
    if (c == '\n') {
      line[lineLen] = 0;
      lineLen = 0;
      return true;
    }
    if (c == '\r') continue;
    if (lineLen == 0 && c == ' ' && skipSpace) {
      skipSpace = false;
      continue;
    }
    skipSpace = false;
    if (lineLen == 0 && c == '>') {
      line[0] = '>';
      line[1] = 0;
      skipSpace = true;
      return true;
    }
    if (lineLen < LINE_CAP - 1) line[lineLen++] = c;
    if (c == ':' && lineLen > 13 && strncmp_P(line, PSTR("+CIPRECVDATA,"), 13) == 0) {
      line[lineLen] = 0;
      lineLen = 0;
      return true;
    }
  }
  return false;
}

// Sorts a complete line; notices (URCs) update the state above and are never
// returned as results, so any wait can meet them without losing them.
static Result classify() {
  if (line[0] == 0) return R_NONE;
  if (equalsP(line, F("OK"))) return R_OK;
  if (equalsP(line, F("ERROR"))) return R_ERROR;
  if (equalsP(line, F("FAIL"))) return R_FAIL;
  if (equalsP(line, F("SEND OK"))) return R_SEND_OK;
  if (equalsP(line, F("SEND FAIL"))) return R_SEND_FAIL;
  if (equalsP(line, F(">"))) return R_PROMPT;
  if (equalsP(line, F("ready"))) {
    modemRebooted = true;
    return R_READY;
  }
  if (startsWith(line, F("+CIPRECVDATA,"))) {
    dataLen = parseNum(line + 13);
    return R_DATA;
  }
  if (startsWith(line, F("+IPD,"))) {
    // Passive mode: the total still unread, not an increment.
    ipdAvail = parseNum(line + 5);
    return R_NONE;
  }
  if (equalsP(line, F("CLOSED"))) {
    linkClosed = true;
    return R_NONE;
  }
  if (startsWith(line, F("WIFI DISCONNECT"))) {
    // During a join this is just part of the attempt; only a loss of a
    // network we were on is news.
    if (wifiJoined) {
      const char *r = strchr(line, '(');
      conStrP(F("wifi: lost ("));
      if (r) {
        r++;
        while (*r && *r != ')') {
          char one[2] = {*r++, 0};
          conStr(one);
        }
      } else {
        conStrP(F("?"));
      }
      conStrP(F(")"));
      conEnd();
    }
    wifiJoined = false;
    return R_NONE;
  }
  if (startsWith(line, F("+CWJAP:"))) {
    cwjapCode = (int)parseNum(line + 7);
    return R_NONE;
  }
  if (startsWith(line, F("WIFI ")) || startsWith(line, F("busy"))) return R_NONE;
  // Anything else (echo, "CONNECT", "Recv n bytes", garbage after a reset)
  // is kept only as a hint for the next failure message.
  strncpy(info, line, sizeof info - 1);
  info[sizeof info - 1] = 0;
  return R_NONE;
}

// Waits for the next result line, handling notices on the way.
static Result waitResult(unsigned long timeoutMs) {
  unsigned long start = millis();
  while (millis() - start < timeoutMs) {
    if (pollLine()) {
      Result r = classify();
      if (r != R_NONE) return r;
    }
  }
  return R_TIMEOUT;
}

// Waits for one of two results; others (a stray OK from an earlier command,
// say) are skipped.
static Result waitFor(Result a, Result b, unsigned long timeoutMs) {
  unsigned long start = millis();
  for (;;) {
    unsigned long spent = millis() - start;
    if (spent >= timeoutMs) return R_TIMEOUT;
    Result r = waitResult(timeoutMs - spent);
    // A "ready" here means the modem rebooted: whatever we wait for is not coming.
    if (r == a || r == b || r == R_TIMEOUT || r == R_ERROR || r == R_FAIL || r == R_SEND_FAIL || r == R_READY)
      return r;
  }
}

// Keeps reading notices while nothing else is going on.
static void idle(unsigned long ms) {
  conFlush();
  unsigned long start = millis();
  while (millis() - start < ms) {
    if (pollLine()) classify();
  }
}

// --- writing to the modem ------------------------------------------------------

static void cmdStart() {
  conFlush();
  info[0] = 0;
}

static void cmdEnd() {
  MODEM.print(F("\r\n"));
}

static Result command(const __FlashStringHelper *cmd, unsigned long timeoutMs) {
  cmdStart();
  MODEM.print(cmd);
  cmdEnd();
  return waitFor(R_OK, R_OK, timeoutMs);
}

// AT string parameter: ESP_ATMod takes a backslash before ", \ and , literally.
static void printQuoted(const char *s) {
  MODEM.print('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\' || *s == ',') MODEM.print('\\');
    MODEM.print(*s);
  }
  MODEM.print('"');
}

// --- modem and Wi-Fi ---------------------------------------------------------

static bool modemInit() {
  modemRebooted = false;
  bool ready = false;
  cmdStart();
  MODEM.print(F("AT+RST"));
  cmdEnd();
  // The reset's own OK comes first; "ready" ends the boot.
  unsigned long start = millis();
  while (millis() - start < 5000) {
    Result r = waitResult(5000 - (millis() - start));
    if (r == R_READY) {
      ready = true;
      break;
    }
    if (r == R_TIMEOUT) break;
  }
  if (!ready) {
    // The reset may have been missed or the modem does not print ready:
    // fall back to plain AT until it answers.
    for (uint8_t i = 0; i < 10 && !ready; i++) ready = command(F("AT"), 1000) == R_OK;
    if (!ready) {
      conStrP(F("modem: no answer"));
      conEnd();
      return false;
    }
  }
  if (command(F("ATE0"), 2000) != R_OK) {
    conStrP(F("modem: ATE0 failed"));
    conEnd();
    return false;
  }
  modemRebooted = false;
  linkClosed = false;
  ipdAvail = 0;
  conStrP(F("modem: ready"));
  conEnd();
  return true;
}

static bool wifiJoin() {
  if (command(F("AT+CWMODE=1"), 2000) != R_OK) {
    conStrP(F("wifi: AT+CWMODE failed"));
    conEnd();
    modemReady = false;
    return false;
  }
  cwjapCode = -1;
  cmdStart();
  MODEM.print(F("AT+CWJAP="));
  printQuoted(WIFI_SSID);
  MODEM.print(',');
  printQuoted(WIFI_PASS);
  cmdEnd();
  // The modem stays busy until the join ends one way or the other; ESP_ATMod
  // has no timeout of its own, so this one is ours.
  Result r = waitFor(R_OK, R_OK, 20000);
  if (r != R_OK) {
    conStrP(F("wifi: join failed ("));
    if (cwjapCode >= 0)
      conNum(cwjapCode);
    else
      conStrP(r == R_TIMEOUT ? F("timeout") : r == R_READY ? F("modem restarted") : F("error"));
    conStrP(F(")"));
    conEnd();
    return false;
  }
  wifiJoined = true;
  conStrP(F("wifi: joined " WIFI_SSID));
  conEnd();
  // Passive receive: with active +IPD the data would arrive unasked and
  // overflow the 64-byte RX ring. The mode does not survive a reset, so set
  // it after every (re)join.
  if (command(F("AT+CIPRECVMODE=1"), 2000) != R_OK) {
    conStrP(F("modem: AT+CIPRECVMODE failed"));
    conEnd();
    modemReady = false;
    return false;
  }
  return true;
}

// --- HTTP ------------------------------------------------------------------------

static void httpBegin(Http *h, bool show) {
  memset(h, 0, sizeof *h);
  h->show = show;
}

static void httpShowLine(Http *h) {
  h->shown[h->showLen] = 0;
  if (h->show) {
    conStrP(F("body: "));
    conStr(h->shown);
    conEnd();
  }
  h->showLen = 0;
}

static void httpByte(Http *h, char c) {
  switch (h->part) {
    case H_STATUS:
      if (c == '\n') {
        h->statusLine[h->statusLen] = 0;
        const char *sp = strchr(h->statusLine, ' ');
        h->status = sp ? (uint16_t)parseNum(sp + 1) : 0;
        if (h->show) {
          conStrP(F("status: "));
          conStr(h->statusLine);
          conEnd();
        }
        h->part = H_HEADERS;
        h->headerLen = 0;
      } else if (c != '\r' && h->statusLen < STATUS_CAP - 1) {
        h->statusLine[h->statusLen++] = c;
      }
      break;
    case H_HEADERS:
      if (c == '\n') {
        if (h->headerLen == 0) h->part = H_BODY;
        h->headerLen = 0;
      } else if (c != '\r' && h->headerLen < 255) {
        h->headerLen++;
      }
      break;
    case H_BODY:
      h->bodyLen++;
      if (c == '\n') {
        h->firstDone = true;
        httpShowLine(h);
      } else if (c != '\r') {
        if (!h->firstDone && h->firstLen < FIRST_CAP - 1) {
          h->first[h->firstLen++] = c;
          h->first[h->firstLen] = 0;
        }
        if (h->showLen < SHOW_CAP - 1) h->shown[h->showLen++] = c;
      }
      break;
  }
}

static void httpEnd(Http *h) {
  if (h->part == H_BODY && h->showLen) httpShowLine(h);
}

// Opens the one link (CIPMUX=0). NULL on success, else why not.
static const __FlashStringHelper *linkOpen() {
  linkClosed = false;
  ipdAvail = 0;
  cmdStart();
  MODEM.print(F("AT+CIPSTART=\"TCP\",\"" HTTP_HOST "\","));
  MODEM.print(HTTP_PORT);
  cmdEnd();
  // DNS and connect may each take up to 5 s on the real chip.
  Result r = waitFor(R_OK, R_OK, 15000);
  if (r == R_OK) return NULL;
  if (r == R_TIMEOUT) return F("connect timeout");
  if (r == R_READY) return F("modem restarted");
  if (equalsP(info, F("no ip"))) {
    // The modem lost the network without telling us (or we missed it).
    wifiJoined = false;
    return F("connect (no ip)");
  }
  if (startsWith(info, F("ALREADY"))) {
    // A link left over from a failed exchange; free it for the next round.
    command(F("AT+CIPCLOSE"), 2000);
    return F("connect (already connected)");
  }
  if (equalsP(info, F("DNS Fail"))) return F("connect (DNS Fail)");
  if (equalsP(info, F("connect fail"))) return F("connect (connect fail)");
  return F("connect");
}

// Starts AT+CIPSEND for n bytes and waits for the prompt; the data must not
// go out earlier, or the modem's input clean-up after the command eats it.
static bool sendStart(uint16_t n) {
  cmdStart();
  MODEM.print(F("AT+CIPSEND="));
  MODEM.print(n);
  cmdEnd();
  return waitFor(R_PROMPT, R_PROMPT, 5000) == R_PROMPT;
}

static bool sendFinish() {
  return waitFor(R_SEND_OK, R_SEND_OK, 10000) == R_SEND_OK;
}

// One AT+CIPRECVDATA round: -1 on a protocol failure, else bytes read.
static int recvChunk(Http *h) {
  cmdStart();
  MODEM.print(F("AT+CIPRECVDATA=32"));
  cmdEnd();
  Result r = waitFor(R_DATA, R_DATA, 5000);
  if (r == R_ERROR) {
    // Nothing there after all (or the link is gone): our count was stale.
    ipdAvail = 0;
    return 0;
  }
  if (r != R_DATA) return -1;
  uint16_t k = dataLen;
  uint16_t got = 0;
  unsigned long start = millis();
  while (got < k && millis() - start < 2000) {
    if (MODEM.available()) {
      httpByte(h, (char)MODEM.read());
      got++;
    }
  }
  if (got < k) return -1;
  ipdAvail = ipdAvail > k ? ipdAvail - k : 0;
  if (waitFor(R_OK, R_OK, 2000) != R_OK) return -1;
  conFlush();
  return k;
}

// Reads the link dry until the modem reports it closed. NULL on success.
static const __FlashStringHelper *receiveAll(Http *h) {
  unsigned long lastProgress = millis();
  unsigned long lastAsk = millis();
  for (;;) {
    if (ipdAvail > 0) {
      int k = recvChunk(h);
      if (k < 0) return F("receive");
      if (k > 0) lastProgress = lastAsk = millis();
      continue;
    }
    if (linkClosed) return NULL;
    if (!wifiJoined) return F("wifi lost");
    if (modemRebooted) return F("modem reset");
    if (millis() - lastProgress > 15000) return F("timeout");
    if (millis() - lastAsk > 3000) {
      // A +IPD lost to a full RX ring would stall us for good; ask instead.
      lastAsk = millis();
      cmdStart();
      MODEM.print(F("AT+CIPRECVLEN?"));
      cmdEnd();
      unsigned long start = millis();
      while (millis() - start < 2000) {
        if (!pollLine()) continue;
        if (startsWith(line, F("+CIPRECVLEN:"))) {
          ipdAvail = parseNum(line + 12);
          continue;
        }
        Result r = classify();
        if (r == R_OK || r == R_ERROR) break;
      }
      continue;
    }
    if (pollLine()) classify();
  }
}

static void linkClose() {
  if (!linkClosed) command(F("AT+CIPCLOSE"), 2000);
  linkClosed = true;
  ipdAvail = 0;
}

static const char GET_REQUEST[] PROGMEM =
    "GET / HTTP/1.1\r\n"
    "Host: " HTTP_HOST "\r\n"
    "Connection: close\r\n"
    "\r\n";

static const char POST_HEAD[] PROGMEM =
    "POST /report HTTP/1.1\r\n"
    "Host: " HTTP_HOST "\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: ";

static const char POST_TAIL[] PROGMEM =
    "\r\n"
    "Connection: close\r\n"
    "\r\n";

static void httpGet(Http *h) {
  httpBegin(h, true);
  conStrP(F("http: GET http://" HTTP_HOST "/"));
  conEnd();
  const __FlashStringHelper *why = linkOpen();
  if (!why) {
    uint16_t n = strlen_P(GET_REQUEST);
    if (!sendStart(n)) {
      why = F("send");
    } else {
      MODEM.print((const __FlashStringHelper *)GET_REQUEST);
      if (!sendFinish()) why = F("send");
    }
    if (!why) why = receiveAll(h);
    httpEnd(h);
    if (why) linkClose();
  }
  if (!why && h->status == 0) why = F("no status line");
  if (!why && (h->status < 200 || h->status > 299)) why = F("HTTP status");
  if (why) {
    conStrP(F("result: FAIL "));
    conStrP(why);
    if (h->status) {
      conStrP(F(" "));
      conNum(h->status);
    }
  } else {
    conStrP(F("result: OK "));
    conNum(h->bodyLen);
    conStrP(F(" bytes"));
  }
  conEnd();
}

static void sendReport(const Http *got) {
  char body[24 + 8 + 6 + 10 + FIRST_CAP + 16];
  snprintf_P(body, sizeof body, PSTR("board=" BOARD_NAME " status=%u bytes=%lu first=%s"),
             got->status, (unsigned long)got->bodyLen, got->first);
  uint16_t m = strlen(body);
  uint16_t n = strlen_P(POST_HEAD) + digits(m) + strlen_P(POST_TAIL) + m;

  const __FlashStringHelper *why = linkOpen();
  if (!why) {
    if (!sendStart(n)) {
      why = F("send");
    } else {
      MODEM.print((const __FlashStringHelper *)POST_HEAD);
      MODEM.print(m);
      MODEM.print((const __FlashStringHelper *)POST_TAIL);
      MODEM.print(body);
      if (!sendFinish()) why = F("send");
    }
    if (!why) {
      // The answer is of no interest, but passive mode holds the link (and
      // CLOSED) until it was read.
      static Http answer;
      httpBegin(&answer, false);
      why = receiveAll(&answer);
    }
    if (why) linkClose();
  }
  if (why) {
    conStrP(F("report: FAIL "));
    conStrP(why);
  } else {
    conStrP(F("report: sent"));
  }
  conEnd();
}

// -----------------------------------------------------------------------------

void setup() {
  MODEM.begin(115200);
#ifdef CONSOLE
  CONSOLE.begin(115200);
#endif
  conStrP(F("boot: WebClient on " BOARD_NAME));
  conEnd();
  conFlush();
}

void loop() {
  if (modemRebooted) {
    // The modem restarted behind our back: its settings are gone.
    conStrP(F("modem: restarted"));
    conEnd();
    modemReady = false;
    wifiJoined = false;
    modemRebooted = false;
  }
  if (!modemReady) {
    modemReady = modemInit();
    if (!modemReady) {
      idle(2000);
      return;
    }
    wifiJoined = false;
  }
  if (!wifiJoined) {
    if (!wifiJoin()) {
      idle(5000);
      return;
    }
  }
  if (ranOnce && millis() - lastRun < REPEAT_MS) {
    idle(50);
    return;
  }
  ranOnce = true;
  lastRun = millis();

  static Http got;  // static: too big for the Uno's stack next to the rest
  httpGet(&got);
  // Without the network the report cannot go out; the next round will tell.
  if (modemReady && !modemRebooted && wifiJoined) sendReport(&got);
  conFlush();
}
