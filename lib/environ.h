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
 *     struct tsms_environ saved;
 *     tsms_environ_hide(&saved);
 *     ... library calls: getenv() finds nothing ...
 *     tsms_environ_restore(&saved);
 *
 * Hiding points `environ` at an empty list; nothing of the caller's
 * environment is changed or freed, so the host program gets it back intact,
 * even when a library sets a variable meanwhile (glibc's setenv() may then
 * reallocate the caller's list: restore puts back a copy made by hide, and
 * what was set while hidden is dropped). Not for threads that read the
 * environment while it is hidden: they see it empty for that time (PAM hosts
 * call PAM from one thread).
 */

struct tsms_environ {
	char **list;  /* the caller's environ */
	char **copy;  /* its pointers, in case setenv() reallocated the list; may be NULL */
	char **shown; /* what environ pointed at meanwhile */
};

/* Hides the process environment until tsms_environ_restore(saved). */
void tsms_environ_hide(struct tsms_environ *saved);

/* The same, with list (NULL-terminated "NAME=value" strings that outlive the
 * call) as the only environment meanwhile: for a library whose own variable
 * turns its reading of the environment and its config files off
 * (LDAPNOINIT=1 for libldap). */
void tsms_environ_use(struct tsms_environ *saved, char **list);

/* Puts back the environment that tsms_environ_hide or tsms_environ_use saved. */
void tsms_environ_restore(struct tsms_environ *saved);

#endif
