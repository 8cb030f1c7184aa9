# tests/bench/bench.mk - the benchmark (issue 5), included by the top-level Makefile.
#
#   make bench                          module vs the curl floor on a loopback Twilio sandbox,
#                                       30 runs a figure; writes tests/bench/results.md,
#                                       results.json and results.svg (as root, ~10 minutes)
#   make bench BENCH_ARGS=--quick       5 runs, smaller cases; prints, writes nothing
#   make bench BENCH_ARGS="--only latency,scale --runs 50 --out /tmp/b"
#   make bench BENCH_ARGS="--only latency --baseline /tmp/wt/pam_twilio_sms.so"
#                                       the latency section with another build of the module
#                                       (e.g. the last release's, from a git worktree) in the
#                                       same rounds: module / baseline; prints, writes nothing
#   make bench BENCH_ARGS="--only redis --runs 10"
#                                       limits in Redis (TCP, Unix socket) against the files,
#                                       1/32/128 simultaneous logins; installs redis-server
#                                       itself (tests/harness/redis.py), as the directory
#                                       section installs slapd
#   make bench BENCH_ARGS="--only peer --runs 20 --merge"
#                                       the peer: Debian's pam_duo against a loopback Duo
#                                       stand-in (tests/sandbox/duo_sandbox.py) next to the
#                                       module, through pamtester and real ssh logins to a
#                                       throw-away sshd; installs libpam-duo and OpenSSH
#                                       itself; --merge puts the figures into the results
#                                       files there are, the other sections' unchanged
#   make bench BENCH_ARGS="--only backup --merge"
#                                       backup codes: logins by the SMS code against backup
#                                       codes checked 1st of 10, 10th of 10, 20th of 20, a
#                                       wrong one against 20 and one at the Twilio-503 backup
#                                       prompt, a fresh set (twilio-sms-otp backup-codes)
#                                       before each; wall time, ratio, peak RSS (~1 minute)
#   make bench BENCH_ARGS="--only grace --merge"
#                                       graces: a login let in by an address grace
#                                       (gracePeriodSeconds, pamtester -I rhost=192.0.2.7)
#                                       against an SMS login, with the files, Redis with
#                                       graceScope host and Redis with graceScope fleet
#                                       (installs redis-server as the redis section does);
#                                       wall time, ratio, client CPU (~15 s)
#
# Not part of `make test`: it measures, it does not pass or fail.

BENCH_DEBS := pamtester curl valgrind time openssl python3 util-linux
BENCH_ARGS ?=

.PHONY: bench

bench:
	@tests/install-deps.sh $(BUILD_DEBS) $(BENCH_DEBS)
	$(MAKE) all
	python3 tests/bench/run_bench.py $(BENCH_ARGS)
