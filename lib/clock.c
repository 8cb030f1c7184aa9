/* clock.c - the monotonic clock in milliseconds (clock.h) */
#include "clock.h"

#include <time.h>

long long tsms_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long tsms_clock_left_ms(long long deadline)
{
	long long left = deadline - tsms_clock_ms();

	return left > 0 ? left : 0;
}
