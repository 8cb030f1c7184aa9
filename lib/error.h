/* error.h - the one error type of lib/; mapped to PAM results only in pam_twilio_sms.c */
#ifndef TSMS_ERROR_H
#define TSMS_ERROR_H

enum tsms_err {
	TSMS_OK = 0,
	TSMS_ERR_CONFIG,      /* config file or module arguments unusable: always fail closed */
	TSMS_ERR_NOMEM,       /* out of memory */
	TSMS_ERR_SYSTEM,      /* other local failure (clock, libraries) */
	TSMS_ERR_NO_USER,     /* user name unavailable or invalid */
	TSMS_ERR_NO_PHONE,    /* no phone number mapped to the user */
	TSMS_ERR_UNAVAILABLE, /* Twilio or the directory unreachable, timed out, 429 or 5xx:
	                       * failMode applies */
	TSMS_ERR_REJECTED,    /* Twilio refused the request (4xx but 429): never fails open */
	TSMS_ERR_CONV,        /* the conversation with the user failed */
	TSMS_ERR_AUTH,        /* wrong code after all attempts */
	TSMS_ERR_EXPIRED,     /* the code's lifetime ran out */
	TSMS_ERR_MAXTRIES,    /* maxAttempts wrong answers */
	TSMS_ERR_LIMITED,   /* a send limit, the cooldown, a lockout or the country list said no */
	TSMS_ERR_STATE,     /* the state directory or a state file is unusable: fail closed */
	TSMS_ERR_DIRECTORY, /* the directory's answer is unusable (several entries, a bad
	                     * number): never fails open */
};

/* Returns a static, human readable name for err ("config error", ...). */
const char *tsms_strerror(enum tsms_err err);

#endif
