"""Telit's services over SSL (seed 004 chapters on HTTPS, FTPS and MQTT): #HTTPCFG/#HTTPQRY/#HTTPRCV, #FTPCFG/#FTPOPEN/#FTPGET, #MQEN/#MQCFG/#MQCONN."""
