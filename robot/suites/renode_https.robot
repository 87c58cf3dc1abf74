*** Settings ***
Documentation     The STM32 HTTPS client (the netduinoplus2 ELF, unchanged) on Renode's STM32F4 Discovery:
...               once with the modem outside Renode on its server socket terminal, driven by Renode's
...               own keywords, once with the modem inside Renode's time domain (pyrenode3). Skipped,
...               with the reason, where Renode or pyrenode3 is missing: no registry this project
...               reaches ships Renode. ``RENODE`` names the Renode binary (default ``renode``).
Library           Process
Resource          ../resources/lab.resource
Test Teardown     Run Keywords    Stop Everything    AND    Stop Renode Server


*** Variables ***
${RENODE}         renode
${PLATFORMS}      ${CURDIR}/../../platforms
${HTTPS ELF}      ${BUILD}/firmware/stm32/netduinoplus2/atmodem-https.elf
${RENODE TIMEOUT}    120


*** Test Cases ***
HTTPS GET Through Renode's Server Socket Terminal
    Skip Unless Renode Is Available    ${RENODE}
    Start Lab
    Start Renode Server
    ${modem_port}=    Get Free TCP Port
    Execute Command    $modem_port=${modem_port}
    Execute Command    $repl=@${PLATFORMS}/renode/stm32f4_discovery-atmodem.repl
    Execute Command    $elf=@${HTTPS ELF}
    Execute Command    include @${PLATFORMS}/renode/stm32f4_discovery-atmodem.resc
    Start Modem    connect    127.0.0.1:${modem_port}
    Create Terminal Tester    sysbus.usart1    timeout=${RENODE TIMEOUT}
    Start Emulation
    Wait For Line On Uart    modem: ready
    Wait For Line On Uart    tls: CA uploaded
    Wait For Line On Uart    result: OK
    Modem Should Have Received    AT+CIPSTART="SSL","www.atmodem.test",443

HTTPS GET With The Modem In Renode's Time Domain
    Skip Unless Renode Is Available    ${RENODE}    in_process=${True}
    Start Lab
    Start Firmware In Renode    ${HTTPS ELF}
    Console Shows    ^modem: ready    timeout=${RENODE TIMEOUT}s
    Console Shows    ^tls: CA uploaded    timeout=${RENODE TIMEOUT}s
    Console Shows    ^result: OK    timeout=${RENODE TIMEOUT}s

In-Process Runs Repeat At The Same Virtual Instants
    [Documentation]    Two runs of the HTTPS scenario give the same modem transcript, byte for byte and
    ...                virtual time for time: the modem waits for the lab's servers in lockstep.
    ...                (The TLS bytes differ between runs, but the UART sees only plaintext, and the
    ...                lab's Date header follows its SNTP server's time, which the test sets.)
    Skip Unless Renode Is Available    ${RENODE}    in_process=${True}
    Start Lab
    Set SNTP Server Time    2026-06-01T12:00:00Z
    ${first}=    Run Transcript    ${HTTPS ELF}    ^result: OK
    ${second}=    Run Transcript    ${HTTPS ELF}    ^result: OK
    Should Be Equal    ${first}    ${second}


*** Keywords ***
Start Renode Server
    [Documentation]    Renode with its Robot remote-library server on a free port, imported as ``Renode``.
    ${port}=    Get Free TCP Port
    Start Process    ${RENODE}    --disable-xwt    --hide-log    --robot-server-port    ${port}
    ...    alias=renode    stdout=${OUTPUT DIR}/renode.log    stderr=STDOUT
    Wait Until Keyword Succeeds    60s    1s
    ...    Import Library    Remote    http://127.0.0.1:${port}/    WITH NAME    Renode
    Set Test Variable    ${RENODE SERVER}    running

Stop Renode Server
    ${running}=    Get Variable Value    ${RENODE SERVER}    ${None}
    IF    $running
        Run Keyword And Ignore Error    Renode.Stop Remote Server
        Terminate Process    renode
    END

Run Transcript
    [Arguments]    ${firmware}    ${last line}
    Start Firmware In Renode    ${firmware}
    Console Shows    ${last line}    timeout=${RENODE TIMEOUT}s
    ${transcript}=    Get Virtual Transcript
    Stop Firmware
    RETURN    ${transcript}
