# The two commands of the README, and what they are made of.
#   make demo   runs the whole lifecycle locally against the stand-ins and prints what happened
#   make test   installs and starts the stand-ins, runs every test, stops the stand-ins
SHELL := /bin/bash
CARGO ?= cargo
JOBS ?= 2

.PHONY: test demo standins standins-stop build check-infra bench simulate dist

# Incremental caches are not kept for a one-shot run: they double the disk a cold build takes
# (about 6 GB here), and CI starts from a clean checkout.
test: export CARGO_INCREMENTAL ?= 0
test:
	@scripts/standins.sh start
	@set -o pipefail; status=0; \
	  scripts/infra-check.sh || status=$$?; \
	  source .local/standins.env && $(CARGO) test --workspace -j$(JOBS) --no-fail-fast || status=$$?; \
	  scripts/standins.sh stop >/dev/null 2>&1; exit $$status

demo:
	@CARGO="$(CARGO)" JOBS="$(JOBS)" scripts/demo.sh

standins:
	@scripts/standins.sh start

standins-stop:
	@scripts/standins.sh stop

build:
	$(CARGO) build --workspace -j$(JOBS)

check-infra:
	scripts/infra-check.sh

# The four Lambda zips for arm64 and x86_64 (provided.al2023), each checked: an ELF `bootstrap`
# of the right architecture at its root. Release build in its own target dir (.local/dist-target);
# about half an hour cold on 2 cores; never part of `make test`. See scripts/dist.sh.
dist:
	@JOBS="$(JOBS)" scripts/dist.sh

# Benchmarks build in release (about 14 minutes cold on 2 cores); never part of `make test`.
# Each prints `figure: NAME = VALUE UNIT (goal GOAL)` lines; the speed bench needs wrk.
bench:
	@scripts/standins.sh start
	@command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	@source .local/standins.env && $(CARGO) bench -j$(JOBS) --bench speed --bench handover --bench revocation --bench revocation_real

# The deterministic simulator (src/sim): SEEDS schedules from seed FIRST, or one seed replayed
# with its schedule (SEED=...); prints the work done (hand-overs, expiries, ...). BREAK=<fix>
# switches one race fix off (src/sim/fixes.rs) to count the schedules it holds. Needs no stand-ins.
SEEDS ?= 10000
FIRST ?= 0
simulate:
	@$(CARGO) run -q -j$(JOBS) --example simulate -- $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST)) $(if $(BREAK),--break $(BREAK))
