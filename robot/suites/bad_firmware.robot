*** Settings ***
Documentation     Firmware that misbehaves: binary noise, an over-long line and half a command on the
...               UART, or a firmware that vanishes in the middle of a command. The modem answers as
...               the chip would and is ready for the next host.
Resource          ../resources/lab.resource
Test Teardown     Stop Everything


*** Test Cases ***
Garbage From The Firmware Gets ERROR And The Modem Still Answers
    Start Modem
    Start Firmware    netduinoplus2    ${BUILD}/firmware/stm32/netduinoplus2/atmodem-noise.elf
    Console Shows    ^noise: 2048 bytes of binary noise, [1-9]\\d* ERROR replies
    Console Shows    ^noise: a 303-byte line, [1-9] ERROR replies
    Console Shows    ^noise: half a command, 1 ERROR replies
    Console Shows    ^noise: AT after all that: OK
    Modem Should Have Received    AT+CWJAP="atmo
    ${counters}=    Get Modem Counters
    Should Be True    ${counters}[bytes_in] > 2048

Firmware That Vanishes Mid-Command Leaves A Modem The Next Run Can Use
    Firmware Runs Against The Lab    netduinoplus2
    Console Shows    ^https: GET
    # The TLS handshake of AT+CIPSTART is under way: the emulator and its UART go away now.
    Stop Firmware
    Start Firmware    netduinoplus2
    Console Shows    ^modem: ready
    Console Shows    ^result: OK \\d+ bytes
