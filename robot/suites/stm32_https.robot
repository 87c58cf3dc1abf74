*** Settings ***
Documentation     The project's STM32 firmware (one application, two board files) in QEMU: it resets
...               the modem, joins the lab's access point, sets the clock by SNTP, uploads the lab
...               CA, turns on chain verification (AT+CIPSSLAUTH=2) and fetches a page over TLS.
Resource          ../resources/lab.resource
Test Teardown     Stop Everything
Test Template     HTTPS Fetch On


*** Test Cases ***                        MACHINE
HTTPS GET With Chain Verification On Netduino Plus 2       netduinoplus2
HTTPS GET With Chain Verification On B-L475E-IOT01A        b-l475e-iot01a


*** Keywords ***
HTTPS Fetch On
    [Arguments]    ${machine}
    Firmware Runs Against The Lab    ${machine}
    Console Shows    ^modem: ready
    Console Shows    ^wifi: joined atmodem-lab
    Console Shows    ^sntp: \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d 20\\d\\d
    Console Shows    ^tls: CA uploaded
    Console Shows    ^status: HTTP/1.1 200 OK
    Console Shows    ^body: Hello from the atmodem lab!
    Console Shows    ^result: OK \\d+ bytes
    Modem Should Have Received    AT+CIPSSLAUTH=2
    Modem Should Have Received    AT+CIPSTART="SSL","www.atmodem.test",443
    Modem Should Have Sent    +CIPSNTPTIME:
    Web Server Should Have Received    GET    /
    ${tls}=    Get TLS Handshake Counts
    Should Be True    ${tls}[handshakes] >= 1
