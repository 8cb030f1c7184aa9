/* error.c - names of the library's errors */
#include "error.h"

const char *tsms_strerror(enum tsms_err err)
{
	switch (err) {
	case TSMS_OK:
		return "success";
	case TSMS_ERR_CONFIG:
		return "configuration error";
	case TSMS_ERR_NOMEM:
		return "out of memory";
	case TSMS_ERR_SYSTEM:
		return "system error";
	case TSMS_ERR_NO_USER:
		return "no usable user name";
	case TSMS_ERR_NO_PHONE:
		return "no phone number mapped to the user";
	case TSMS_ERR_UNAVAILABLE:
		return "Twilio or the directory unavailable";
	case TSMS_ERR_REJECTED:
		return "Twilio rejected the message";
	case TSMS_ERR_CONV:
		return "conversation failed";
	case TSMS_ERR_AUTH:
		return "wrong code";
	case TSMS_ERR_EXPIRED:
		return "code expired";
	case TSMS_ERR_MAXTRIES:
		return "too many wrong codes";
	case TSMS_ERR_LIMITED:
		return "SMS limit reached";
	case TSMS_ERR_STATE:
		return "state file unusable";
	case TSMS_ERR_DIRECTORY:
		return "directory entry unusable";
	}
	return "unknown error";
}
