#!/usr/bin/env Rscript
## diagnostics_r.R -- lme4's side of bench_diagnostics.py: lme4 1.1's influence(m, groups =
## "Subject") on sleepstudy, timed over `reps` runs after one warm-up; prints JSON
## {"wall_s": best wall time, "cpu_s": its user + system time}.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
reps <- as.integer(commandArgs(TRUE)[1])
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
invisible(influence(m, groups = "Subject"))
times <- lapply(seq_len(reps), function(i) system.time(influence(m, groups = "Subject")))
best <- times[[which.min(vapply(times, function(t) t[["elapsed"]], 0))]]
cat(toJSON(list(wall_s = best[["elapsed"]], cpu_s = best[["user.self"]] + best[["sys.self"]]), auto_unbox = TRUE, digits = NA))
