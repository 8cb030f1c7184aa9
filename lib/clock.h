/* clock.h - the monotonic clock in milliseconds: deadlines, ages and waits, never dates
 *
 * CLOCK_MONOTONIC: a clock that an administrator or NTP setting the date does
 * not move. The one place that reads it for lib/.
 */
#ifndef TSMS_CLOCK_H
#define TSMS_CLOCK_H

/* Milliseconds since an arbitrary moment of this boot. */
long long tsms_clock_ms(void);

/* The milliseconds from now until deadline (a tsms_clock_ms time), 0 once it
 * has passed. */
long long tsms_clock_left_ms(long long deadline);

#endif
