*** Settings ***
Documentation     Fault injection from Robot: a host talks AT to the modem over its TCP transport
...               (Robot's own Telnet library, which sends plain bytes to a peer that negotiates
...               nothing), faults are injected while it runs, and each gives the reaction the
...               ESP_ATMod spec documents, byte for byte.
Resource          ../resources/lab.resource
Test Setup        Host Joined The Access Point
Test Teardown     Run Keywords    Close All Connections    AND    Stop Everything


*** Test Cases ***
A Name That Does Not Resolve Is DNS Fail
    Map Host Name    www.atmodem.test
    Inject Fault    kind=dns_fail,host=www.atmodem.test
    Modem Answers    AT+CIPSTART="TCP","www.atmodem.test",80    DNS Fail\r\n\r\nERROR\r\nCLOSED\r\n
    Fault Should Have Fired    dns_fail    times=1

A Refused Connection Is Connect Fail, Once
    ${port}=    Start TCP Echo Server
    Inject Fault    kind=refuse,port=${port},times=1
    Modem Answers    AT+CIPSTART="TCP","127.0.0.1",${port}    connect fail\r\n\r\nERROR\r\nCLOSED\r\n
    Modem Answers    AT+CIPSTART="TCP","127.0.0.1",${port}    CONNECT\r\n\r\nOK\r\n
    Fault Should Have Fired    refuse    times=1

A Reset After Four Bytes Closes The Link With Those Four Delivered
    ${port}=    Start TCP Echo Server
    Inject Fault    kind=reset,port=${port},after_bytes=4
    Modem Answers    AT+CIPSTART="TCP","127.0.0.1",${port}    CONNECT\r\n\r\nOK\r\n
    Modem Answers    AT+CIPSEND=8    OK\r\n>${SPACE}
    Write Bare    abcdefgh
    Read Until    \r\nRecv 8 bytes\r\n\r\nSEND OK\r\n
    Read Until    \r\n+IPD,4:abcdCLOSED\r\n
    Fault Should Have Fired    reset

A TLS Alert In The Handshake Is Connect Fail
    ${port}=    Start TCP Echo Server    tls=True
    Inject Fault    kind=tls_alert,port=${port},alert=bad_certificate
    Modem Answers    AT+CIPSTART="SSL","localhost",${port}    connect fail\r\n\r\nERROR\r\nCLOSED\r\n
    Fault Should Have Fired    tls_alert

A Slow Command Keeps The Modem Silent For Its Latency
    Inject Fault    kind=latency,command=+CIPSTATUS,seconds=1.5
    ${start}=    Evaluate    time.monotonic()    modules=time
    Modem Answers    AT+CIPSTATUS    STATUS:2\r\n\r\nOK\r\n
    ${took}=    Evaluate    time.monotonic() - ${start}    modules=time
    Should Be True    ${took} >= 1.4

The Access Point Drops And Links Need An IP
    Inject Fault    kind=drop_ap,ssid=atmodem-lab
    Read Until    WIFI DISCONNECT (200)\r\n
    Modem Answers    AT+CIPSTART="TCP","127.0.0.1",80    no ip\r\n\r\nERROR\r\n

An Overridden Answer, Then A Reboot Mid-Session
    Inject Fault    kind=response,command=AT+GMR,response=\\r\\nbusy p...\\r\\n,times=1
    Modem Answers    AT+GMR    \r\nbusy p...\r\n
    Inject Fault    kind=reboot
    Read Until    \r\nready\r\n
    Modem Answers    AT    AT\r\n\r\nOK\r\n
    Fault Should Have Fired    response    times=1
    Fault Should Have Fired    reboot    times=1

