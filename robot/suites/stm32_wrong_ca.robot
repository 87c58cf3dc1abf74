*** Settings ***
Documentation     The same firmware against a server whose certificate chains to a CA it does not
...               trust: the modem refuses the link (``connect fail``) and the firmware says so.
Resource          ../resources/lab.resource
Test Teardown     Stop Everything
Test Template     Untrusted Server On


*** Test Cases ***                        MACHINE
Wrong CA Is Reported On Netduino Plus 2    netduinoplus2
Wrong CA Is Reported On B-L475E-IOT01A     b-l475e-iot01a


*** Keywords ***
Untrusted Server On
    [Arguments]    ${machine}
    Firmware Runs Against The Lab    ${machine}    wrong_ca=${True}
    Console Shows    ^tls: CA uploaded
    Console Shows    ^https: connect failed
    Console Shows    ^result: FAIL tls
    Modem Should Have Sent    connect fail
    ${tls}=    Get TLS Handshake Counts
    Should Be Equal As Integers    ${tls}[handshakes]    0
    Should Be True    ${tls}[failures] >= 1
    Run Keyword And Expect Error    no GET / request*    Web Server Should Have Received    GET    /
