# R side of bench_lmm.py: time lme4::lmer() or lme4::glmer() on a CSV, with lme4's default control
# (what users get). Only the fitting calls are timed: R startup, package loading and reading the
# CSV are not.
# Usage: Rscript lme4_fit.R DATA.csv FORMULA FACTOR_COLUMNS BUDGET_S MAX_RUNS MIN_RUNS ENOUGH_S
#          WARM_UP_BELOW_S lmer REML(TRUE|FALSE)
#        Rscript lme4_fit.R DATA.csv FORMULA FACTOR_COLUMNS BUDGET_S MAX_RUNS MIN_RUNS ENOUGH_S
#          WARM_UP_BELOW_S glmer FAMILY NAGQ
# Runs are repeated as fit_worker.RepeatPolicy repeats them.
# Prints one JSON object on stdout.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
csv_path <- args[[1]]
model_formula <- as.formula(args[[2]])
factor_columns <- strsplit(args[[3]], ",", fixed = TRUE)[[1]]
budget_s <- as.numeric(args[[4]])
max_runs <- as.integer(args[[5]])
min_runs <- as.integer(args[[6]])
enough_s <- as.numeric(args[[7]])
warm_up_below_s <- as.numeric(args[[8]])
kind <- args[[9]]

fit_model <- switch(kind,
  lmer = {
    reml <- as.logical(args[[10]])
    function() lmer(model_formula, data, REML = reml)
  },
  glmer = {
    family <- get(args[[10]], mode = "function")
    nagq <- as.integer(args[[11]])
    function() glmer(model_formula, data, family = family, nAGQ = nagq)
  },
  stop("unknown model kind: ", kind)
)

# Read as users do: base R's read.csv, the factor columns as text (so that numeric-looking labels
# such as sleepstudy's "308" or integer codes stay labels), then factor(), whose levels are the
# sorted labels. Untimed, like the data loading of the other tools.
column_classes <- setNames(rep("character", length(factor_columns)), factor_columns)
data <- read.csv(csv_path, colClasses = column_classes)
for (column in factor_columns) data[[column]] <- factor(data[[column]])

# A first call of each kind loads the optimisers' namespaces; keep that out of the timings.
invisible(switch(kind,
  lmer = lmer(Reaction ~ Days + (Days | Subject), sleepstudy),
  glmer = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
))

fit_warnings <- character()
fit_once <- function() {
  withCallingHandlers(
    fit_model(),
    warning = function(w) {
      fit_warnings <<- union(fit_warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
}

times <- numeric()
warming_up <- TRUE
repeat {
  start <- proc.time()[["elapsed"]]
  fit <- fit_once()
  elapsed <- proc.time()[["elapsed"]] - start
  # A short first run is a warm-up, not timed (see fit_worker.RepeatPolicy).
  if (!(warming_up && elapsed < warm_up_below_s)) times <- c(times, elapsed)
  warming_up <- FALSE
  if (length(times) == 0) next
  spent <- sum(times)
  if (length(times) >= max_runs ||
      (spent >= budget_s && (length(times) >= min_runs || spent >= enough_s))) break
}

# I() keeps one-element vectors as JSON arrays.
cat(toJSON(list(
  times = I(times),
  llf = as.numeric(logLik(fit)),
  evaluations = fit@optinfo$feval,
  messages = I(unique(c(fit_warnings, unlist(fit@optinfo$conv$lme4$messages))))
), auto_unbox = TRUE, digits = NA))
