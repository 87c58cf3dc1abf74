*** Settings ***
Documentation     The access point disappears while the STM32 firmware runs: the modem reports
...               ``WIFI DISCONNECT``, the firmware notices, retries the join until the access point
...               is back, and fetches again.
Resource          ../resources/lab.resource
Test Teardown     Stop Everything


*** Test Cases ***
Firmware Rejoins After The Access Point Comes Back
    Firmware Runs Against The Lab    netduinoplus2
    Console Shows    ^result: OK
    Remove Access Point    atmodem-lab
    Console Shows    ^wifi: lost \\(\\d+\\)
    Console Shows    ^wifi: join failed
    Modem Should Have Sent    WIFI DISCONNECT (
    Restore Access Point    atmodem-lab
    Console Shows    ^wifi: joined atmodem-lab
    Console Shows    ^result: OK
