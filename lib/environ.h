/* environ.h - the caller's environment, kept away from the libraries the module loads */
#ifndef TSMS_ENVIRON_H
#define TSMS_ENVIRON_H

/*
 * The module runs inside whatever program calls PAM. In setuid programs (su,
 * chfn, chsh, pkexec) that program's environment belongs to the unprivileged
 * caller, and libcurl, OpenSSL and (later) libldap read it: proxies, key log
 * files, config files, trust stores. Each library's owner file pins what it
 * can through the library's API and, for everything else, runs the library
 * with the environment hidden:
 *
 *     char **saved = tsms_environ_hide();
 *     ... library calls: getenv() finds nothing ...
 *     tsms_environ_restore(saved);
 *
 * Hiding points `environ` at an empty list; nothing of the caller's
 * environment is changed or freed, so the host program gets it back intact.
 * Not for threads that read the environment while it is hidden: they see it
 * empty for that time (PAM hosts call PAM from one thread).
 */

/* Hides the process environment; returns what to give tsms_environ_restore. */
char **tsms_environ_hide(void);

/* Puts back the environment that tsms_environ_hide returned. */
void tsms_environ_restore(char **saved);

#endif
