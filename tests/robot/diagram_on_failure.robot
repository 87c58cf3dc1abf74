*** Settings ***
Documentation     Fails on purpose, for tests/test_diagram.py: the host echoes a few bytes through the lab's
...               echo server, closes the link and then expects a send on it to succeed. The modem answers
...               ERROR, the test fails, and AtModemLibrary logs the session diagram with that step marked.
...               Not in robot/suites, whose suites must all pass.
Resource          ../../robot/resources/lab.resource
Test Setup        Host Joined The Access Point
Test Teardown     Run Keywords    Close All Connections    AND    Stop Everything


*** Test Cases ***
A Send After The Link Closed Is Expected To Succeed
    ${port}=    Start TCP Echo Server
    Modem Answers    AT+CIPSTART="TCP","127.0.0.1",${port}    CONNECT\r\n\r\nOK\r\n
    Modem Answers    AT+CIPSEND=5    OK\r\n>${SPACE}
    Write Bare    hello
    Read Until    +IPD,5:hello
    Modem Answers    AT+CIPCLOSE    CLOSED\r\n\r\nOK\r\n
    Command Should Succeed    AT+CIPSEND=5
    Modem Answers    AT    OK\r\n


*** Keywords ***
Command Should Succeed
    [Documentation]    Sends ``command`` and fails unless its final result is OK.
    [Arguments]    ${command}
    Write Bare    ${command}\r\n
    ${answer}=    Read Until Regexp    \r\n(OK|ERROR|FAIL)\r\n
    Should End With    ${answer}    \r\nOK\r\n
