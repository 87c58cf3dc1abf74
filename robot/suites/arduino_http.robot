*** Settings ***
Documentation     One unmodified Arduino sketch on simavr, built for two boards: the Mega 2560 talks
...               to the modem on Serial1 and prints on Serial; the Uno has only Serial, so it proves
...               what it fetched by posting a report back to the lab's web server.
Resource          ../resources/lab.resource
Test Teardown     Stop Everything


*** Test Cases ***
Mega 2560 Fetches A Page Over TCP Through Serial1
    Firmware Runs Against The Lab    mega2560
    Console Shows    ^modem: ready
    Console Shows    ^wifi: joined atmodem-lab
    Console Shows    ^status: HTTP/1.1 200 OK
    Console Shows    ^body: Hello from the atmodem lab!
    Console Shows    ^result: OK \\d+ bytes
    Console Shows    ^report: sent
    Modem Should Have Received    AT+CIPSTART="TCP","www.atmodem.test",80
    Web Server Should Have Received    POST    /report    body_contains=board=mega2560 status=200

Uno Fetches A Page Over TCP Through Serial
    Firmware Runs Against The Lab    uno
    Wait Until Keyword Succeeds    ${FIRMWARE TIMEOUT}    1s
    ...    Web Server Should Have Received    POST    /report    body_contains=board=uno status=200
    ${report}=    Web Server Should Have Received    POST    /report    body_contains=board=uno
    Should Contain    ${report}    first=Hello from the atmodem lab!
    Modem Should Have Received    AT+CIPSTART="TCP","www.atmodem.test",80
