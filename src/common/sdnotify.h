/* systemd's readiness protocol (sd_notify(3)) without libsystemd: a datagram to
 * the socket named by $NOTIFY_SOCKET. Without that variable (not started by
 * systemd with Type=notify) it does nothing. */
#ifndef STT_SDNOTIFY_H
#define STT_SDNOTIFY_H

/* Sends state ("READY=1", "STOPPING=1", "STATUS=..."). 0 when sent or when there
 * is no socket to tell, -errno when the send failed. */
int stt_sd_notify(const char *state);

#endif
