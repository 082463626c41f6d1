/* Start-up handling of server admins (admins.c). */
#ifndef STT_SECURITY_ADMINS_H
#define STT_SECURITY_ADMINS_H
#include "src/common/ini.h"
#include <stdio.h>

/* Hashes plaintext [admins] values (written back to the ini file), adds an admin
 * from the environment, and when there is none: on a loopback bind address creates
 * "admin" with a random password, printed once to msg; elsewhere returns 2 after a
 * message (the caller exits with it). 0 otherwise. */
int stt_admins_setup(stt_ini_t *ini, const char *bind, FILE *msg);

/* Settings that live in memory only and must survive a _config/_reload: CouchDB's
 * default hash_algorithms and the admin from the environment. */
void stt_security_memory_settings(stt_ini_t *ini);

#endif
